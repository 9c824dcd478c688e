"""AAVS / Stepping Stones on the demo AVSBench tree (CPU, tiny configs, seeds fixed).

One JSON line per figure:

* S4 (on the ``s4-audio`` demo scale: 8 categories, 10 S4 train videos each, every frame the sounding
  object plus 1-2 silent ones, so only the audio says which to segment): a tiny AAVS trained on the
  demo S4 train videos (official rules: frame 0 once per audio second) with the real audio, and the
  same run with the audio zeroed (or shuffled) in training and validation (audio-blind models), each
  best-on-validation checkpoint then scored on the S4 test split with the four controls of
  ``avsynth bench`` (audio zeroed / shuffled at test time, predict nothing / everything);
* AVSS: stage 1 (tiny AAVS on the binary masks of the AVSS videos, the ordinary trainer), its
  predictions written once as PNGs, stage 2 (tiny Stepping Stones) trained on them, against a
  one-stage tiny AVSS model (the same config as a plain 71-label AAVS: no stage-1 masks): validation
  mIoU with / without background;
* CPU step time of each run (steps/s, one video or batch per step).

Usage: ``python benchmark/bench_aavs.py [--s4-epochs 12] [--avss-epochs 12] [--threads 1]``;
S4 only: ``--part s4 [--s4-audio real,zero] [--s4-scale s4-audio] [--lr 3e-3]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from avsynth.demo import write_demo
from avsynth.modeling.registry import load_config
from avsynth.protocols.common import EvalOptions
from avsynth.protocols.zero_shot import zero_shot
from avsynth.sources.avsbench import AVSBenchSource
from avsynth.training.avss import AVSSTrainConfig, train_avss, write_stage1_masks
from avsynth.training.trainer import TrainConfig, train


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def run_trainer(out: Path, root: Path, subset: str, epochs: int, audio: str, seed: int,
                lr: float | None = None) -> dict:
    t0 = time.perf_counter()
    r = train(TrainConfig(out=out, model="aavs-tiny", avsbench=AVSBenchSource(root, subset=subset), epochs=epochs,
                          audio_mode=audio, seed=seed, num_workers=0, progress=False, cpu=True, lr=lr))
    steps = sum(h["steps"] for h in r.history)
    train_s = sum(h["seconds"] for h in r.history)
    best = max(r.history, key=lambda h: h["val_miou"])
    return {"best_miou": r.best_miou, "best_fscore": best["val_fscore"], "best_epoch": r.best_epoch,
            "steps": steps, "train_seconds": round(train_s, 1), "s_per_step": round(train_s / steps, 3),
            "wall_s": round(time.perf_counter() - t0, 1)}


def audio_probe(root: Path) -> dict:
    """Can aavs-tiny's frozen (random, seeded) VGGish tell the S4 categories apart? Nearest centroid
    (cosine and Euclidean) over the per-second 128-d vectors: centroids from the train videos,
    accuracy on every second of the val + test videos."""
    import numpy as np

    from avsynth.modeling.registry import build_vggish_for
    from avsynth.sources.avsbench import audio_windows, load_audio

    vgg = build_vggish_for(load_config("aavs-tiny"))
    src = AVSBenchSource(root, subset="s4")
    vecs, cats, train = [], [], []
    for split in ("train", "val", "test"):
        for v in src.videos(split):
            e = vgg.embed_windows(audio_windows(load_audio(v.audio_path), v.num_frames), 16000).numpy()
            vecs += list(e)
            cats += [v.a_obj] * len(e)
            train += [split == "train"] * len(e)
    x, y, tr = np.stack(vecs), np.array(cats), np.array(train)
    names = sorted(set(y[tr]))
    out = {"vectors": int(len(x)), "categories": len(names), "chance": round(1 / len(names), 3)}
    for kind, z in (("euclidean", x), ("cosine", x / np.linalg.norm(x, axis=1, keepdims=True))):
        centroids = np.stack([z[tr & (y == c)].mean(0) for c in names])
        pred = np.array(names)[((z[~tr][:, None] - centroids[None]) ** 2).sum(-1).argmin(1)]
        out[f"nearest_centroid_{kind}"] = round(float((pred == y[~tr]).mean()), 3)
    return out


def s4_test(checkpoint: Path, root: Path) -> dict:
    """The checkpoint on the S4 test split (official 224² metric, F grouped per 4 videos) with the
    four controls of ``avsynth bench`` (the audio of the same model zeroed / shuffled at test time,
    constant predictions)."""
    r = zero_shot(checkpoint, root, subsets=["s4"], split="test", opts=EvalOptions(device="cpu"))[0]
    return {"miou": r.miou, "fscore": r.fscore, "frames": r.frames, "videos": r.videos,
            **{k: {"miou": v["miou"], "fscore": v["fscore"]} for k, v in r.controls.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--s4-epochs", type=int, default=12)
    ap.add_argument("--avss-epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=None, help="S4 phase-1 learning rate (default: aavs-tiny's 1e-3).")
    ap.add_argument("--avss-lr", type=float, default=None, help="AVSS stage-2 / one-stage learning rate.")
    ap.add_argument("--s4-audio", default="real,zero", help="S4 runs: comma list of real, zero, shuffle.")
    ap.add_argument("--s4-scale", default="s4-audio", help="Demo scale of the S4 tree (default: s4-audio).")
    ap.add_argument("--s4-demo", type=Path, default=None,
                    help="An existing `avsynth demo --scale s4-audio` folder (seed 0) for the S4 part.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--part", choices=("all", "s4", "avss"), default="all", help="Run one half only.")
    ap.add_argument("--work", type=Path, default=None, help="Working folder (default: a temporary one).")
    ap.add_argument("--demo", type=Path, default=None,
                    help="An existing `avsynth demo` folder (default scale, seed 0) instead of writing one.")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-aavs-"))
    if args.part in ("all", "s4"):
        s4_root = (args.s4_demo / "avsbench" if args.s4_demo is not None else
                   Path(write_demo(work / "demo-s4", seed=0, scale=args.s4_scale, workers=2).avsbench_root))
        emit(task="s4-audio-probe", scale=args.s4_scale, **audio_probe(s4_root))
        for audio in args.s4_audio.split(","):
            r = run_trainer(work / f"s4-{audio}", s4_root, "s4", args.s4_epochs, audio, args.seed, args.lr)
            emit(task="s4", model="aavs-tiny", audio=audio, epochs=args.s4_epochs, lr=args.lr, seed=args.seed,
                 scale=args.s4_scale, **r, test=s4_test(work / f"s4-{audio}" / "best.pt", s4_root))
    if args.part == "s4":
        return 0
    if args.demo is not None:
        root = args.demo / "avsbench"
    else:
        root = Path(write_demo(work / f"demo-{args.part}", seed=0, scale="default", workers=2).avsbench_root)
    # AVSS stage 1: the binary AAVS on the AVSS videos, then its masks of the val videos, written once
    s1 = run_trainer(work / "avss-stage1", root, "avss", args.avss_epochs, "real", args.seed, args.lr)
    emit(task="avss-stage1", model="aavs-tiny", epochs=args.avss_epochs, seed=args.seed, **s1)
    val = AVSBenchSource(root, subset="avss").videos("val")
    masks = work / "stage1-masks"
    t0 = time.perf_counter()
    w = write_stage1_masks(work / "avss-stage1" / "best.pt", val, masks)
    again = write_stage1_masks(work / "avss-stage1" / "best.pt", val, masks)
    emit(task="avss-stage1-masks", videos=len(val), written=w["written"], kept_on_rerun=again["kept"],
         seconds=round(time.perf_counter() - t0, 1))
    one_stage = copy.deepcopy(load_config("stepping-stones-tiny"))
    one_stage.update(name="aavs-avss71-tiny", family="aavs")
    for name, cfg in (("stepping-stones-tiny (two-stage)", "stepping-stones-tiny"),
                      ("aavs-avss71-tiny (one-stage)", one_stage)):
        t0 = time.perf_counter()
        r = train_avss(AVSSTrainConfig(root=root, out=work / name.split()[0], model=cfg, stage1_masks=masks,
                                       epochs=args.avss_epochs, lr=args.avss_lr, seed=args.seed, device="cpu"))
        best = max(r["history"], key=lambda h: h["val_miou"])
        steps = sum(r["train_videos"] for _ in r["history"])
        train_s = sum(h["seconds"] for h in r["history"])
        emit(task="avss", model=name, epochs=args.avss_epochs, lr=args.avss_lr, seed=args.seed, best_miou=r["best_miou"],
             best_miou_no_bg=best["val_miou_no_bg"], best_fscore=best["val_fscore"], best_epoch=r["best_epoch"],
             train_videos=r["train_videos"], val_videos=r["val_videos"], s_per_step=round(train_s / steps, 3),
             wall_s=round(time.perf_counter() - t0, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
