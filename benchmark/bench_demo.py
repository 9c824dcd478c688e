"""Wall time, CPU time and disk size of ``avsynth demo`` (the generated demo corpora).

Writes the corpus into a temporary folder (or --out) with the given worker count and prints one
JSON line: scale, workers, wall seconds, CPU seconds (this process + its workers), bytes and
files on disk, item counts, and the 1-minute load average (how busy the machine was).

    python benchmark/bench_demo.py [--scale default] [--workers 2] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from avsynth.demo import directory_bytes, write_demo


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="default")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="keep the corpus here")
    args = ap.parse_args()
    tmp = None
    if args.out is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-demo-"))
        out = tmp / "demo"
    else:
        out = args.out
    try:
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        corpus = write_demo(out, seed=args.seed, scale=args.scale, workers=args.workers)
        wall = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        files = sum(1 for p in out.rglob("*") if p.is_file())
        size = directory_bytes(out)
        counts = corpus.info["counts"]
        print(json.dumps({
            "benchmark": "demo_write", "scale": args.scale, "workers": args.workers,
            "cpus": os.cpu_count(), "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "bytes": size, "megabytes": round(size / 1e6, 1), "files": files,
            "categories": len(corpus.categories),
            "lvis_images": counts["lvis"]["train"]["images"] + counts["lvis"]["val"]["images"],
            "lvis_instances": counts["lvis"]["train"]["annotations"]
            + counts["lvis"]["val"]["annotations"],
            "openimages_images": sum(v["images"] for v in counts["openimages"].values()),
            "vggsound_clips": counts["vggsound"]["clips"],
            "avsbench_videos": counts["avsbench"]["v1s"] + counts["avsbench"]["v1m"],
            "load_1min": round(os.getloadavg()[0], 1),
        }), flush=True)  # fmt: skip
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
