"""Integrity check of a shard directory against its ``manifest.json`` build record.

Checked: the record parses; every listed shard (triplet shards and audio pool) exists with the
recorded size, sha256 and row count, its name matches its split / index / shard count and the
indices of a split are complete; no unlisted ``.parquet`` or leftover temporary files; each file's
schema and ``huggingface`` features are the expected ones; per-split (and per-category) row
totals; the ``split`` column matches the file; ids are unique; no image and no audio clip appears in two splits;
categories agree with the record; and every row (or a seeded sample of N rows) decodes: the image,
the mask (its size must equal the image size, its area and box the stored ones) and the audio (its
length the stored window).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from avsynth.errors import AvsynthError
from avsynth.media.audio import decode_audio
from avsynth.media.image import decode_image_size
from avsynth.media.mask import decode_label_png, decode_png, mask_stats
from avsynth.io import TMP_PREFIX, sha256_file
from avsynth.shards.record import RECORD_NAME, load_record_json, record_path
from avsynth.shards.schema import (
    DATA_DIR, FORMAT, POOL_DIR, POOL_SCHEMA, ROW_SCHEMA, SEMANTIC_SCHEMA, SPLITS, arrow_schema, parse_shard_name,
    row_layout, schema_features,
)
_SCALARS = ["id", "split", "category", "category_id", "image_source", "image_id", "audio_source", "audio_id"]
_AREA_TOL = 1e-4
_BBOX_TOL = 1e-4


@dataclass(frozen=True)
class Problem:
    """One verification failure: the file (relative to the directory), the row if any, what is wrong."""

    path: str
    row: int | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.row is None else f"{self.path} row {self.row}"
        return f"{where}: {self.message}"


@dataclass
class VerifyReport:
    """The result of :func:`verify_dir`: ``ok`` when no problem was found."""

    directory: Path
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, path: str, message: str, row: int | None = None) -> None:
        self.problems.append(Problem(path, row, message))

    def summary(self, max_lines: int = 100) -> str:
        c = self.counts
        head = (
            f"{self.directory}: {c['shards']} shards, {c['rows']} rows, {c['pool_shards']} audio-pool "
            f"shards ({c['pool_rows']} clips); decoded {c['decoded_rows']} rows and {c['decoded_pool_rows']} pool clips"
        )
        if self.ok:
            return head + "\nOK"
        lines = [head, f"{len(self.problems)} problem(s):"]
        lines += [f"  - {p}" for p in self.problems[:max_lines]]
        if len(self.problems) > max_lines:
            lines.append(f"  ... and {len(self.problems) - max_lines} more")
        return "\n".join(lines)


@dataclass
class _Shard:
    rel: str
    path: Path
    split: str | None
    rows: int
    schema: pa.Schema
    entry: dict
    readable: bool = False


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


def verify_dir(directory: Path | str, sample: int | None = None, seed: int = 0,
               progress: Progress | None = None) -> VerifyReport:
    """Verify a shard directory; ``sample`` = decode only N seeded rows (and N pool clips).
    ``progress(phase, done, total)`` is called as files are checked and shards decoded."""
    progress = progress or _no_progress
    directory = Path(directory)
    report = VerifyReport(directory)
    if not directory.is_dir():
        raise AvsynthError(f"{directory}: not a directory")
    record = _load_record(directory, report)
    if record is None:
        _unlisted(directory, set(), report)
        return report
    row_schema = arrow_schema(*row_layout(record.get("arguments") if isinstance(record.get("arguments"), dict) else {}))
    shards = _check_listing(directory, record, report, row_schema)
    _check_files(shards, report, progress)
    progress("checksums", len(shards), len(shards))
    _unlisted(directory, {s.rel for s in shards}, report)
    data = [s for s in shards if s.schema is row_schema and s.readable]
    pool = [s for s in shards if s.schema is POOL_SCHEMA and s.readable]
    _check_split_totals(record, shards, report)
    _check_columns(data, record, report)
    _decode_rows(data, sample, seed, report, progress,
                 _semantic_table(record) if row_schema is SEMANTIC_SCHEMA else None)
    _decode_pool(pool, sample, seed, report, progress)
    return report


def _load_record(directory: Path, report: VerifyReport) -> dict | None:
    """The raw record (unchecked JSON: verifying it is this module's job), or None with a problem."""
    path = record_path(directory)
    if not path.is_file():
        report.add(RECORD_NAME, "missing (every shard directory carries its build record)")
        return None
    try:
        record = load_record_json(path)
    except (ValueError, UnicodeDecodeError) as err:
        report.add(RECORD_NAME, f"not valid JSON ({err})")
        return None
    if not isinstance(record, dict):
        report.add(RECORD_NAME, "not a JSON object")
        return None
    if record.get("format") != FORMAT:
        report.add(RECORD_NAME, f"format is {record.get('format')!r}, expected {FORMAT!r}")
    for key in ("shards", "splits"):
        if key not in record:
            report.add(RECORD_NAME, f"has no {key!r} entry")
    if not isinstance(record.get("shards") or [], list) or not isinstance(record.get("audio_pool") or [], list):
        report.add(RECORD_NAME, "'shards' and 'audio_pool' must be lists")
        return None
    return record


def _check_listing(directory: Path, record: dict, report: VerifyReport, row_schema=ROW_SCHEMA) -> list[_Shard]:
    """Turn manifest entries into _Shard items, checking names, indices and completeness."""
    shards: list[_Shard] = []
    seen: set[str] = set()
    indices: dict[str, dict[int, int]] = defaultdict(dict)  # split -> index -> num_shards
    entries = [(e, row_schema, DATA_DIR) for e in record.get("shards") or []]
    entries += [(e, POOL_SCHEMA, POOL_DIR) for e in record.get("audio_pool", []) or []]
    for entry, schema, folder in entries:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not rel or rel.startswith("/") or ".." in Path(rel).parts:
            report.add("manifest.json", f"bad shard entry {entry!r}")
            continue
        if rel in seen:
            report.add(rel, "listed twice in manifest.json")
            continue
        seen.add(rel)
        name = parse_shard_name(Path(rel).name)
        if Path(rel).parent.as_posix() != folder or name is None:
            report.add(rel, f"name does not follow {folder}/{{split}}-{{i:05d}}-of-{{n:05d}}.parquet")
            split = None
        else:
            split, index, num = name
            if schema is not POOL_SCHEMA:
                _check_data_entry(rel, entry, name, report)
                indices[split][index] = num
            elif split != "train":
                report.add(rel, "audio-pool shards hold the train split only")
        rows = entry.get("rows")
        if not isinstance(rows, int) or rows < 0:
            report.add(rel, f"manifest row count {rows!r} is not a non-negative integer")
            rows = -1
        shards.append(_Shard(rel, directory / rel, split, rows, schema, entry))
    for split, found in indices.items():
        totals = set(found.values())
        if len(totals) != 1:
            report.add("manifest.json", f"split {split!r} shards disagree on the shard count: {sorted(totals)}")
            continue
        n = totals.pop()
        missing = sorted(set(range(n)) - set(found))
        if missing:
            report.add("manifest.json", f"split {split!r} lists {len(found)} of {n} shards; missing indices {missing[:10]}")
    return shards


def _check_data_entry(rel: str, entry: dict, name: tuple[str, int, int], report: VerifyReport) -> None:
    split, index, num = name
    if split not in SPLITS:
        report.add(rel, f"unknown split {split!r} in file name")
    if entry.get("split") is not None and entry.get("split") != split:
        report.add(rel, f"manifest says split {entry.get('split')!r} but the file name says {split!r}")
    if entry.get("index") is not None and entry.get("index") != index:
        report.add(rel, f"manifest index {entry.get('index')} differs from the file name")
    if entry.get("num_shards") is not None and entry.get("num_shards") != num:
        report.add(rel, f"manifest num_shards {entry.get('num_shards')} differs from the file name")
    if index >= num:
        report.add(rel, "shard index is not below the shard count")


def _check_files(shards: list[_Shard], report: VerifyReport, progress: Progress) -> None:
    """Existence, size, checksum, row count, schema and features of each listed file."""
    for i, s in enumerate(shards):
        progress("checksums", i, len(shards))
        entry = s.entry
        if not s.path.is_file():
            report.add(s.rel, "listed in manifest.json but missing")
            continue
        size = s.path.stat().st_size
        if entry.get("bytes") is not None and entry.get("bytes") != size:
            report.add(s.rel, f"size is {size} bytes, manifest says {entry.get('bytes')} (truncated or altered)")
            continue
        digest = sha256_file(s.path)
        if digest != entry.get("sha256"):
            report.add(s.rel, f"sha256 {digest[:16]}... differs from the manifest's {str(entry.get('sha256'))[:16]}...")
            continue
        try:
            pf = pq.ParquetFile(s.path)
        except (pa.ArrowException, OSError) as err:
            report.add(s.rel, f"not a readable Parquet file ({err})")
            continue
        if pf.metadata.num_rows != s.rows:
            report.add(s.rel, f"has {pf.metadata.num_rows} rows, manifest says {s.rows}")
        schema = pf.schema_arrow
        if not schema.equals(s.schema, check_metadata=False):
            report.add(s.rel, f"schema differs from the expected one: {schema.names}")
            continue
        if schema_features(schema) != schema_features(s.schema):
            report.add(s.rel, "the 'huggingface' features metadata differs from the expected features")
            continue
        s.readable = True
        is_pool = s.schema is POOL_SCHEMA
        report.counts["pool_shards" if is_pool else "shards"] += 1
        report.counts["pool_rows" if is_pool else "rows"] += pf.metadata.num_rows


def _unlisted(directory: Path, listed: set[str], report: VerifyReport) -> None:
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and path.name.startswith(TMP_PREFIX):
            report.add(rel, "leftover temporary file of an interrupted write")
        elif path.is_file() and path.suffix == ".parquet" and rel not in listed:
            report.add(rel, "Parquet file not listed in manifest.json")


def _check_split_totals(record: dict, shards: list[_Shard], report: VerifyReport) -> None:
    splits = record.get("splits")
    if not isinstance(splits, dict):
        return
    listed: dict[str, int] = defaultdict(int)
    for s in shards:
        if s.schema is not POOL_SCHEMA and s.split is not None:
            listed[s.split] += max(s.rows, 0)
    for split in sorted(set(splits) | set(listed)):
        expected = (splits.get(split) or {}).get("rows", 0) if isinstance(splits.get(split), dict) else None
        if expected != listed.get(split, 0):
            report.add("manifest.json", f"split {split!r} records {expected} rows but its shards list {listed.get(split, 0)}")


def _check_columns(data: list[_Shard], record: dict, report: VerifyReport) -> None:
    """Split column, unique ids, split-disjoint images and clips, category names and ids."""
    categories = {c.get("name"): c.get("category_id") for c in record.get("categories", []) if isinstance(c, dict)}
    id_seen: dict[str, str] = {}
    image_split: dict[tuple[str, str], str] = {}
    audio_split: dict[tuple[str, str], str] = {}
    per_category: dict[str, Counter] = defaultdict(Counter)
    source_split: dict[str, str] = {}
    for s in data:
        extended = "sources" in s.schema.names
        names = _SCALARS + (["sources", "negative", "mask_area"] if extended else [])
        table = pq.read_table(s.path, columns=names)
        cols = {name: table.column(name).to_pylist() for name in names}
        if extended:
            _check_sources(s, cols, categories, source_split, report)
        bad_split = [i for i, v in enumerate(cols["split"]) if v != s.split]
        if bad_split:
            report.add(s.rel, f"{len(bad_split)} rows have a split other than {s.split!r} (first: {cols['split'][bad_split[0]]!r})", bad_split[0])
        for i, rid in enumerate(cols["id"]):
            if rid in id_seen:
                report.add(s.rel, f"id {rid!r} also in {id_seen[rid]}", i)
            else:
                id_seen[rid] = s.rel
            img = (cols["image_source"][i], cols["image_id"][i])
            if image_split.setdefault(img, s.split) != s.split:
                report.add(s.rel, f"image {img[0]}:{img[1]} is in both {image_split[img]!r} and {s.split!r}", i)
            aud = (cols["audio_source"][i], cols["audio_id"][i])
            if audio_split.setdefault(aud, s.split) != s.split:
                report.add(s.rel, f"audio clip {aud[0]}:{aud[1]} is in both {audio_split[aud]!r} and {s.split!r}", i)
            cat, cid = cols["category"][i], cols["category_id"][i]
            per_category[s.split][cat] += 1
            if categories and categories.get(cat, object()) != cid:
                report.add(s.rel, f"category {cat!r} with id {cid} is not in manifest.json's categories", i)
    splits = record.get("splits") if isinstance(record.get("splits"), dict) else {}
    for split, counts in sorted(per_category.items()):
        entry = splits.get(split)
        recorded = entry.get("per_category") if isinstance(entry, dict) else None
        if isinstance(recorded, dict) and {k: v for k, v in recorded.items() if v} != dict(counts):
            diff = sorted(k for k in set(recorded) | set(counts) if recorded.get(k, 0) != counts.get(k, 0))
            report.add("manifest.json", f"split {split!r} per-category counts differ from the rows for {diff[:10]}")


def _check_sources(s: _Shard, cols: dict, categories: dict, source_split: dict[str, str],
                   report: VerifyReport) -> None:
    """The ``sources`` / ``negative`` columns agree with the row and the manifest; the clips of every
    source are split-disjoint; a negative row has one source and an empty mask, a positive row a mask."""
    for i, srcs in enumerate(cols["sources"]):
        cat, cid, neg = cols["category"][i], cols["category_id"][i], cols["negative"][i]
        if not srcs:
            report.add(s.rel, "row has no sources", i)
            continue
        if (srcs[0]["category"], srcs[0]["category_id"]) != (cat, cid):
            report.add(s.rel, f"first source {srcs[0]['category']!r} differs from the row's category {cat!r}", i)
        names = [x["category"] for x in srcs]
        if len(set(names)) != len(names):
            report.add(s.rel, f"a category is listed twice in sources {names}", i)
        for x in srcs:
            if categories and categories.get(x["category"], object()) != x["category_id"]:
                report.add(s.rel, f"source category {x['category']!r} with id {x['category_id']} is not in manifest.json", i)
            if source_split.setdefault(x["audio_id"], s.split) != s.split:
                report.add(s.rel, f"source clip {x['audio_id']} is in both {source_split[x['audio_id']]!r} and {s.split!r}", i)
        expected = "+".join(x["audio_id"] for x in srcs)
        if cols["audio_id"][i] != expected:
            report.add(s.rel, f"audio_id {cols['audio_id'][i]!r} differs from the sources' clips {expected!r}", i)
        if neg and (len(srcs) != 1 or cols["mask_area"][i] != 0.0):
            report.add(s.rel, "a negative row must have one source and an empty mask", i)
        if not neg and cols["mask_area"][i] <= 0.0:
            report.add(s.rel, "a positive row has an empty mask", i)


def _semantic_table(record: dict) -> dict[str, int]:
    table = record.get("semantic_classes")
    return table if isinstance(table, dict) else {}


def _sample(shards: list[_Shard], sample: int | None, seed: int) -> dict[int, list[int]]:
    """Shard position -> sorted row indices to decode (all rows, or N seeded global picks)."""
    sizes = [max(s.rows, 0) for s in shards]
    total = sum(sizes)
    if sample is None or sample >= total:
        return {k: list(range(n)) for k, n in enumerate(sizes) if n}
    picks = sorted(random.Random(seed).sample(range(total), max(sample, 0)))
    out: dict[int, list[int]] = defaultdict(list)
    start = 0
    k = 0
    for g in picks:
        while g >= start + sizes[k]:
            start += sizes[k]
            k += 1
        out[k].append(g - start)
    return out


def _groups(pf: pq.ParquetFile, rows: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Row group -> [(row in file, row in group)] for the wanted rows."""
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    start = 0
    wanted = iter(rows)
    r = next(wanted, None)
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        while r is not None and r < start + n:
            out[g].append((r, r - start))
            r = next(wanted, None)
        start += n
    return out


def _decode_rows(data: list[_Shard], sample: int | None, seed: int, report: VerifyReport,
                 progress: Progress, semantic: dict[str, int] | None = None) -> None:
    cols = ["id", "image", "mask", "audio", "width", "height", "mask_area", "bbox", "audio_seconds"]
    if semantic is not None:
        cols += ["semantic_mask", "sources", "negative"]
    picked = _sample(data, sample, seed)
    for i, (k, rows) in enumerate(picked.items()):
        progress("decode rows (shards)", i, len(picked))
        s = data[k]
        try:
            pf = pq.ParquetFile(s.path)
            for g, picks in _groups(pf, rows).items():
                batch = pf.read_row_group(g, columns=cols).to_pylist()
                for r, j in picks:
                    _decode_row(s.rel, r, batch[j], report)
                    if semantic is not None:
                        _check_semantic(s.rel, r, batch[j], semantic, report)
                    report.counts["decoded_rows"] += 1
        except (pa.ArrowException, OSError) as err:
            report.add(s.rel, f"cannot read rows ({err})")
    progress("decode rows (shards)", len(picked), len(picked))


def _decode_row(rel: str, r: int, row: dict, report: VerifyReport) -> None:
    w, h = row["width"], row["height"]
    try:
        size = decode_image_size(row["image"]["bytes"])
        if size != (w, h):
            report.add(rel, f"image is {size[0]}x{size[1]}, row says {w}x{h}", r)
    except AvsynthError as err:
        report.add(rel, f"image: {err}", r)
    except (TypeError, KeyError):
        report.add(rel, "image has no bytes", r)
    try:
        mask = decode_png(row["mask"]["bytes"])
        if mask.shape != (h, w):
            report.add(rel, f"mask is {mask.shape[1]}x{mask.shape[0]}, image is {w}x{h}", r)
        else:
            area, bbox = mask_stats(mask)
            if abs(area - row["mask_area"]) > _AREA_TOL:
                report.add(rel, f"mask area {area:.6f} differs from stored mask_area {row['mask_area']:.6f}", r)
            stored = row["bbox"] or []
            if len(stored) != 4 or any(abs(a - b) > _BBOX_TOL for a, b in zip(bbox, stored, strict=True)):
                report.add(rel, f"mask box {tuple(round(v, 4) for v in bbox)} differs from stored bbox {row['bbox']}", r)
    except AvsynthError as err:
        report.add(rel, f"mask: {err}", r)
    except (TypeError, KeyError):
        report.add(rel, "mask has no bytes", r)
    _check_audio(rel, r, row, report)


def _check_semantic(rel: str, r: int, row: dict, table: dict[str, int], report: VerifyReport) -> None:
    """semantic_mask > 0 is exactly the binary mask; its ids are those of the row's sources."""
    try:
        labels = decode_label_png(row["semantic_mask"]["bytes"])
        mask = decode_png(row["mask"]["bytes"])
    except AvsynthError as err:
        report.add(rel, f"semantic_mask: {err}", r)
        return
    if labels.shape != mask.shape:
        report.add(rel, f"semantic_mask is {labels.shape[1]}x{labels.shape[0]}, mask is {mask.shape[1]}x{mask.shape[0]}", r)
        return
    if not np.array_equal(labels > 0, mask):
        report.add(rel, f"semantic_mask > 0 differs from the mask in {int(np.count_nonzero((labels > 0) != mask))} pixels", r)
    allowed = {table.get(x["category"]) for x in row["sources"]} if not row["negative"] else set()
    found = set(int(v) for v in np.unique(labels)) - {0}
    if table and not found <= allowed:
        report.add(rel, f"semantic_mask has class ids {sorted(found - allowed)} not of the row's sources", r)


def _check_audio(rel: str, r: int, row: dict, report: VerifyReport) -> None:
    try:
        wave, sr = decode_audio(row["audio"]["bytes"])
    except AvsynthError as err:
        report.add(rel, f"audio: {err}", r)
        return
    except (TypeError, KeyError):
        report.add(rel, "audio has no bytes", r)
        return
    expected = round(float(row["audio_seconds"]) * sr)
    if abs(wave.shape[0] - expected) > 1:
        report.add(rel, f"audio has {wave.shape[0]} samples at {sr} Hz, expected {expected} for {row['audio_seconds']} s", r)


def _decode_pool(pool: list[_Shard], sample: int | None, seed: int, report: VerifyReport,
                 progress: Progress) -> None:
    picked = _sample(pool, sample, seed + 1)
    for i, (k, rows) in enumerate(picked.items()):
        progress("decode audio pool (shards)", i, len(picked))
        s = pool[k]
        try:
            pf = pq.ParquetFile(s.path)
            for g, picks in _groups(pf, rows).items():
                batch = pf.read_row_group(g, columns=["audio", "audio_seconds"]).to_pylist()
                for r, j in picks:
                    _check_audio(s.rel, r, batch[j], report)
                    report.counts["decoded_pool_rows"] += 1
        except (pa.ArrowException, OSError) as err:
            report.add(s.rel, f"cannot read rows ({err})")
    progress("decode audio pool (shards)", len(picked), len(picked))
