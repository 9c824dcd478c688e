"""Writing and locating demo corpora: small, generated, deterministic datasets in the REAL source
formats, for where no real dataset can be downloaded. :func:`write_demo` lays a corpus out
(:mod:`~avsynth.demo.layout`), renders its jobs on :mod:`avsynth.engines`
(:mod:`~avsynth.demo.render`) and writes the index files (:mod:`~avsynth.demo.formats`); every
file is a pure function of (seed, manifest, scale, item index), so the bytes do not depend on the
number of workers. :class:`DemoCorpus` locates a written corpus's files and :func:`ensure_demo`
keeps one per (seed, scale, manifest) in the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from avsynth.demo.formats import (
    DEMO_FORMAT,
    DEMO_VERSION,
    demo_record,
    write_avs_synthetic,
    write_avsbench_metadata,
    write_lvis,
    write_openimages,
    write_vggsound_csv,
)
from avsynth.demo.layout import OI_SPLITS, DemoError, DemoSize, make_layout, resolve_size
from avsynth.demo.render import RUNNERS, RenderContext, render_chunk, render_tasks
from avsynth.engines import run_tasks
from avsynth.io import atomic_write_text
from avsynth.io import cache_dir as io_cache_dir
from avsynth.manifest import Manifest, load_manifest

ProgressFn = Callable[[str, int, int], None]  # (phase, done, total)


# ---------------------------------------------------------------------------------------------
# The corpus handle


@dataclass(frozen=True)
class DemoCorpus:
    """A written demo corpus: where each source lives, and the category names it covers."""

    root: Path
    lvis_train_json: Path
    lvis_val_json: Path
    coco_root: Path  # holds train2017/ and val2017/
    vggsound_csv: Path
    vggsound_audio: Path
    avsbench_root: Path
    avs_synthetic_root: Path
    openimages_root: Path  # Open Images V7 segmentation layout
    categories: list[str]
    seed: int = 0
    scale: str = "default"
    manifest: str = ""

    @property
    def info(self) -> dict:
        """The parsed ``demo.json`` record (seed, sizes, version, counts, per-category styles)."""
        return json.loads((self.root / "demo.json").read_text(encoding="utf-8"))

    @classmethod
    def at(cls, root: Path, record: dict) -> DemoCorpus:
        root = Path(root)
        p = record["paths"]
        return cls(
            root=root,
            lvis_train_json=root / p["lvis_train_json"],
            lvis_val_json=root / p["lvis_val_json"],
            coco_root=root / p["coco_root"],
            vggsound_csv=root / p["vggsound_csv"],
            vggsound_audio=root / p["vggsound_audio"],
            avsbench_root=root / p["avsbench_root"],
            avs_synthetic_root=root / p["avs_synthetic_root"],
            openimages_root=root / p["openimages_root"],
            categories=[c["name"] for c in record["categories"]],
            seed=int(record["seed"]),
            scale=str(record["scale"]["name"]),
            manifest=str(record["manifest"]),
        )

    @classmethod
    def load(cls, root: str | Path) -> DemoCorpus:
        """Re-open a corpus written by :func:`write_demo` (its ``demo.json`` must say complete)."""
        root = Path(root)
        rec_path = root / "demo.json"
        try:
            record = json.loads(rec_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DemoError(f"{rec_path}: not found; {root} is not a (complete) demo corpus") from None
        except (OSError, json.JSONDecodeError) as err:
            raise DemoError(f"{rec_path}: unreadable demo record: {err}") from None
        if record.get("format") != DEMO_FORMAT or not record.get("complete"):
            raise DemoError(f"{rec_path}: not a complete {DEMO_FORMAT} record")
        return cls.at(root, record)



# ---------------------------------------------------------------------------------------------
# Public API

def write_demo(
    out: str | Path,
    *,
    seed: int = 0,
    manifest: str | Path | Manifest = "avs-synthetic-46",
    scale: str | DemoSize = "default",
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> DemoCorpus:
    """Write the demo corpora into ``out`` (which must not exist or be empty).

    ``workers`` processes render in parallel (``None``: one per CPU; 1: in this process); the
    bytes written do not depend on it. ``progress(phase, done, total)`` is called as items finish.
    ``demo.json`` is written last and marks the corpus complete.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DemoError(f"{out}: exists and is not an empty directory; choose a new one")
    man = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    size = resolve_size(scale)
    layout, notes = make_layout(man, int(seed), size)
    for d in ("lvis", "coco/train2017", "coco/val2017", *(f"openimages/{s}" for s in OI_SPLITS),
              "vggsound/audio", "avsbench/v1s",
              "avsbench/v1m", "avs_synthetic/images", "avs_synthetic/masks",
              "avs_synthetic/audios"):  # fmt: skip
        (out / d).mkdir(parents=True, exist_ok=True)

    tasks = render_tasks(layout)
    results: dict[str, dict[int, object]] = {k: {} for k in RUNNERS}
    done = 0
    n_workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    if progress:
        progress("generate", 0, len(tasks))
    per_chunk = 1 if n_workers == 1 else max(1, min(16, len(tasks) // (8 * n_workers)))
    ctx = RenderContext.of(layout)
    chunks = [(str(out), ctx, tuple(tasks[i:i + per_chunk])) for i in range(0, len(tasks), per_chunk)]
    for _, rendered in run_tasks("local", render_chunk, chunks, workers=n_workers):
        for kind, index, _nbytes, payload in rendered:
            results[kind][index] = payload
        done += len(rendered)
        if progress:
            progress("generate", done, len(tasks))

    if progress:
        progress("index", 0, 1)
    counts = {"lvis": write_lvis(out, layout, results["image"])}
    counts["openimages"] = write_openimages(out, layout, results["oi_image"])
    write_vggsound_csv(out, layout)
    write_avsbench_metadata(out, layout)
    avs_rows = write_avs_synthetic(out, layout, results["avs_image"])
    counts["vggsound"] = {
        "rows": len(layout.vgg_rows),
        "clips": len(layout.clips),
        "missing": layout.size.missing_rows,
        "train_rows": sum(r[3] == "train" for r in layout.vgg_rows),
        "test_rows": sum(r[3] == "test" for r in layout.vgg_rows),
    }
    counts["avsbench"] = {
        "v1s": sum(v.label == "v1s" for v in layout.videos),
        "v1m": sum(v.label == "v1m" for v in layout.videos),
    }
    counts["avs_synthetic"] = {"images": len(layout.avs_images), "rows": avs_rows,
                               "audios": 2 * len(layout.avs_audio)}  # fmt: skip
    record = demo_record(layout, man, counts, notes)
    atomic_write_text(out / "demo.json", json.dumps(record, indent=2) + "\n")
    if progress:
        progress("index", 1, 1)
    return DemoCorpus.at(out, record)


def cache_name(seed: int, scale: str = "default", manifest: str = "avs-synthetic-46") -> str:
    """Directory name of a cached demo corpus, e.g. ``demo-v1-seed0``."""
    if scale == "default" and manifest == "avs-synthetic-46":
        return f"demo-{DEMO_VERSION}-seed{seed}"
    return f"demo-{DEMO_VERSION}-{Path(str(manifest)).stem}-{scale}-seed{seed}"


def ensure_demo(
    cache_dir: str | Path | None = None,
    seed: int = 0,
    *,
    scale: str | DemoSize = "default",
    manifest: str = "avs-synthetic-46",
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> DemoCorpus:
    """The cached demo corpus ``{cache_dir}/demo-v1-seed{seed}``, generated on first use.

    ``cache_dir`` defaults to :func:`avsynth.io.cache_dir`. A complete corpus is reused; otherwise it
    is generated into a temporary sibling directory and renamed into place atomically, so a
    crash never leaves a half-written corpus under the final name.
    """
    base = Path(cache_dir).expanduser() if cache_dir is not None else io_cache_dir()
    size = resolve_size(scale)
    root = base / cache_name(seed, size.name, str(manifest))
    try:
        return DemoCorpus.load(root)
    except DemoError:
        if root.exists():
            shutil.rmtree(root)  # an incomplete or foreign corpus under our cache name
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=base))
    try:
        write_demo(tmp, seed=seed, manifest=manifest, scale=size, workers=workers,
                   progress=progress)  # fmt: skip
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / "demo.json").exists():  # not another process finishing first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return DemoCorpus.load(root)


def directory_bytes(path: Path) -> int:
    """Total size of the regular files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
