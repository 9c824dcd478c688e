"""Fast reading of shard directories (local or any fsspec URL, e.g. ``hf://datasets/ORG/NAME``).

- :class:`ShardReader`: the row groups of one split, read with pyarrow (column projection, one
  row group at a time, no pandas).
- :class:`TripletDataset`: map-style torch dataset (random access; good for evaluation).
- :class:`TripletIterableDataset`: streaming torch dataset for training: row groups are split
  across distributed ranks and DataLoader workers, a seeded shuffle buffer mixes rows, and train
  rows can be re-paired every epoch with another clip of their category from the audio pool.

A decoded sample is a dict: ``image`` uint8 tensor [3, H, W], ``mask`` bool (or float) tensor
[H, W], ``audio`` float32 tensor [T] with ``sample_rate``, plus the scalar columns as Python values.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from fsspec.implementations.local import LocalFileSystem
from PIL import Image
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from avsynth.errors import AvsynthError, SourceError
from avsynth.media.audio import decode_audio
from avsynth.media.mask import decode_png, resize_nearest
from avsynth.shards.record import RECORD_NAME, BuildRecord, load_record_json
from avsynth.shards.schema import DATA_DIR

_AUDIO_FIELDS = ("audio", "audio_id", "audio_label", "audio_offset_s", "audio_seconds")


def _open_fs(source: str | Path, storage_options: dict | None) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(str(source), **(storage_options or {}))
    return fs, root.rstrip("/")


def _list_shards(fs: fsspec.AbstractFileSystem, root: str, folder: str, split: str
                 ) -> tuple[list[str], dict[str, str]]:
    """Shard paths of a split and their sha256 by path: from manifest.json when present, else by
    file-name pattern (no digests)."""
    record_path = f"{root}/{RECORD_NAME}"
    if fs.exists(record_path):
        with fs.open(record_path, "rb") as f:
            record = BuildRecord.from_dict(load_record_json(f))
        listed = record.shards if folder == DATA_DIR else record.audio_pool
        chosen = sorted((e for e in listed if Path(e.path).name.startswith(f"{split}-")),
                        key=lambda e: e.path)
        return [f"{root}/{e.path}" for e in chosen], {f"{root}/{e.path}": e.sha256 for e in chosen
                                                      if e.sha256}
    return sorted(fs.glob(f"{root}/{folder}/{split}-*.parquet")), {}


_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) checked in this process


def verify_checksum(path: str, expected: str) -> None:
    """Check a local shard's sha256 against its build record, once per file per process (again
    only if the file's size or mtime changes). AvsynthError naming the shard on a mismatch."""
    from avsynth.io import sha256_file

    st = Path(path).stat()
    key = (str(path), int(st.st_size), int(st.st_mtime_ns))
    if key in _VERIFIED:
        return
    if sha256_file(Path(path)) != expected:
        raise AvsynthError(f"{path}: shard does not match the sha256 in its manifest.json (it was "
                           "changed or damaged after the build); rebuild or re-download it")
    _VERIFIED.add(key)


@dataclass(frozen=True)
class RowGroupRef:
    """One row group: which file, which group in it, its row count and first global row index."""

    file: int
    group: int
    rows: int
    start: int


class _FileCache:
    """Lazily opened ``pq.ParquetFile`` handles (dropped on pickling, so workers reopen)."""

    def __init__(self, fs: fsspec.AbstractFileSystem, paths: Sequence[str],
                 digests: dict[str, str] | None = None):
        self.fs = fs
        self.paths = list(paths)
        self.digests = dict(digests or {})
        self._open: dict[int, pq.ParquetFile] = {}

    def get(self, i: int) -> pq.ParquetFile:
        pf = self._open.get(i)
        if pf is None:
            path = self.paths[i]
            try:
                if isinstance(self.fs, LocalFileSystem):
                    if path in self.digests:
                        verify_checksum(path, self.digests[path])
                    pf = pq.ParquetFile(path)
                else:
                    pf = pq.ParquetFile(self.fs.open(path, "rb"))
            except (pa.ArrowException, OSError) as err:
                text = (str(err).strip().splitlines() or [type(err).__name__])[-1]
                raise AvsynthError(f"{path}: not a readable Parquet shard ({text})") from None
            self._open[i] = pf
        return pf

    def __getstate__(self) -> dict:
        return {"fs": self.fs, "paths": self.paths, "digests": self.digests, "_open": {}}


class ShardReader:
    """The row groups of one split of a shard directory, read with pyarrow.

    ``source`` is a local directory or an fsspec URL (``hf://datasets/ORG/NAME``, ``s3://...``);
    ``columns`` projects the read (None = all columns).
    """

    def __init__(
        self,
        source: str | Path,
        split: str,
        columns: Sequence[str] | None = None,
        *,
        storage_options: dict | None = None,
        folder: str = "data",
    ):
        self.source = str(source)
        self.split = split
        self.columns = list(columns) if columns is not None else None
        try:
            self.fs, self.root = _open_fs(source, storage_options)
            paths, digests = _list_shards(self.fs, self.root, folder, split)
        except AvsynthError:
            raise
        except Exception as err:  # fsspec backends (HTTP, S3, the Hub) raise their own errors
            text = (str(err).strip().splitlines() or [type(err).__name__])[-1][:300]
            raise AvsynthError(f"{source}: cannot list the shards ({type(err).__name__}: {text})"
                               ) from None
        if not paths:
            raise AvsynthError(f"{source}: no {folder}/{split}-*.parquet shards")
        self.files = _FileCache(self.fs, paths, digests)
        self.row_groups: list[RowGroupRef] = []
        start = 0
        for i in range(len(paths)):
            meta = self.files.get(i).metadata
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                self.row_groups.append(RowGroupRef(i, g, n, start))
                start += n
        self._starts = np.array([rg.start for rg in self.row_groups], dtype=np.int64)
        self._len = start

    @property
    def paths(self) -> list[str]:
        return self.files.paths

    @property
    def schema(self) -> pa.Schema:
        return self.files.get(0).schema_arrow

    def __len__(self) -> int:
        return self._len

    @property
    def num_row_groups(self) -> int:
        return len(self.row_groups)

    def read_row_group(self, i: int, columns: Sequence[str] | None = None) -> pa.Table:
        """Row group ``i`` (global numbering across the split's files) as a pyarrow Table."""
        ref = self.row_groups[i]
        cols = list(columns) if columns is not None else self.columns
        return self.files.get(ref.file).read_row_group(ref.group, columns=cols)

    def iter_batches(self, row_groups: Sequence[int] | None = None, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        """One Table per row group, in order (or the given row groups, in the given order)."""
        for i in range(self.num_row_groups) if row_groups is None else row_groups:
            yield self.read_row_group(i, columns)

    def iter_rows(self, columns: Sequence[str] | None = None) -> Iterator[dict]:
        """Rows as dicts of Python values (media columns stay encoded ``{"bytes", "path"}``)."""
        for table in self.iter_batches(columns=columns):
            yield from table.to_pylist()

    def locate(self, index: int) -> tuple[int, int]:
        """(row group, row within it) of global row ``index``."""
        if not 0 <= index < self._len:
            raise IndexError(f"row {index} out of range for {self._len} rows")
        g = int(np.searchsorted(self._starts, index, side="right") - 1)
        return g, index - self.row_groups[g].start


# ------------------------------------------------------------------------------------- decoding


def decode_image(data: bytes) -> torch.Tensor:
    """JPEG/PNG bytes -> uint8 tensor [3, H, W] (stored orientation; EXIF is not applied)."""
    img = Image.open(io.BytesIO(data))
    arr = np.asarray(img.convert("RGB"))
    # numpy's transpose copy is fast on one thread; torch's .contiguous() may fan out to threads
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def decode_image_and_mask(row: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A row's image as uint8 [H, W, 3] and its mask as bool [H, W] at the image's size.

    An undecodable image or mask is a SourceError naming ``where`` (a shard and row).
    """
    try:
        image = decode_image(row["image"]["bytes"]).permute(1, 2, 0).numpy()
    except (OSError, ValueError) as err:
        raise SourceError(where, f"image does not decode: {err}") from err
    mask = decode_png(row["mask"]["bytes"], where)
    if mask.shape != image.shape[:2]:
        mask = resize_nearest(mask, image.shape[1], image.shape[0])
    return np.ascontiguousarray(image), mask


def decode_sample(row: dict, mask_dtype: torch.dtype = torch.bool) -> dict:
    """Decode the media columns present in ``row``; other columns are passed through."""
    out = dict(row)
    if row.get("image") is not None:
        out["image"] = decode_image(row["image"]["bytes"])
    if row.get("mask") is not None:
        out["mask"] = torch.from_numpy(decode_png(row["mask"]["bytes"])).to(mask_dtype)
    if row.get("audio") is not None:
        wave, sr = decode_audio(row["audio"]["bytes"])
        out["audio"] = torch.from_numpy(wave)
        out["sample_rate"] = sr
    return out


class _LRU:
    """A tiny least-recently-used cache of row-group tables."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self.items: OrderedDict = OrderedDict()

    def get(self, key, load: Callable[[], pa.Table]) -> pa.Table:
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = load()
        self.items[key] = value
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value

    def __getstate__(self) -> dict:
        return {"size": self.size, "items": OrderedDict()}


def _seeded_int(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()[:8], "big")


class AudioPool:
    """Index of the train audio pool (``DIR/audio_pool/train-*.parquet``) by category.

    Only the small ``category``/``audio_id`` columns are read up front; a clip's audio is read on
    demand from its row group (kept in a small LRU), so memory stays bounded.
    """

    def __init__(self, source: str | Path, *, storage_options: dict | None = None, cache_row_groups: int = 32):
        self.reader = ShardReader(source, "train", columns=list(_AUDIO_FIELDS), storage_options=storage_options, folder="audio_pool")
        self.by_category: dict[str, list[tuple[int, int]]] = {}
        for g in range(self.reader.num_row_groups):
            cats = self.reader.read_row_group(g, ["category"]).column("category").to_pylist()
            for j, cat in enumerate(cats):
                self.by_category.setdefault(cat, []).append((g, j))
        self._cache = _LRU(cache_row_groups)

    def __len__(self) -> int:
        return len(self.reader)

    def categories(self) -> list[str]:
        return sorted(self.by_category)

    def draw(self, category: str, seed: int, epoch: int, row_id: str) -> dict | None:
        """The pool clip for ``row_id`` in ``epoch``: deterministic in (seed, epoch, row id)."""
        clips = self.by_category.get(category)
        if not clips:
            return None
        g, j = clips[_seeded_int(seed, epoch, row_id) % len(clips)]
        table = self._cache.get(g, lambda: self.reader.read_row_group(g))
        return table.slice(j, 1).to_pylist()[0]


class TripletDataset(Dataset):
    """Map-style dataset over one split: ``ds[i]`` is the decoded sample of global row ``i``.

    Random access reads whole row groups (kept in a small LRU), so sequential or group-local
    access is fast (the trainer's validation split); for shuffled training use
    :class:`TripletIterableDataset`. ``decode=False`` leaves the media encoded (the row as
    stored). ``transform(sample, index)`` gets the row's global index too.
    """

    def __init__(
        self,
        source: str | Path,
        split: str,
        *,
        columns: Sequence[str] | None = None,
        transform: Callable[[dict, int], dict] | None = None,
        mask_dtype: torch.dtype = torch.bool,
        cache_row_groups: int = 2,
        decode: bool = True,
        storage_options: dict | None = None,
    ):
        self.reader = ShardReader(source, split, columns, storage_options=storage_options)
        self.transform = transform
        self.mask_dtype = mask_dtype
        self.decode = decode
        self._cache = _LRU(cache_row_groups)

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        g, j = self.reader.locate(index)
        table = self._cache.get(g, lambda: self.reader.read_row_group(g))
        sample = table.slice(j, 1).to_pylist()[0]
        if self.decode:
            sample = decode_sample(sample, self.mask_dtype)
        return self.transform(sample, index) if self.transform else sample


class TripletIterableDataset(IterableDataset):
    """Streaming dataset over one split for training.

    Each epoch the row groups are shuffled (seeded by ``seed`` and the epoch), dealt to the
    distributed ranks (``rank::world_size``) and then to the DataLoader workers of each rank, so
    every row is read exactly once per epoch across all of them. Rows pass through a shuffle
    buffer of ``shuffle_buffer`` rows (0 = keep order). With ``repair_audio`` (default: on for
    the train split) each row's audio is replaced by a clip of the same category drawn from the
    audio pool, deterministically from (seed, epoch, row id). Call :meth:`set_epoch` before each
    epoch (with ``persistent_workers=True`` the workers keep the epoch they were started with).
    With several ranks and ``even_ranks`` (default) every rank yields the same number of rows
    (the smallest rank's count; the few surplus rows differ each epoch), so DDP never waits on a
    rank that ran out; ``even_ranks=False`` yields every row exactly once per epoch instead.
    """

    def __init__(
        self,
        source: str | Path,
        split: str,
        *,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_buffer: int = 256,
        repair_audio: bool | None = None,
        columns: Sequence[str] | None = None,
        transform: Callable[[dict], dict] | None = None,
        mask_dtype: torch.dtype = torch.bool,
        decode: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        even_ranks: bool = True,
        storage_options: dict | None = None,
    ):
        self.reader = ShardReader(source, split, columns, storage_options=storage_options)
        self.split = split
        self.even_ranks = even_ranks
        self.seed = seed
        self.shuffle = shuffle
        self.shuffle_buffer = max(0, shuffle_buffer) if shuffle else 0
        self.repair_audio = (split == "train") if repair_audio is None else repair_audio
        if self.repair_audio and columns is not None and not {"id", "category", "audio"} <= set(columns):
            raise ValueError("audio re-pairing needs the 'id', 'category' and 'audio' columns")
        self.pool = AudioPool(source, storage_options=storage_options) if self.repair_audio else None
        self.transform = transform
        self.mask_dtype = mask_dtype
        self.decode = decode
        self._rank, self._world = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _dist(self) -> tuple[int, int]:
        if self._rank is not None and self._world is not None:
            return self._rank, self._world
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _units(self) -> list[int]:
        units = list(range(self.reader.num_row_groups))
        if self.shuffle:
            random.Random(_seeded_int("groups", self.seed, self.epoch)).shuffle(units)
        return units

    def _rows(self, groups: Sequence[int]) -> int:
        return sum(self.reader.row_groups[g].rows for g in groups)

    def rank_row_groups(self) -> list[int]:
        """Row groups this rank reads in the current epoch (all of its workers together)."""
        rank, world = self._dist()
        return self._units()[rank::world]

    def __len__(self) -> int:
        """Rows this rank yields in the current epoch (equal on all ranks with ``even_ranks``)."""
        rank, world = self._dist()
        units = self._units()
        if self.even_ranks and world > 1:
            return min(self._rows(units[r::world]) for r in range(world))
        return self._rows(units[rank::world])

    def worker_row_groups(self) -> list[int]:
        """Row groups of the calling DataLoader worker in the current epoch."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.rank_row_groups()[worker::workers]

    def _worker_cap(self) -> int | None:
        """How many rows the calling worker may yield so that every rank yields ``len(self)``.

        The rank's surplus over the smallest rank is taken from its last workers first; every
        worker computes the same split, so no communication is needed.
        """
        _, world = self._dist()
        if not self.even_ranks or world <= 1:
            return None
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = self.rank_row_groups()
        sizes = [self._rows(mine[w::workers]) for w in range(workers)]
        surplus = sum(sizes) - len(self)
        for w in reversed(range(workers)):
            cut = min(surplus, sizes[w])
            sizes[w] -= cut
            surplus -= cut
        return sizes[worker]

    def __iter__(self) -> Iterator[dict]:
        cap = self._worker_cap()
        for n, row in enumerate(self._shuffled_rows()):
            if cap is not None and n >= cap:
                return
            yield self._finish(row)

    def _shuffled_rows(self) -> Iterator[dict]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        rank, _ = self._dist()
        rng = random.Random(_seeded_int("buffer", self.seed, self.epoch, rank, worker))
        buffer: list[dict] = []
        for table in self.reader.iter_batches(self.worker_row_groups()):
            for row in table.to_pylist():
                if self.shuffle_buffer <= 1:
                    yield row
                    continue
                buffer.append(row)
                if len(buffer) >= self.shuffle_buffer:
                    k = rng.randrange(len(buffer))
                    buffer[k], buffer[-1] = buffer[-1], buffer[k]
                    yield buffer.pop()
        rng.shuffle(buffer)
        yield from buffer

    def _finish(self, row: dict) -> dict:
        if self.pool is not None:
            clip = self.pool.draw(row["category"], self.seed, self.epoch, row["id"])
            if clip is not None:
                row = {**row, **{k: clip[k] for k in _AUDIO_FIELDS if k in row or k == "audio"}}
        if self.decode:
            row = decode_sample(row, self.mask_dtype)
        return self.transform(row) if self.transform else row
