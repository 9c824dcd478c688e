"""Does a tiny SAMA-AVS learn to listen? Training throughput and validation mIoU on the demo corpus.

Writes a demo corpus (a few categories, small images), builds shards from it, then on the
validation split reports (one JSON line each):

* the audio-blind baselines: predict nothing, predict every object in the image (LVIS union);
* a tiny SAMA-AVS trained on the CPU with the real audio;
* the same model trained and evaluated with the audio zeroed (an audio-blind control);
* training throughput (samples/s) of each run.

Usage: ``python benchmark/bench_train.py [--epochs 12] [--categories 5] [--threads 1]``.
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
from avsynth.training.baselines import LvisObjects, blind_baselines
from avsynth.training.trainer import TrainConfig, train

#: sama-avs-tiny's SAM is random, not pre-trained: a frozen random encoder is no stand-in for
#: SAM's, so the tiny runs also train the encoder (see benchmark/README.md, "Training").
UNFREEZE = ("sam.image_encoder.",)


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def corpus(root: Path, categories: int, images: int, seed: int) -> tuple[Path, LvisObjects]:
    size = DemoSize("bench-train", images_per_category=images, val_every=5, clips_train=6, clips_test=2,
                    missing_rows=1, extra_label_rows=1, v1s=(3, 2, 2), v1m=(2, 1, 1), avs_images=2,
                    max_categories=categories, width=(160, 240), height=(120, 180))
    demo = write_demo(root / "demo", seed=seed, scale=size, workers=2)
    sources = SourcePaths(lvis_json=[demo.lvis_train_json, demo.lvis_val_json], coco_root=demo.coco_root,
                          vggsound_csv=demo.vggsound_csv, vggsound_audio=demo.vggsound_audio)
    build(BuildOptions(out=root / "shards", categories=",".join(demo.categories), sources=sources,
                       sizes={"train": 5000, "validation": 500, "test": 500}, workers=2,
                       rows_per_shard=100, seed=seed), progress=False)
    return root / "shards", LvisObjects([demo.lvis_train_json, demo.lvis_val_json])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--categories", type=int, default=5)
    ap.add_argument("--images-per-category", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="sama-avs-tiny")
    ap.add_argument("--frozen-encoder", action="store_true", help="keep the random tiny encoder frozen")
    ap.add_argument("--no-control", action="store_true", help="skip the audio-zeroed control run")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        shards, objects = corpus(root, args.categories, args.images_per_category, args.seed)
        record = json.loads((shards / "manifest.json").read_text())
        emit(figure="demo_corpus", categories=args.categories, train_rows=record["splits"]["train"]["rows"],
             val_rows=record["splits"]["validation"]["rows"], seconds=round(time.perf_counter() - t0, 1))
        base = blind_baselines(shards, "validation", objects)
        for name, m in base.items():
            emit(figure=f"baseline_{name}", val_miou=m["miou"], val_fscore=m["fscore"], f_group=m["f_group"])
        runs = [("real", "sama_avs_tiny")] + ([] if args.no_control else [("zero", "sama_avs_tiny_audio_zeroed")])
        for mode, name in runs:
            t1 = time.perf_counter()
            result = train(TrainConfig(
                out=root / f"run-{mode}", model=args.config, data=str(shards), epochs=args.epochs,
                unfreeze=() if args.frozen_encoder else UNFREEZE,
                batch_size=args.batch_size, lr=args.lr, num_workers=args.workers, seed=args.seed,
                audio_mode=mode, progress=False, log_every=50,
            ))
            last = result.history[-1]
            emit(figure=name, epochs=args.epochs, val_miou=last["val_miou"], val_fscore=last["val_fscore"],
                 best_val_miou=result.best_miou, samples_per_s=result.samples_per_s,
                 train_seconds=round(sum(h["seconds"] for h in result.history), 1),
                 wall_seconds=round(time.perf_counter() - t1, 1), threads=args.threads,
                 batch_size=args.batch_size, frozen_encoder=args.frozen_encoder, f_group=last["f_group"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
