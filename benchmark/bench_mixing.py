"""Does pre-training on mixes + off-screen negatives help? Tiny SAMA-AVS, demo corpus, seeds fixed.

Writes a demo corpus (5 categories; its AVSBench MS3 videos have two sounding objects each),
builds two shard sets from the same images and clips: **single** (one source per row, the
default build) and **mix+neg** (``--sources-per-row 2 --negatives 0.2``). A tiny SAMA-AVS is
trained on each with the same recipe and seed, then (one JSON line each):

* zero-shot on the demo MS3 test videos (official mIoU / F-score, 224 px, ``f_group=batch4``);
* the false-positive rate on off-screen rows: the share of the mix+neg build's validation and
  test negative rows (a clip of a category verified absent from the image) where the model
  predicts any foreground pixel, the share where it predicts more than 1 % of the image, and the
  mean predicted foreground fraction there.

``--equal-steps`` trains the mix+neg model for as many samples as the single-source one (its
build has fewer rows: only images with two categories make a row), instead of as many epochs.

Usage: ``python benchmark/bench_mixing.py [--epochs 8] [--equal-steps] [--runs single mix+neg]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch

from avsynth.build import BuildOptions, SourcePaths, build
from avsynth.demo import DemoSize, write_demo
from avsynth.evaluation.evaluate import predict_videos, shard_samples
from avsynth.modeling.predictor import AVPredictor
from avsynth.modeling.registry import build_vggish_for
from avsynth.protocols.common import checkpoint_config, load_model
from avsynth.protocols.zero_shot import zero_shot
from avsynth.training.trainer import TrainConfig, train

UNFREEZE = ("sam.image_encoder.",)  # the tiny SAM is random: train its encoder too (as bench_train)


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def negatives_fpr(checkpoint: Path, shards: Path) -> dict:
    config = checkpoint_config(checkpoint)
    model, vggish = load_model(checkpoint, config), build_vggish_for(config)
    predictor = AVPredictor(model)
    fp = fp1 = n = 0
    frac = 0.0
    with predictor.evaluating():
        for split in ("validation", "test"):
            ids = [r["id"] for p in sorted((shards / "data").glob(f"{split}-*.parquet"))
                   for r in pq.read_table(p, columns=["id", "negative"]).to_pylist() if r["negative"]]
            samples = list(shard_samples(shards, split, vggish, ids=ids))
            for logits in predict_videos(predictor, samples):
                on = (logits[0] > 0).float().mean().item()
                fp += on > 0
                fp1 += on > 0.01
                frac += on
                n += 1
    return {"negative_rows": n, "false_positive_rate": fp / max(1, n),
            "false_positive_rate_over_1pct": fp1 / max(1, n), "mean_foreground": frac / max(1, n)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--categories", type=int, default=5)
    ap.add_argument("--images-per-category", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--equal-steps", action="store_true", help="as many training samples, not epochs")
    ap.add_argument("--runs", nargs="+", default=["single", "mix+neg"], choices=["single", "mix+neg"])
    ap.add_argument("--negatives", type=float, default=0.2, help="--negatives of the mix+neg build")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-mixing-") as tmp:
        root = Path(tmp)
        size = DemoSize("bench-mixing", images_per_category=args.images_per_category, val_every=5, clips_train=6,
                        clips_test=2, missing_rows=1, extra_label_rows=1, v1s=(2, 1, 1), v1m=(2, 1, 10),
                        avs_images=2, max_categories=args.categories, width=(160, 240), height=(120, 180))
        demo = write_demo(root / "demo", seed=args.seed, scale=size, workers=2)
        sources = SourcePaths(lvis_json=[demo.lvis_train_json, demo.lvis_val_json], coco_root=demo.coco_root,
                              vggsound_csv=demo.vggsound_csv, vggsound_audio=demo.vggsound_audio)
        builds = {"single": {}, "mix+neg": {"sources_per_row": 2, "negatives": args.negatives}}
        rows = {}
        for name, extra in builds.items():
            rec = build(BuildOptions(out=root / name, categories=",".join(demo.categories), sources=sources,
                                     sizes={"train": 5000, "validation": 500, "test": 500}, workers=2,
                                     rows_per_shard=100, seed=args.seed, **extra), progress=False).record
            rows[name] = rec.split_rows("train")
            emit(figure=f"build_{name}", train_rows=rec.split_rows("train"),
                 composition=rec.extra.get("composition", {}).get("train"))
        for name in args.runs:
            t0 = time.perf_counter()
            epochs = args.epochs
            if args.equal_steps:
                epochs = max(1, round(args.epochs * rows["single"] / rows[name]))
            result = train(TrainConfig(out=root / f"run-{name}", model="sama-avs-tiny", data=str(root / name),
                                       epochs=epochs, unfreeze=UNFREEZE, batch_size=2, lr=1e-3,
                                       num_workers=0, seed=args.seed, progress=False, log_every=50))
            best = root / f"run-{name}" / "best.pt"
            (ms3,) = zero_shot(best, demo.avsbench_root, subsets=["ms3"], split="test")
            emit(figure=f"pretrained_on_{name}", negatives=builds[name].get("negatives", 0.0), epochs=epochs, train_samples=epochs * rows[name], ms3_zero_shot_miou=ms3.miou,
                 ms3_zero_shot_fscore=ms3.fscore, ms3_videos=ms3.videos,
                 own_val_miou=result.best_miou, **negatives_fpr(best, root / "mix+neg"),
                 train_seconds=round(time.perf_counter() - t0, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
