"""Does a model trained on demo shards localise sounds zero-shot? The VGG-SS protocol on the demo set.

Writes a demo corpus (a few categories, small images), builds shards from it, trains a tiny
SAMA-AVS on them (CPU, seeds fixed, as ``bench_train.py``), writes the corpus's VGG-SS-format
localisation set and runs ``avsynth bench --localization vggss`` (the library call) on it: one JSON
line each for the trained model, the same architecture untrained (random weights), and the
whole-image and centre-box controls (cIoU@0.5, AUC, mean cIoU), then the training figures.

Usage: ``python benchmark/bench_localization.py [--epochs 8] [--categories 5] [--per-category 20]
[--threshold median] [--out DIR]`` (``--out`` keeps the reports, PNGs included).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from avsynth.build import BuildOptions, SourcePaths, build
from avsynth.demo import DemoSize, write_demo
from avsynth.demo.localization import LocalizationDemoSize, ensure_localization_demo
from avsynth.modeling import build_model, load_config, save_checkpoint
from avsynth.protocols.localization import LocalizationConfig, run_localization
from avsynth.training.trainer import TrainConfig, train


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--categories", type=int, default=5)
    ap.add_argument("--images-per-category", type=int, default=60)
    ap.add_argument("--per-category", type=int, default=20, help="localisation samples per category")
    ap.add_argument("--threshold", default="median")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="keep the reports here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-loc-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        size = DemoSize("bench-loc", images_per_category=args.images_per_category, val_every=5, clips_train=6,
                        clips_test=2, missing_rows=1, extra_label_rows=1, v1s=(3, 2, 2), v1m=(2, 1, 1),
                        avs_images=2, max_categories=args.categories, width=(160, 240), height=(120, 180))
        demo = write_demo(root / "demo", seed=args.seed, scale=size, workers=2)
        build(BuildOptions(out=root / "shards", categories=",".join(demo.categories),
                           sources=SourcePaths(lvis_json=[demo.lvis_train_json, demo.lvis_val_json],
                                               coco_root=demo.coco_root, vggsound_csv=demo.vggsound_csv,
                                               vggsound_audio=demo.vggsound_audio),
                           sizes={"train": 5000, "validation": 500, "test": 500}, workers=2, rows_per_shard=100,
                           seed=args.seed), progress=False)
        loc = ensure_localization_demo(demo, LocalizationDemoSize(per_category=args.per_category))
        emit(figure="demo_corpus", categories=args.categories, seconds=round(time.perf_counter() - t0, 1),
             localization_set=str(loc.relative_to(demo.root)))
        t1 = time.perf_counter()
        result = train(TrainConfig(out=root / "run", model="sama-avs-tiny", data=str(root / "shards"),
                                   epochs=args.epochs, unfreeze=("sam.image_encoder.",), batch_size=args.batch_size,
                                   lr=args.lr, num_workers=0, seed=args.seed, progress=False, log_every=50))
        train_s = round(time.perf_counter() - t1, 1)
        cfg = load_config("sama-avs-tiny")
        untrained = save_checkpoint(build_model(cfg), root / "untrained.pt", cfg)
        for label, ckpt in (("trained", root / "run" / "best.pt"), ("untrained", untrained)):
            out = (args.out or root / "reports") / label
            t2 = time.perf_counter()
            run, _ = run_localization(LocalizationConfig(checkpoint=ckpt, out=out, dataset="vggss",
                                                         demo_dir=demo.root, threshold=args.threshold))
            seconds = round(time.perf_counter() - t2, 1)
            names = ("model", "whole image", "centre box") if label == "trained" else ("model",)
            for name in names:
                r = run.results[name]
                emit(figure=f"vggss_demo_{label}_model" if name == "model" else f"vggss_demo_control_{name.replace(' ', '_')}",
                     ciou_at_05=r["cIoU@0.5"], auc=r["AUC"], mean_ciou=r["mean_cIoU"], samples=r["samples"],
                     listed=run.listed, skipped=sum(v["count"] for v in run.skipped.values()),
                     corrupt_entries=len(run.corrupt_entries), threshold=run.threshold,
                     eval_seconds=seconds if name == "model" else None)
        last = result.history[-1]
        emit(figure="training", epochs=args.epochs, val_miou=last["val_miou"], best_val_miou=result.best_miou,
             train_seconds=train_s, threads=args.threads, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
