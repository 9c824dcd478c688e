"""Statistics of a shard directory: counts per split x category, mask-area and audio-level
histograms, and a contact sheet of images with their masks.

Only the needed columns are read (pyarrow column projection, one row group at a time), so the
images are decoded only for the few contact-sheet rows. Audio levels are the RMS of each row's
clip in dBFS (0 dBFS = a full-scale square wave); silence is clamped to ``DBFS_FLOOR``.
"""

from __future__ import annotations

import io
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from avsynth.errors import AvsynthError
from avsynth.media.audio import decode_audio
from avsynth.media.checks import DBFS_FLOOR as _FLOOR, rms_dbfs  # the build's silence check's level
from avsynth.media.mask import decode_png
from avsynth.io import atomic_write_text
from avsynth.shards.record import load_record_json, record_path
from avsynth.shards.overlay import SheetItem, category_color, contact_sheet
from avsynth.shards.schema import SPLITS

DBFS_FLOOR = _FLOOR
AREA_BINS = np.linspace(0.0, 1.0, 21)
DBFS_BINS = np.arange(-90.0, 0.0 + 1e-9, 3.0)
STATS_JSON = "stats.json"
AREA_PNG = "mask_area_hist.png"
AUDIO_PNG = "audio_rms_dbfs_hist.png"
SHEET_PNG = "contact_sheet.png"


def data_files(directory: Path) -> list[Path]:
    """The triplet shards of ``directory``: those listed in manifest.json, else ``data/*.parquet``."""
    directory = Path(directory)
    manifest = record_path(directory)
    if manifest.is_file():
        try:
            record = load_record_json(manifest)
        except ValueError as err:
            raise AvsynthError(f"{manifest}: not valid JSON ({err})") from err
        paths = [directory / s["path"] for s in record.get("shards", []) if isinstance(s, dict) and "path" in s]
    else:
        paths = sorted((directory / "data").glob("*.parquet"))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise AvsynthError(f"{missing[0]}: shard listed in manifest.json is missing (run `avsynth verify`)")
    if not paths:
        raise AvsynthError(f"{directory}: no shards (expected data/*.parquet)")
    return paths


def _batches(paths: list[Path], columns: list[str]) -> Iterator[tuple[int, int, dict]]:
    """(file index, first row in file, {column: list}) per row group, reading only ``columns``."""
    for k, path in enumerate(paths):
        try:
            pf = pq.ParquetFile(path)
            start = 0
            for g in range(pf.metadata.num_row_groups):
                table = pf.read_row_group(g, columns=columns)
                yield k, start, {c: table.column(c).to_pylist() for c in columns}
                start += table.num_rows
        except OSError as err:
            raise AvsynthError(f"{path}: cannot read shard ({err})") from err


def _histogram(values: list[float], bins: np.ndarray) -> dict:
    clipped = np.clip(np.asarray(values, dtype=np.float64), bins[0], bins[-1])
    counts, edges = np.histogram(clipped, bins=bins)
    return {"edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]}


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64)
    q = np.percentile(a, [5, 50, 95])
    return {
        "n": int(a.size),
        "mean": round(float(a.mean()), 6),
        "min": round(float(a.min()), 6),
        "p05": round(float(q[0]), 6),
        "median": round(float(q[1]), 6),
        "p95": round(float(q[2]), 6),
        "max": round(float(a.max()), 6),
    }


def compute_stats(directory: Path, audio_limit: int | None = None, seed: int = 0) -> dict:
    """Counts and distributions of a shard directory as a JSON-able dict.

    Keys: ``counts`` {split: {category: n}}, ``totals`` {split: n}, ``categories`` (sorted by id),
    ``mask_area`` / ``audio_rms_dbfs``: {"per_split": {split: summary}, "histogram": {...}, and
    "values": {split: [...]}} (values in row order). ``audio_limit`` decodes the audio of at most
    that many rows (a seeded sample); None decodes every row.
    """
    directory = Path(directory)
    paths = data_files(directory)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cat_ids: dict[str, int] = {}
    areas: dict[str, list[float]] = defaultdict(list)
    index: list[tuple[int, int, str, str]] = []  # (file, row, split, category) of every row
    for k, start, cols in _batches(paths, ["split", "category", "category_id", "mask_area"]):
        for j, (split, cat, cid, area) in enumerate(zip(cols["split"], cols["category"], cols["category_id"], cols["mask_area"])):
            counts[split][cat] += 1
            cat_ids.setdefault(cat, int(cid))
            areas[split].append(float(area))
            index.append((k, start + j, split, cat))
    levels = _audio_levels(paths, index, audio_limit, seed)
    splits = [s for s in SPLITS if s in counts] + sorted(s for s in counts if s not in SPLITS)
    return {
        "directory": str(directory),
        "categories": [{"name": n, "category_id": i} for n, i in sorted(cat_ids.items(), key=lambda t: (t[1], t[0]))],
        "splits": splits,
        "counts": {s: dict(sorted(counts[s].items())) for s in splits},
        "totals": {s: sum(counts[s].values()) for s in splits},
        "mask_area": {
            "per_split": {s: _summary(areas[s]) for s in splits},
            "histogram": _histogram([a for s in splits for a in areas[s]], AREA_BINS),
            "values": {s: areas[s] for s in splits},
        },
        "audio_rms_dbfs": {
            "per_split": {s: _summary(levels[s]) for s in splits},
            "histogram": _histogram([v for s in splits for v in levels[s]], DBFS_BINS),
            "values": {s: levels[s] for s in splits},
            "decoded": sum(len(v) for v in levels.values()),
        },
    }


def _audio_levels(
    paths: list[Path], index: list[tuple[int, int, str, str]], limit: int | None, seed: int
) -> dict[str, list[float]]:
    wanted: set[tuple[int, int]] | None = None
    if limit is not None and limit < len(index):
        wanted = {(k, r) for k, r, _, _ in random.Random(seed).sample(index, max(0, limit))}
    levels: dict[str, list[float]] = defaultdict(list)
    for k, start, cols in _batches(paths, ["split", "audio"]):
        for j, (split, cell) in enumerate(zip(cols["split"], cols["audio"])):
            if wanted is not None and (k, start + j) not in wanted:
                continue
            wave, _ = decode_audio(cell["bytes"], f"{paths[k]} row {start + j}")
            levels[split].append(round(rms_dbfs(wave), 4))
    return levels


def _pick_sheet_rows(index: list[tuple[int, int, str, str]], n: int, seed: int) -> list[tuple[int, int]]:
    """Up to ``n`` (file, row) picks, round-robin over categories (sorted), seeded within each."""
    by_cat: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for k, r, _, cat in index:
        by_cat[cat].append((k, r))
    rng = random.Random(seed)
    queues = []
    for cat in sorted(by_cat):
        rows = by_cat[cat][:]
        rng.shuffle(rows)
        queues.append(rows)
    picks: list[tuple[int, int]] = []
    while len(picks) < n and any(queues):
        for q in queues:
            if q and len(picks) < n:
                picks.append(q.pop())
    return picks


def sheet_items(directory: Path, n: int = 16, seed: int = 0) -> list[SheetItem]:
    """``n`` contact-sheet items (image, mask, "category (split)" caption), covering categories."""
    paths = data_files(directory)
    index = [
        (k, start + j, split, cat)
        for k, start, cols in _batches(paths, ["split", "category"])
        for j, (split, cat) in enumerate(zip(cols["split"], cols["category"]))
    ]
    picks = set(_pick_sheet_rows(index, n, seed))
    items: dict[tuple[int, int], SheetItem] = {}
    for k, path in enumerate(paths):
        rows = sorted(r for kk, r in picks if kk == k)
        if not rows:
            continue
        table = pq.read_table(path, columns=["image", "mask", "category", "category_id", "split"])
        for r in rows:
            row = table.slice(r, 1).to_pylist()[0]
            try:
                img = Image.open(io.BytesIO(row["image"]["bytes"]))
                img.load()
            except OSError as err:
                raise AvsynthError(f"{path} row {r}: image does not decode ({err})") from err
            mask = decode_png(row["mask"]["bytes"], f"{path} row {r}")
            items[(k, r)] = SheetItem(img, mask, f"{row['category']} ({row['split']})", category_color(row["category_id"]))
    ordered = sorted(items.items(), key=lambda kv: (kv[1].caption, kv[0]))
    return [item for _, item in ordered]


@dataclass
class StatsResult:
    """What ``write_stats`` wrote: the stats dict and the files (stats.json and the PNGs)."""

    out_dir: Path
    stats: dict
    files: dict[str, Path] = field(default_factory=dict)


def _hist_png(path: Path, per_split: dict[str, list[float]], bins: np.ndarray, xlabel: str, title: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for split, values in per_split.items():
        if values:
            ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, histtype="step", linewidth=1.8, label=f"{split} ({len(values)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.set_title(title)
    if any(per_split.values()):
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})


def write_stats(
    directory: Path,
    out: Path | None = None,
    *,
    sheet_size: int = 16,
    sheet_cols: int = 4,
    thumb: int = 192,
    audio_limit: int | None = None,
    seed: int = 0,
) -> StatsResult:
    """Compute the stats of ``directory`` and write ``stats.json``, the mask-area and audio-level
    histograms and the contact sheet (PNG) into ``out`` (default ``directory/stats``)."""
    directory = Path(directory)
    out = Path(out) if out is not None else directory / "stats"
    out.mkdir(parents=True, exist_ok=True)
    stats = compute_stats(directory, audio_limit=audio_limit, seed=seed)
    files = {
        "stats": out / STATS_JSON,
        "mask_area": out / AREA_PNG,
        "audio_rms_dbfs": out / AUDIO_PNG,
        "contact_sheet": out / SHEET_PNG,
    }
    summary = {k: v for k, v in stats.items()}
    summary["mask_area"] = {k: v for k, v in stats["mask_area"].items() if k != "values"}
    summary["audio_rms_dbfs"] = {k: v for k, v in stats["audio_rms_dbfs"].items() if k != "values"}
    atomic_write_text(files["stats"], json.dumps(summary, indent=2, sort_keys=True) + "\n")
    _hist_png(files["mask_area"], stats["mask_area"]["values"], AREA_BINS, "mask area (fraction of image)", "Mask area")
    _hist_png(files["audio_rms_dbfs"], stats["audio_rms_dbfs"]["values"], DBFS_BINS, "RMS level (dBFS)", "Audio level")
    items = sheet_items(directory, n=sheet_size, seed=seed)
    contact_sheet(items, cols=sheet_cols, thumb=thumb).save(files["contact_sheet"], format="PNG")
    return StatsResult(out, stats, files)


def counts_table(stats: dict):
    """A rich Table of rows per category (rows) x split (columns), with totals."""
    from rich.table import Table

    splits = stats["splits"]
    table = Table(title=f"rows per split x category: {stats['directory']}")
    table.add_column("category")
    table.add_column("id", justify="right")
    for s in splits:
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    for cat in stats["categories"]:
        per = [stats["counts"][s].get(cat["name"], 0) for s in splits]
        table.add_row(cat["name"], str(cat["category_id"]), *map(str, per), str(sum(per)))
    totals = [stats["totals"][s] for s in splits]
    table.add_row("[bold]total[/]", "", *map(str, totals), str(sum(totals)))
    return table
