"""AAVS / Stepping Stones on the demo AVSBench tree (CPU, tiny configs, seeds fixed).

One JSON line per figure:

* S4 (on the ``s4-audio`` demo scale: 8 categories, 10 S4 train videos each, every frame the sounding
  object plus 1-2 silent ones, so only the audio says which to segment): a tiny AAVS trained on the
  demo S4 train videos (official rules: frame 0 once per audio second) with the real audio, and the
  same run with the audio zeroed (or shuffled) in training and validation (audio-blind models), each
  best-on-validation checkpoint then scored on the S4 test split with the four controls of
  ``avsynth bench`` (audio zeroed / shuffled at test time, predict nothing / everything);
* AVSS (on the ``avss`` demo scale: 8 classes, each sounding in about 9 train videos): stage 1 (tiny
  AAVS on the binary masks of the AVSS videos, the ordinary trainer), its predictions of the val and
  test videos written once as PNGs, stage 2 (tiny Stepping Stones: ground-truth masks in training,
  the stage-1 PNGs in validation / test) against a one-stage tiny AVSS model (``aavs-avss71-tiny``,
  the same Mask2Former, no masks), same videos, seed, epochs and learning rate: best validation
  mIoU, then that checkpoint on the test split under both protocols (``official``, ``stepping_stones``)
  with / without background (``[1:]`` and the official ``[:-1]``);
* CPU step time of each run (steps/s, one video or batch per step).

Usage: ``python benchmark/bench_aavs.py [--s4-epochs 12] [--avss-epochs 12] [--threads 1]``;
S4 only: ``--part s4 [--s4-audio real,zero] [--s4-scale s4-audio] [--lr 3e-3] [--audio-norm fit|none]``
(``fit``, the default: aavs-tiny with ``audio_norm: fit``, the random VGGish's vectors standardised
with the S4 train split's per-dimension mean / std; ``none`` reproduces the earlier runs);
S4 with synthetic pre-training: ``--part s4-pretrain [--s4-demo DEMO] [--s4-audio real,zero]
[--pretrain-epochs 8] [--s4-epochs 6]`` (the ``s4-pretrain`` demo scale, its shards built with default
options, aavs-tiny pre-trained on them, scored zero-shot on S4 test, fine-tuned on S4, scored again);
AVSS only: ``--part avss [--avss-scale avss] [--avss-epochs 12] [--avss-lr 3e-3] [--lr 3e-3]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from avsynth.demo import write_demo
from avsynth.evaluation.metrics import avss_class_names
from avsynth.modeling.audio_norm import audio_statistics
from avsynth.modeling.registry import load_config
from avsynth.protocols.avss import AVSSBenchConfig, run_avss_bench
from avsynth.protocols.common import EvalOptions
from avsynth.protocols.zero_shot import zero_shot
from avsynth.sources.avsbench import OFFICIAL_SIZE, AVSBenchSource, load_mask
from avsynth.training.avss import AVSSTrainConfig, read_stage1_masks, train_avss, write_stage1_masks
from avsynth.training.trainer import TrainConfig, train


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def run_trainer(out: Path, root: Path | None, subset: str, epochs: int, audio: str, seed: int,
                lr: float | None = None, audio_norm: str | None = None, data: Path | None = None,
                init: Path | None = None) -> dict:
    """One aavs-tiny run: on AVSBench ``root`` (``subset``), or on the shards in ``data`` (pre-training);
    ``init``: start from this checkpoint (fine-tuning)."""
    t0 = time.perf_counter()
    r = train(TrainConfig(out=out, model="aavs-tiny", avsbench=AVSBenchSource(root, subset=subset) if data is None else None,
                          data=str(data) if data is not None else None, epochs=epochs, init=init,
                          audio_mode=audio, seed=seed, num_workers=0, progress=False, cpu=True, lr=lr,
                          audio_norm=audio_norm))
    steps = sum(h["steps"] for h in r.history)
    train_s = sum(h["seconds"] for h in r.history)
    best = max(r.history, key=lambda h: h["val_miou"])
    return {"best_miou": r.best_miou, "best_fscore": best["val_fscore"], "best_epoch": r.best_epoch,
            "val_miou_by_epoch": [round(h["val_miou"], 4) for h in r.history],
            "train_loss_by_epoch": [round(h["train_loss"], 3) for h in r.history], "steps": steps, "train_seconds": round(train_s, 1), "s_per_step": round(train_s / steps, 3),
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
    mean, std = (t.numpy() for t in audio_statistics(torch.from_numpy(x[tr])))  # what audio_norm: fit uses
    for space, v in (("raw", x), ("standardised", (x - mean) / std)):
        for kind, z in (("euclidean", v), ("cosine", v / np.linalg.norm(v, axis=1, keepdims=True))):
            centroids = np.stack([z[tr & (y == c)].mean(0) for c in names])
            pred = np.array(names)[((z[~tr][:, None] - centroids[None]) ** 2).sum(-1).argmin(1)]
            key = f"nearest_centroid_{kind}" + ("" if space == "raw" else "_standardised")
            out[key] = round(float((pred == y[~tr]).mean()), 3)
        out[f"spread_{space}"] = spread(v[tr], y[tr])
    return out


def spread(x: np.ndarray, y: np.ndarray) -> dict:
    """How much of the vectors is one common offset: mean norm, norm of the mean, mean residual norm,
    mean distance of the category centroids from the mean, pairwise cosines, share of zero entries."""
    mu = x.mean(0)
    centroids = np.stack([x[y == c].mean(0) for c in sorted(set(y))])
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    cos = unit @ unit.T
    return {"mean_norm": round(float(np.linalg.norm(x, axis=1).mean()), 2), "norm_of_mean": round(float(np.linalg.norm(mu)), 2),
            "mean_residual_norm": round(float(np.linalg.norm(x - mu, axis=1).mean()), 2),
            "centroid_spread": round(float(np.linalg.norm(centroids - mu, axis=1).mean()), 2),
            "mean_pairwise_cosine": round(float(cos.mean()), 3), "min_pairwise_cosine": round(float(cos.min()), 3),
            "zero_share": round(float((x == 0).mean()), 3)}


def s4_test(checkpoint: Path, root: Path) -> dict:
    """The checkpoint on the S4 test split (official 224² metric, F grouped per 4 videos) with the
    four controls of ``avsynth bench`` (the audio of the same model zeroed / shuffled at test time,
    constant predictions)."""
    r = zero_shot(checkpoint, root, subsets=["s4"], split="test", opts=EvalOptions(device="cpu"))[0]
    return {"miou": r.miou, "fscore": r.fscore, "frames": r.frames, "videos": r.videos,
            **{k: {"miou": v["miou"], "fscore": v["fscore"]} for k, v in r.controls.items()}}


def run_s4_pretrain(args, work: Path) -> None:
    """Binary AVS pre-training on synthetic shards, then fine-tuning on S4 (the ``s4-pretrain`` demo
    scale: s4-audio's 8 categories and S4 shape plus 40 LVIS images / 9 VGGSound train clips per
    category, so the same image appears with different sounding categories and masks). For each
    ``--s4-audio`` mode (real, zero: audio zeroed in pre-training, fine-tuning and validation):
    pre-train ``--pretrain-epochs`` on the shards, score best.pt zero-shot on the S4 test split, fine-tune
    ``--s4-epochs`` on the S4 train videos from it, score that best.pt."""
    from avsynth.build import BuildOptions, SourcePaths, build
    from avsynth.demo import DemoCorpus

    demo = (DemoCorpus.load(args.s4_demo) if args.s4_demo is not None else
            write_demo(work / "demo-s4-pretrain", seed=0, scale="s4-pretrain", workers=2))
    s4_root = demo.avsbench_root
    shards = work / "shards-s4-pretrain"
    if not (shards / "data").exists():  # default build options: single-source rows
        t0 = time.perf_counter()
        res = build(BuildOptions(out=shards, categories=",".join(demo.categories), workers=2, sources=SourcePaths(
            lvis_json=[demo.lvis_train_json, demo.lvis_val_json], coco_root=demo.coco_root,
            vggsound_csv=demo.vggsound_csv, vggsound_audio=demo.vggsound_audio)), progress=False)
        emit(task="s4-pretrain-build", shards_written=res.shards_written, wall_s=round(time.perf_counter() - t0, 1))
    for audio in args.s4_audio.split(","):
        tag = f"{audio}-{args.audio_norm}-lr{args.lr or 'recipe'}-seed{args.seed}"
        pre = work / f"s4pre-pretrain-{tag}-e{args.pretrain_epochs}"
        r = run_trainer(pre, None, "s4", args.pretrain_epochs, audio, args.seed, args.lr, args.audio_norm, data=shards)
        emit(task="s4-pretrain", stage="pre-trained (zero-shot)", model="aavs-tiny", audio=audio, audio_norm=args.audio_norm,
             epochs=args.pretrain_epochs, lr=args.lr, seed=args.seed, **r, test=s4_test(pre / "best.pt", s4_root))
        ft = work / f"s4pre-finetune-{tag}-e{args.pretrain_epochs}+{args.s4_epochs}"
        r = run_trainer(ft, s4_root, "s4", args.s4_epochs, audio, args.seed, args.lr, args.audio_norm, init=pre / "best.pt")
        emit(task="s4-pretrain", stage="fine-tuned", model="aavs-tiny", audio=audio, audio_norm=args.audio_norm,
             epochs=args.s4_epochs, pretrain_epochs=args.pretrain_epochs, lr=args.lr, seed=args.seed, **r,
             test=s4_test(ft / "best.pt", s4_root))


AVSS_MODELS = {"two-stage": "stepping-stones-tiny", "one-stage": "aavs-avss71-tiny"}
AVSS_FIGURES = ("miou", "miou_no_bg", "miou_official_no_bg", "fscore", "fscore_no_bg", "fscore_official_no_bg",
                "classes_present", "frames")


def avss_test(checkpoint: Path, root: Path, masks: Path | None, stage1: Path | None) -> dict:
    """The checkpoint on the AVSS test split under both named protocols (``official``: v1s / v1m padded
    to 10 frames; ``stepping_stones``: the annotated frames), with / without background ([1:] and the
    official [:-1]); a Stepping Stones model reads the stage-1 PNGs of the test videos (written once)."""
    rep = run_avss_bench(AVSSBenchConfig(checkpoint=checkpoint, avsbench=root, out=checkpoint.parent / "test",
                                         stage1_masks=masks, stage1_checkpoint=stage1, split="test", device="cpu"))
    return {name: {k: r[k] for k in AVSS_FIGURES} for name, r in rep["protocols"].items()}


def run_avss(args, work: Path, default_demo: Path | None) -> None:
    """Stage 1 (the binary AAVS on the AVSS videos, ordinary trainer) and its masks of the val / test
    videos, written once; then the two-stage (Stepping Stones) and the one-stage (71-label AAVS) tiny
    models on the same videos, seed, epochs and learning rate, best-on-validation checkpoints scored
    on the test split."""
    if args.avss_demo is not None:
        root = args.avss_demo / "avsbench"
    elif args.avss_scale == "default" and default_demo is not None:
        root = default_demo / "avsbench"
    else:
        root = Path(write_demo(work / f"demo-{args.avss_scale}", seed=0, scale=args.avss_scale, workers=2).avsbench_root)
    emit(task="avss-tree", scale=args.avss_scale, **avss_tree(root))
    stage1 = args.stage1
    if stage1 is None:
        epochs = args.avss_stage1_epochs or args.avss_epochs
        s1 = run_trainer(work / "avss-stage1", root, "avss", epochs, "real", args.seed, args.lr)
        emit(task="avss-stage1", model="aavs-tiny", epochs=epochs, lr=args.lr, seed=args.seed, **s1)
        stage1 = work / "avss-stage1" / "best.pt"
    masks = work / "stage1-masks"
    source = AVSBenchSource(root, subset="avss")
    for split in ("val", "test"):
        videos = source.videos(split)
        t0 = time.perf_counter()
        w = write_stage1_masks(stage1, videos, masks)
        again = write_stage1_masks(stage1, videos, masks)
        emit(task="avss-stage1-masks", split=split, videos=len(videos), written=w["written"],
             kept_on_rerun=again["kept"], seconds=round(time.perf_counter() - t0, 1),
             binary_miou_vs_gt=stage1_quality(videos, masks))
    for key in [m for m in args.avss_models.split(",") if m]:
        name = AVSS_MODELS[key]
        t0 = time.perf_counter()
        out = work / name
        r = train_avss(AVSSTrainConfig(root=root, out=out, model=name, stage1_masks=masks, epochs=args.avss_epochs,
                                       lr=args.avss_lr, seed=args.seed, device="cpu"))
        best = max(r["history"], key=lambda h: h["val_miou"])
        steps = r["train_videos"] * len(r["history"])
        train_s = sum(h["seconds"] for h in r["history"])
        emit(task="avss", model=f"{name} ({key})", scale=args.avss_scale, epochs=args.avss_epochs, lr=args.avss_lr,
             seed=args.seed, val_best_miou=r["best_miou"], val_best_miou_no_bg=best["val_miou_no_bg"],
             best_epoch=r["best_epoch"], train_videos=r["train_videos"], val_videos=r["val_videos"],
             final_train_loss=round(r["history"][-1]["train_loss"], 3), s_per_step=round(train_s / steps, 3),
             wall_s=round(time.perf_counter() - t0, 1),
             test=avss_test(out / "best.pt", root, masks if key == "two-stage" else None, stage1))


def avss_tree(root: Path) -> dict:
    """Videos per split and the number of train videos each class sounds in (from the masks)."""
    source = AVSBenchSource(root, subset="avss")
    per_class = Counter()
    for v in source.videos("train"):
        present = set()
        for i, annotated in enumerate(v.annotated):
            if annotated:
                present |= set(np.unique(load_mask(v.mask_paths[i], "semantic", (OFFICIAL_SIZE,) * 2)).tolist())
        per_class.update(present - {0})
    names = avss_class_names(71)
    return {"videos": {s: len(source.videos(s)) for s in ("train", "val", "test")},
            "train_videos_per_class": {names[c]: n for c, n in sorted(per_class.items())}}


def stage1_quality(videos, masks: Path) -> float:
    """Mean per-frame IoU of the stage-1 PNGs against the binary ground truth (annotated frames)."""
    ious = []
    for v in videos:
        for i, annotated in enumerate(v.annotated):
            if annotated:
                gt = load_mask(v.mask_paths[i], "binary", (OFFICIAL_SIZE,) * 2) > 0
                pred = read_stage1_masks(masks, v, [i])[0].numpy() > 0.5
                union = (gt | pred).sum()
                ious.append(1.0 if union == 0 else float((gt & pred).sum() / union))
    return round(float(np.mean(ious)), 4)


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
    ap.add_argument("--audio-norm", choices=("none", "fit"), default="fit",
                    help="S4 runs: standardise the VGGish vectors with the train split's mean / std (default: fit).")
    ap.add_argument("--skip-probe", action="store_true", help="S4: do not print the audio probe line.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--part", choices=("all", "s4", "avss", "s4-pretrain"), default="all",
                    help="Run one half only (s4-pretrain: pre-train on synthetic shards, then fine-tune on S4).")
    ap.add_argument("--pretrain-epochs", type=int, default=8, help="s4-pretrain: epochs on the shards.")
    ap.add_argument("--work", type=Path, default=None, help="Working folder (default: a temporary one).")
    ap.add_argument("--demo", type=Path, default=None,
                    help="An existing `avsynth demo` folder (default scale, seed 0) instead of writing one.")
    ap.add_argument("--avss-scale", default="avss",
                    help="Demo scale of the AVSS tree (default: avss, 8 classes; `default` = the 46-category tree).")
    ap.add_argument("--avss-demo", type=Path, default=None,
                    help="An existing `avsynth demo --scale avss` folder (seed 0) for the AVSS part.")
    ap.add_argument("--avss-stage1-epochs", type=int, default=None, help="AVSS stage-1 epochs (default: --avss-epochs).")
    ap.add_argument("--avss-models", default="two-stage,one-stage", help="AVSS runs: comma list of two-stage, one-stage.")
    ap.add_argument("--stage1", type=Path, default=None,
                    help="An existing stage-1 best.pt (trained on the same tree) instead of training one.")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-aavs-"))
    if args.part in ("all", "s4"):
        s4_root = (args.s4_demo / "avsbench" if args.s4_demo is not None else
                   Path(write_demo(work / "demo-s4", seed=0, scale=args.s4_scale, workers=2).avsbench_root))
        if not args.skip_probe:
            emit(task="s4-audio-probe", scale=args.s4_scale, **audio_probe(s4_root))
        for audio in args.s4_audio.split(","):
            run = work / f"s4-{audio}-{args.audio_norm}-lr{args.lr or 'recipe'}-e{args.s4_epochs}-seed{args.seed}"
            r = run_trainer(run, s4_root, "s4", args.s4_epochs, audio, args.seed, args.lr, args.audio_norm)
            emit(task="s4", model="aavs-tiny", audio=audio, audio_norm=args.audio_norm, epochs=args.s4_epochs,
                 lr=args.lr, seed=args.seed, scale=args.s4_scale, **r, test=s4_test(run / "best.pt", s4_root))
    if args.part == "s4-pretrain":
        run_s4_pretrain(args, work)
    if args.part in ("s4", "s4-pretrain"):
        return 0
    run_avss(args, work, args.demo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
