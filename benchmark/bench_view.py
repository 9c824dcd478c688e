"""`avsynth view` (re)open time: FiftyOne dataset build vs reuse, and media shared by --limit.

Writes a tiny real shard directory (``tests/_tiny_shards.make_shard_dir``: small JPEGs, 1-bit PNG
masks, 0.5 s FLAC tones) with ``--rows`` train rows, then runs each step in a FRESH Python process
(as a user's second ``avsynth view`` is), against a private FiftyOne database folder:

1. ``open_view`` of the whole split (builds the dataset, materialises the media);
2. ``open_view`` again, unchanged (the reuse path);
3. ``open_view --limit rows/2`` (a new dataset; the media of step 1 are reused, not copied);
4. ``open_view --limit rows/2`` again (reuse).

Each step reports FiftyOne's own import and database start separately from ``open_view``, and the
number of files the step wrote into the media cache (counted by inode / mtime before and after).
Prints one JSON line per figure. Usage: ``python benchmark/bench_view.py [--rows 2000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _emit(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"benchmark": "view", "figure": name, "value": round(value, 3), "unit": unit, **extra}),
          flush=True)


def child(shards: Path, cache: Path, limit: int | None, name: str) -> None:
    """One fresh process: import FiftyOne, start its database, open_view; print the timings."""
    t0 = time.perf_counter()
    import fiftyone as fo

    t1 = time.perf_counter()
    fo.list_datasets()
    t2 = time.perf_counter()
    from avsynth.fiftyone_app import open_view

    res = open_view(shards, "train", limit=limit, name=name, cache_dir=cache)
    t3 = time.perf_counter()
    print(json.dumps({"import_fiftyone_s": t1 - t0, "database_start_s": t2 - t1, "open_view_s": t3 - t2,
                      "reused": res.reused, "samples": len(res.dataset)}))


def _cache_state(cache: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.rglob("*") if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--child", nargs=4, metavar=("SHARDS", "CACHE", "LIMIT", "NAME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        s, c, lim, name = args.child
        child(Path(s), Path(c), None if lim == "none" else int(lim), name)
        return
    sys.path.insert(0, str(REPO))
    from tests._tiny_shards import make_shard_dir

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        shards = make_shard_dir(tmp / "shards", rows={"train": args.rows, "validation": 3, "test": 3},
                                shards={"train": 4, "validation": 1, "test": 1})
        env = {"cpus": os.cpu_count(), "python": platform.python_version(), "rows": args.rows}
        _emit("write_tiny_shards", time.perf_counter() - t0, "s", **env)
        cache = tmp / "cache"
        penv = dict(os.environ, FIFTYONE_DATABASE_DIR=str(tmp / "db"), FIFTYONE_DO_NOT_TRACK="true",
                    FIFTYONE_DATABASE_VALIDATION="false", PYTHONPATH=str(REPO))
        half = args.rows // 2
        steps = [("full split, first open (build)", None, "bench-view"),
                 ("full split, second open (reuse)", None, "bench-view"),
                 (f"--limit {half}, first open", half, f"bench-view-{half}"),
                 (f"--limit {half}, second open (reuse)", half, f"bench-view-{half}")]
        for label, limit, name in steps:
            before = _cache_state(cache) if cache.is_dir() else {}
            t = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--child", str(shards), str(cache),
                                  "none" if limit is None else str(limit), name],
                                 env=penv, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t
            r = json.loads(out.stdout.strip().splitlines()[-1])
            after = _cache_state(cache)
            written = sum(1 for p, st in after.items() if before.get(p) != st)
            load = round(os.getloadavg()[0], 1)
            _emit(f"{label}: open_view", r["open_view_s"], "s", reused=r["reused"], samples=r["samples"],
                  media_files_written=written, media_files=len(after), load_1min=load)
            _emit(f"{label}: import fiftyone + database start", r["import_fiftyone_s"] + r["database_start_s"], "s",
                  import_fiftyone_s=round(r["import_fiftyone_s"], 2), database_start_s=round(r["database_start_s"], 2))
            _emit(f"{label}: process wall", wall, "s")


if __name__ == "__main__":
    main()
