"""A FiftyOne view of a shard directory: images with their masks, the category and the audio.

``build_fiftyone_dataset`` turns one split of a shard directory into a persistent FiftyOne
dataset. The media are materialised into a cache folder (FiftyOne shows files, not Parquet cells):
``images/{row id}.jpg`` (the stored bytes, unchanged), ``masks/{row id}.png`` (pixel value =
category_id + 1, so FiftyOne's ``mask_targets`` name the object) and ``audio/{row id}.flac|wav``.
Each sample has ``ground_truth`` (``fo.Segmentation``), ``category`` (``fo.Classification``),
``audio_path``, the source ids, ``mask_area`` and the split as a tag.

The dataset records a fingerprint of what it was built from (the split's shard sha256s from
manifest.json, the row limit, the layout version). A second call with the same inputs reuses the
dataset and its cache after one listing of the media folders (no shard is read, no file written);
if the shards changed, both are rebuilt. The media folder is named by the split's shards, not by
the limit, so every ``--limit`` of a split shares one copy: a limit inside what is already
materialised writes no file, a larger one writes only the rows that are missing.

FiftyOne is an optional extra (``pip install 'avsynth[fiftyone]'``): it is imported only here,
lazily, and a clear error says how to install it when it is missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from avsynth.errors import AvsynthError
from avsynth.io import atomic_write_bytes, cache_dir as cache_dir_for
from avsynth.media.mask import decode_png
from avsynth.shards.schema import SPLITS
from avsynth.shards.record import BuildRecord, ShardEntry, read_record

log = logging.getLogger(__name__)

LAYOUT_VERSION = 2  # 2: app config (visible masks, colour), audio panel
INFO_KEY = "avsynth"
_COLUMNS = [
    "id", "split", "category", "category_id", "image", "mask", "audio", "mask_area",
    "image_source", "image_id", "annotation_id", "audio_source", "audio_id", "audio_label",
]  # fmt: skip


class FiftyOneUnavailable(AvsynthError):
    """FiftyOne is not installed, or its database cannot start."""


def import_fiftyone():
    """``import fiftyone`` or raise FiftyOneUnavailable with installation advice."""
    try:
        import fiftyone as fo
    except ImportError as err:
        raise FiftyOneUnavailable(
            f"FiftyOne is not installed ({err}). Install the optional extra: "
            "pip install 'avsynth[fiftyone]' (on Debian 12 run scripts/setup.sh, which also "
            "provides the MongoDB that FiftyOne needs)."
        ) from err
    return fo


def _check_database(fo) -> None:
    """Start / reach FiftyOne's MongoDB; a failure becomes FiftyOneUnavailable."""
    try:
        fo.list_datasets()
    except Exception as err:  # ServiceListenTimeout, ConnectionFailure, missing mongod, ...
        raise FiftyOneUnavailable(
            f"FiftyOne's database did not start ({type(err).__name__}: {err}). Its bundled mongod "
            "needs OpenSSL 1.1 on Debian 12 (scripts/setup.sh installs libssl1.1), or point "
            "FIFTYONE_DATABASE_URI at a running MongoDB."
        ) from err


# ---------------------------------------------------------------------------------------------
# Inputs and fingerprint


def split_shards(directory: Path, record: BuildRecord, split: str) -> list[ShardEntry]:
    """The manifest entries of ``split``'s shards, in index order; error if there are none."""
    if split not in SPLITS:
        raise AvsynthError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    entries = sorted(record.split_shards(split), key=lambda s: s.path)
    if not entries:
        raise AvsynthError(f"{directory}: manifest.json lists no {split!r} shards")
    for s in entries:
        if not (directory / s.path).is_file():
            raise AvsynthError(f"{directory / s.path}: listed in manifest.json but missing")
    return entries


def fingerprint(entries: list[ShardEntry], split: str, limit: int | None) -> str:
    """Hex digest identifying the view's inputs (shard sha256s, split, limit, layout)."""
    key = {
        "layout": LAYOUT_VERSION,
        "split": split,
        "limit": limit,
        "shards": [[s.path, s.sha256, s.rows] for s in entries],
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def media_key(entries: list[ShardEntry], split: str) -> str:
    """The media folder's name: 16 hex digits of the split's shards (whatever the limit)."""
    return fingerprint(entries, split, None)[:16]


def default_name(directory: Path, split: str, limit: int | None = None) -> str:
    """``avsynth-{folder}-{split}[-{limit}]`` (folder name made safe)."""
    folder = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(directory).resolve().name).strip("-") or "shards"
    return f"avsynth-{folder}-{split}" + (f"-{limit}" if limit is not None else "")


# ---------------------------------------------------------------------------------------------
# Materialising media


def _image_ext(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".jpg"


def _audio_ext(data: bytes) -> str:
    if data[:4] == b"fLaC":
        return ".flac"
    if data[:4] == b"RIFF":
        return ".wav"
    if data[:4] == b"OggS":
        return ".ogg"
    return ".bin"


def _safe(row_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", row_id)


def label_mask_png(mask_png: bytes, category_id: int, where: str) -> bytes:
    """The stored mask as a PNG whose object pixels hold ``category_id + 1`` (0 = background);
    8-bit when the value fits, else 16-bit."""
    mask = decode_png(mask_png, where)
    value = int(category_id) + 1
    dtype = np.uint8 if value <= 255 else np.uint16
    labels = (mask.astype(dtype) * dtype(value)).astype(dtype)
    buf = io.BytesIO()
    Image.fromarray(labels).save(buf, format="PNG")
    return buf.getvalue()


@dataclass(frozen=True)
class _Materialised:
    row: dict
    image_path: Path
    mask_path: Path
    audio_path: Path


_MEDIA = ("image", "mask", "audio")
_META = [c for c in _COLUMNS if c not in _MEDIA]


def _row_groups(directory: Path, entries: list[ShardEntry]) -> Iterator[tuple[pq.ParquetFile, int, Path]]:
    for s in entries:
        path = directory / s.path
        try:
            pf = pq.ParquetFile(path)
        except OSError as err:
            raise AvsynthError(f"{path}: cannot read shard ({err})") from err
        for g in range(pf.metadata.num_row_groups):
            yield pf, g, path


def _read(pf: pq.ParquetFile, g: int, columns: list[str], path: Path) -> list[dict]:
    try:
        return pf.read_row_group(g, columns=columns).to_pylist()
    except OSError as err:
        raise AvsynthError(f"{path}: cannot read shard ({err})") from err


def _listing(media_dir: Path) -> dict[str, dict[str, str]]:
    """{sub folder: {file stem: file name}} of the media folder (one directory listing each)."""
    out = {}
    for sub in ("images", "masks", "audio"):
        try:
            with os.scandir(media_dir / sub) as it:
                out[sub] = {e.name.rsplit(".", 1)[0]: e.name for e in it
                            if not e.name.startswith(".") and e.is_file()}
        except FileNotFoundError:
            out[sub] = {}
    return out


def materialise(directory: Path, entries: list[ShardEntry], limit: int | None, media_dir: Path,
                progress=None) -> tuple[list[_Materialised], int]:
    """Each row's image, label mask and audio under ``media_dir``: files already there (from an
    earlier view of the same shards, e.g. another ``--limit``) are kept, the missing ones written.
    A row group whose rows all have their files is read without its media columns. Returns the
    rows and the number of files written. ``progress(phase, done, total)`` every row group."""
    for sub in ("images", "masks", "audio"):
        (media_dir / sub).mkdir(parents=True, exist_ok=True)
    have = _listing(media_dir)
    out: list[_Materialised] = []
    written = 0
    total = sum(max(0, e.rows) for e in entries)
    total = min(total, limit) if limit is not None else total
    for pf, g, path in _row_groups(directory, entries):
        if limit is not None and len(out) >= limit:
            break
        if progress is not None:
            progress("write media (rows)", len(out), total)
        meta = _read(pf, g, _META, path)
        if limit is not None:
            meta = meta[:limit - len(out)]
        stems = [_safe(r["id"]) for r in meta]
        present = [st in have["images"] and st in have["masks"] and st in have["audio"] for st in stems]
        media = None if all(present) else _read(pf, g, list(_MEDIA), path)
        for k, (row, stem) in enumerate(zip(meta, stems)):
            if present[k]:
                paths = (media_dir / "images" / have["images"][stem], media_dir / "masks" / have["masks"][stem],
                         media_dir / "audio" / have["audio"][stem])
            else:
                m = media[k]
                image, audio = m["image"]["bytes"], m["audio"]["bytes"]
                paths = (
                    media_dir / "images" / f"{stem}{_image_ext(image)}",
                    media_dir / "masks" / f"{stem}.png",
                    media_dir / "audio" / f"{stem}{_audio_ext(audio)}",
                )
                atomic_write_bytes(paths[0], image)
                atomic_write_bytes(paths[1], label_mask_png(m["mask"]["bytes"], row["category_id"], f"row {row['id']}"))
                atomic_write_bytes(paths[2], audio)
                written += 3
            out.append(_Materialised(row, *paths))
    if progress is not None:
        progress("write media (rows)", len(out), len(out))
    return out, written


# ---------------------------------------------------------------------------------------------
# The FiftyOne dataset


@dataclass
class ViewResult:
    """The FiftyOne dataset, whether an existing one was reused, and its media cache folder."""

    dataset: Any
    reused: bool
    cache_dir: Path
    media_written: int = 0  # files written into cache_dir by this call (0 when everything was there)


def _sample(fo, m: _Materialised):
    r = m.row
    return fo.Sample(
        filepath=str(m.image_path),
        tags=[r["split"]],
        ground_truth=fo.Segmentation(mask_path=str(m.mask_path)),
        category=fo.Classification(label=r["category"]),
        category_id=int(r["category_id"]),
        row_id=r["id"],
        audio_path=str(m.audio_path),
        image_source=r["image_source"],
        image_id=r["image_id"],
        annotation_id=r["annotation_id"],
        audio_source=r["audio_source"],
        audio_id=r["audio_id"],
        audio_label=r["audio_label"],
        mask_area=float(r["mask_area"]),
    )


def _reusable(dataset, fp: str, media_dir: Path) -> bool:
    """The dataset was built from these inputs and every sample's image, mask and audio file is in
    ``media_dir`` (checked against one listing per folder, not a stat per file)."""
    info = (dataset.info or {}).get(INFO_KEY) or {}
    if info.get("fingerprint") != fp or info.get("samples") != len(dataset):
        return False
    if not media_dir.is_dir():
        return False
    names = {str(media_dir / sub): set(files.values()) for sub, files in _listing(media_dir).items()}
    paths = dataset.values(["filepath", "ground_truth.mask_path", "audio_path"])
    return all(os.path.basename(p) in names.get(os.path.dirname(p), ()) for column in paths for p in column)


def _old_media_dirs(cache: Path, keep: Path) -> list[Path]:
    """Media folders of earlier builds in ``cache``: 16-hex-digit names holding only our
    images/masks/audio folders (anything else in a user-given cache folder is left alone)."""
    if not cache.is_dir():
        return []
    out = []
    for d in sorted(cache.iterdir()):
        if d == keep or not d.is_dir() or not re.fullmatch(r"[0-9a-f]{16}", d.name):
            continue
        if {c.name for c in d.iterdir()} <= {"images", "masks", "audio"}:
            out.append(d)
    return out


def open_view(
    directory: Path,
    split: str = "train",
    limit: int | None = None,
    name: str | None = None,
    cache_dir: Path | None = None,
    progress=None,
) -> ViewResult:
    """Build (or reuse) the persistent FiftyOne dataset of ``split`` of ``directory``;
    ``progress(phase, done, total)`` follows the media writing and the sample import."""
    if limit is not None and limit < 1:
        raise AvsynthError(f"--limit must be at least 1, got {limit}")
    directory = Path(directory)
    if not directory.is_dir():
        raise AvsynthError(f"{directory}: not a directory")
    record = read_record(directory)
    entries = split_shards(directory, record, split)
    fp = fingerprint(entries, split, limit)
    name = name or default_name(directory, split, limit)
    # the cache folder and its media are shared by every --limit (and --name) of the split
    cache = Path(cache_dir) if cache_dir is not None else cache_dir_for("fiftyone", default_name(directory, split))
    cache = cache.resolve()
    media_dir = cache / media_key(entries, split)

    fo = import_fiftyone()
    _check_database(fo)
    if fo.dataset_exists(name):
        dataset = fo.load_dataset(name)
        if INFO_KEY not in (dataset.info or {}):
            raise AvsynthError(
                f"a FiftyOne dataset named {name!r} exists and was not made by avsynth; "
                "choose another --name (it is left untouched)"
            )
        if _reusable(dataset, fp, media_dir):
            log.info("reusing FiftyOne dataset %s (%d samples)", name, len(dataset))
            return ViewResult(dataset, True, media_dir)
        log.info("rebuilding FiftyOne dataset %s: its shards or cache changed", name)
        dataset.delete()
    for old in _old_media_dirs(cache, keep=media_dir):
        shutil.rmtree(old)

    rows, written = materialise(directory, entries, limit, media_dir, progress)
    if progress is not None:
        progress("FiftyOne samples", 0, 2)
    dataset = fo.Dataset(name)
    categories = sorted({(c["category_id"], c["name"]) for c in record.categories})
    categories = categories or sorted({(m.row["category_id"], m.row["category"]) for m in rows})
    dataset.mask_targets = {"ground_truth": {int(cid) + 1: cname for cid, cname in categories}}
    dataset.app_config.active_fields = fo.ActiveFields(paths=["ground_truth", "category"])
    colors = [{"intTarget": int(cid) + 1, "color": MASK_COLOR} for cid, _ in categories]
    dataset.app_config.color_scheme = fo.ColorScheme(
        color_by="value", opacity=MASK_OPACITY, default_mask_targets_colors=colors,
        fields=[{"path": "ground_truth", "maskTargetsColors": colors}],
    )
    dataset.add_samples([_sample(fo, m) for m in rows], progress=False)
    if progress is not None:
        progress("FiftyOne samples", 1, 2)
    dataset.compute_metadata(progress=False)
    if progress is not None:
        progress("FiftyOne samples", 2, 2)
    dataset.info[INFO_KEY] = {
        "fingerprint": fp,
        "source": str(directory.resolve()),
        "split": split,
        "limit": limit,
        "samples": len(rows),
        "cache_dir": str(media_dir),
    }
    dataset.persistent = True
    dataset.save()
    return ViewResult(dataset, False, media_dir, written)


def build_fiftyone_dataset(
    directory: Path,
    split: str = "train",
    limit: int | None = None,
    name: str | None = None,
    cache_dir: Path | None = None,
):
    """The persistent ``fo.Dataset`` of ``split`` (built, or reused when its shards are unchanged)."""
    return open_view(directory, split, limit, name, cache_dir).dataset


PLUGINS_DIR = Path(__file__).resolve().parent / "fiftyone_plugins"
AUDIO_PANEL = "audio_player"  # the panel of PLUGINS_DIR/audio (plays the sample's audio_path)
MASK_COLOR = "#ff1dce"  # one vivid colour for every mask: easy to see on any photograph
MASK_OPACITY = 0.6


def use_audio_plugin() -> Path:
    """Point FiftyOne (this process and the App server it starts) at avsynth's plugin folder,
    whose panel plays a sample's audio clip. A plugins folder the user set is kept if it already
    holds the plugin; otherwise ours replaces it for this App session (said in the log)."""
    import os

    fo = import_fiftyone()
    current = os.environ.get("FIFTYONE_PLUGINS_DIR") or fo.config.plugins_dir
    has_ours = bool(current) and Path(current).is_dir() and any(Path(current).rglob("audio/fiftyone.yml"))
    if current and Path(current).is_dir() and any(Path(current).iterdir()) and not has_ours:
        log.warning("using avsynth's FiftyOne plugins folder %s instead of %s for this session", PLUGINS_DIR, current)
    if not has_ours:
        os.environ["FIFTYONE_PLUGINS_DIR"] = str(PLUGINS_DIR)
        fo.config.plugins_dir = str(PLUGINS_DIR)
    return Path(fo.config.plugins_dir)


def audio_url(path: str | Path) -> str:
    """The App's URL of a sample's audio file (the App server's ``/media`` route), as the panel
    builds it."""
    from urllib.parse import quote

    return "/media?filepath=" + quote(str(path), safe="")


def _spaces(fo):
    """The grid beside the audio panel (the panel also opens in the sample modal)."""
    samples, audio = fo.Panel(type="Samples", pinned=True), fo.Panel(type=AUDIO_PANEL)
    return fo.Space(children=[fo.Space(children=[samples], active_child=samples.component_id),
                              fo.Space(children=[audio], active_child=audio.component_id)],
                    orientation="horizontal")


def launch(dataset, port: int = 5151, wait: bool = True):
    """Open the FiftyOne App on ``dataset`` at ``port`` with the audio panel beside the grid.
    With ``wait``, block until Ctrl-C (closing the browser tab does not end it), then stop the
    App server; returns the session (already closed when ``wait``)."""
    fo = import_fiftyone()
    use_audio_plugin()
    session = fo.launch_app(dataset, port=port, auto=False, spaces=_spaces(fo))
    if wait:
        try:
            session.wait(-1)
        except KeyboardInterrupt:
            pass
        finally:
            close(session, port)
    return session


def close(session, port: int) -> None:
    """Close ``session`` and stop the App server process it started on ``port``."""
    from fiftyone.core.session import session as fos

    session.close()
    service = fos._server_services.pop(port, None)
    if service is not None:
        service.stop()
