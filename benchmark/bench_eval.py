"""Benchmark: end-to-end evaluation throughput of ``avsynth bench`` (frames/s).

Runs the evaluation path of :mod:`avsynth.evaluation.evaluate` on the demo AVSBench tree
(S4 + MS3, val and test splits: every frame annotated, 224 x 224, F grouping batch4): frame JPEG /
mask PNG / WAV decoding (``AVSBenchDataset``), VGGish embedding of the 1-second windows, the
model (preprocess, forward, postprocess to 224 x 224) and ``AVSBenchMetric``. One JSON line per
figure:

  * ``stage_load``: the dataset alone (decode + resize), frames/s;
  * ``stage_load_embed``: + VGGish window embeddings, frames/s;
  * ``end_to_end``: + model + metric (``evaluation.evaluate``), frames/s, per config.

Model weights are random (seeded) — throughput does not depend on them. Usage:
  python benchmark/bench_eval.py [--configs sama-avs-tiny,sama-avs-vit-b] [--max-videos-large 4]
         [--workers 0] [--threads N] [--demo-dir DIR] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from avsynth.evaluation.evaluate import avsbench_samples, evaluate
from avsynth.modeling import build_model, build_vggish_for, load_config
from avsynth.modeling.predictor import resolve_device
from avsynth.sources.avsbench import AVSBenchDataset
from avsynth.demo import DemoCorpus, ensure_demo

SPLITS = (("s4", "val"), ("s4", "test"), ("ms3", "val"), ("ms3", "test"))


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def datasets(root: Path, max_videos: int | None) -> list[AVSBenchDataset]:
    out = []
    for subset, split in SPLITS:
        ds = AVSBenchDataset(root, subset, split, resolution=224, mode="binary")
        if max_videos is not None:
            ds.videos = ds.videos[:max_videos]
        out.append(ds)
    return out


def frames_of(dss: list[AVSBenchDataset]) -> int:
    return sum(sum(v.num_frames for v in ds.videos) for ds in dss)


def evaluate_all(model, emb, dss: list[AVSBenchDataset], args) -> list[dict]:
    """evaluation.evaluate over each dataset (load + VGGish + model + metric)."""
    return [evaluate(model, avsbench_samples(ds, emb, args.workers), f_group="batch4",
                       batch_frames=16, device=args.device) for ds in dss]


def timed(fn, *args):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="sama-avs-tiny,sama-avs-vit-b")
    ap.add_argument("--max-videos-large", type=int, default=2,
                    help="videos per (subset, split) for non-tiny configs (CPU time)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--demo-dir", type=Path, default=None)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = DemoCorpus.load(args.demo_dir) if args.demo_dir else ensure_demo()
    root = Path(corpus.avsbench_root)
    common = {"threads": torch.get_num_threads(), "workers": args.workers, "cpus": os.cpu_count(),
              "device": str(resolve_device(args.device)), "tree": "demo", "resolution": 224}

    tiny_cfg = load_config("sama-avs-tiny")
    emb = build_vggish_for(tiny_cfg)
    dss = datasets(root, None)
    n = frames_of(dss)
    wall, cpu, _ = timed(lambda: [item for ds in dss for item in ds])
    emit(figure="stage_load", frames=n, seconds=wall, cpu_seconds=cpu, frames_per_s=n / wall, **common)
    wall, cpu, _ = timed(lambda: [s for ds in dss for s in avsbench_samples(ds, emb, args.workers)])
    emit(figure="stage_load_embed", vggish="tiny", frames=n, seconds=wall, cpu_seconds=cpu,
         frames_per_s=n / wall, **common)

    for name in [c for c in args.configs.split(",") if c]:
        cfg = load_config(name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(cfg, load_weights=False)
        emb = build_vggish_for(cfg)
        limit = None if "tiny" in name else args.max_videos_large
        dss = datasets(root, limit)
        n = frames_of(dss)

        wall, cpu, res = timed(evaluate_all, model, emb, dss, args)
        emit(figure="end_to_end", config=name, image_size=int(model.image_size), frames=n,
             videos=sum(r["videos"] for r in res), seconds=wall, cpu_seconds=cpu, frames_per_s=n / wall,
             ms_per_frame=1000 * wall / n, **common)


if __name__ == "__main__":
    main()
