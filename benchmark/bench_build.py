"""Build throughput on the demo corpus. Prints one JSON line per figure.

    python benchmark/bench_build.py [--sizes 2000,20000] [--workers 2] [--keep DIR]

Figures: wall time, triplets/s and triplets/s per core, output MB/s, peak RSS of the whole
process tree (parent + workers, sampled every 50 ms), CPU time per stage measured on a sample of
rows in-process (image read, mask rasterise + PNG encode, audio decode + resample + encode, Parquet
write), and a projection of wall time for AVS-Synthetic's 62,609 triplets and for 10M triplets
from the measured per-core rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_build(demo, out: Path, n_triplets: int, workers: int) -> dict:
    n_train = int(n_triplets * 52_609 / 62_609)
    n_val = (n_triplets - n_train) // 2
    n_test = n_triplets - n_train - n_val
    cmd = [sys.executable, "-m", "avsynth", "build", "--quiet", "--out", str(out),
           "--num-proc", str(workers), "--num-train", str(n_train), "--num-val", str(n_val),
           "--num-test", str(n_test), "--coco-root", str(demo.coco_root),
           "--vggsound-csv", str(demo.vggsound_csv), "--vggsound-audio", str(demo.vggsound_audio),
           "--openimages-root", str(demo.openimages_root),
           "--lvis-json", str(demo.lvis_train_json), "--lvis-json", str(demo.lvis_val_json)]
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss(proc))
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    stop.set()
    th.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"build failed: {err.decode()[-2000:]}")
    rec = json.loads((out / "manifest.json").read_text())
    rows = sum(v["rows"] for v in rec["splits"].values())
    nbytes = sum(s["bytes"] for s in rec["shards"] + rec["audio_pool"])
    return {"wall_s": wall, "rows": rows, "bytes": nbytes, "peak_rss_mb": peak / 2**20}


def stage_times(demo, sample_rows: int = 300) -> dict:
    """CPU seconds per row for each stage, measured in-process on a sample of planned rows."""
    from avsynth.build import SourcePaths, load_sources
    from avsynth.manifest import select_categories
    from avsynth.media.audio import encode_audio, load_window
    from avsynth.media.image import read_image
    from avsynth.media.mask import encode_png, rasterize
    from avsynth.plan import PlanOptions, make_plan
    from avsynth.shards.schema import arrow_schema
    from avsynth.shards.writer import write_shard
    from avsynth.build.rows import WorkerOptions, triplet_row
    from avsynth.sources.records import SkipCounter

    manifest = select_categories("46")
    src = load_sources(SourcePaths(
        lvis_json=[Path(demo.lvis_train_json), Path(demo.lvis_val_json)],
        coco_root=Path(demo.coco_root), openimages_root=Path(demo.openimages_root),
        vggsound_csv=Path(demo.vggsound_csv),
        vggsound_audio=Path(demo.vggsound_audio)), manifest)
    plan = make_plan(src.instances, src.clips, manifest,
                     PlanOptions(sizes={"train": sample_rows, "validation": 0, "test": 0}))
    specs = plan.rows["train"][:sample_rows]
    cpu = time.process_time
    t = {"image_read": 0.0, "mask_rasterise_encode": 0.0, "audio_decode_resample_encode": 0.0}
    for r in specs:
        inst = r.instances[0]
        a = cpu(); img = read_image(inst.image_path); b = cpu()
        encode_png(rasterize(inst.mask, img.width, img.height)); c = cpu()
        wav = load_window(r.clip.path, r.audio_offset_s, r.audio_seconds, target_sr=16000)
        encode_audio(wav, 16000, fmt="flac"); d = cpu()
        t["image_read"] += b - a
        t["mask_rasterise_encode"] += c - b
        t["audio_decode_resample_encode"] += d - c
    rows = [row for row in (triplet_row(r, WorkerOptions(), SkipCounter(), {}) for r in specs) if row]
    with tempfile.TemporaryDirectory() as tmp:
        a = cpu()
        write_shard(iter(rows), Path(tmp) / "x.parquet", schema=arrow_schema())
        t["parquet_write"] = cpu() - a
    return {k: v / len(specs) * 1000 for k, v in t.items()}  # ms per row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2000,20000")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--images-per-category", type=int, default=180,
                    help="demo images per category (180 gives ~20k usable triplets)")
    ap.add_argument("--demo-dir", type=Path, default=None,
                    help="where to keep the enlarged demo corpus (default: the avsynth cache)")
    args = ap.parse_args()
    import dataclasses

    from avsynth.demo import SCALES, DemoCorpus, write_demo
    from avsynth.io import cache_dir as default_cache_dir

    t0 = time.perf_counter()
    root = args.demo_dir or default_cache_dir() / f"bench-demo-{args.images_per_category}"
    if (root / "demo.json").exists():
        demo = DemoCorpus.load(root)
    else:
        size = dataclasses.replace(SCALES["default"], name=f"bench-{args.images_per_category}",
                                   images_per_category=args.images_per_category)
        demo = write_demo(root, seed=0, scale=size)
    emit(figure="demo_ready_s", value=round(time.perf_counter() - t0, 2))
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "processor": platform.processor() or platform.machine()}
    emit(figure="machine", **machine)
    for k, v in stage_times(demo).items():
        emit(figure="stage_cpu_ms_per_row", stage=k, value=round(v, 3))
    per_core = None
    for n in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            res = run_build(demo, Path(tmp) / "out", n, args.workers)
        rate = res["rows"] / res["wall_s"]
        per_core = rate / args.workers
        emit(figure="build", requested=n, rows=res["rows"], workers=args.workers,
             wall_s=round(res["wall_s"], 2), triplets_per_s=round(rate, 1),
             triplets_per_s_per_core=round(per_core, 1),
             mb_per_s=round(res["bytes"] / 2**20 / res["wall_s"], 2),
             output_mb=round(res["bytes"] / 2**20, 1), peak_rss_mb=round(res["peak_rss_mb"], 1))
    if per_core:
        for name, n in [("avs_synthetic_62609", 62_609), ("10M", 10_000_000)]:
            for cores in (2, 16, 64):
                emit(figure="projection", target=name, cores=cores,
                     hours=round(n / (per_core * cores) / 3600, 3))


if __name__ == "__main__":
    main()
