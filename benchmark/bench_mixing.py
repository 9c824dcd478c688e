"""Does pre-training on mixes + off-screen negatives help? Tiny SAMA-AVS, demo corpus, seeds fixed.

Writes a demo corpus (5 categories; its AVSBench MS3 videos have two sounding objects each),
builds shard sets from the same images and clips: **single** (one source per row, the default
build) and one **mix+neg** build per ``--negatives`` fraction (``--sources-per-row 2 --negatives
F``). A tiny SAMA-AVS is trained on each with the same recipe and seed, then (one JSON line each):

* zero-shot on the demo MS3 test videos (official mIoU / F-score, 224 px, ``f_group=batch4``);
* the false-positive rate on held-out off-screen rows (a clip of a category verified absent from
  the image; the validation + test negatives of an extra ``--negatives 0.9`` build, images no
  compared model trained on): the share where the model predicts any foreground pixel, the share
  where it predicts more than 1 % of the image, and the mean predicted foreground fraction;
* zero-shot on a **larger demo MS3 test split** (``--ms3-videos``, default 40 videos, 200 frames): a
  second demo corpus of the same seed and size but for its MS3 count, so the same images and clips
  (checked byte for byte) and more videos of the same kind (keys ``ms3_large_*``);
* the false-positive rate on the **off-screen grid**: each held-out off-screen image × every
  manifest category verified absent from it (LVIS ``neg_category_ids``) × up to 4 held-out clips of
  that category (keys ``grid_*``; 150 rows on the default corpus against 45 held-out rows);
* whether it listens: mIoU on the single-source test rows with each row's own clip and with the
  clip of a row of another category.

``--equal-steps`` trains each mix+neg model for as many samples as the single-source one (its
build has fewer rows: only images with two categories make a row), instead of as many epochs.
``--work DIR`` keeps the corpus, builds and runs (a run whose ``result.json`` exists is scored,
not retrained; the off-screen set leaves out the train images of every build in DIR, so models
scored in separate invocations share one set); ``--train-seed`` changes only the training seed.

``--sources-per-row`` takes one or more values of the build option (default ``2``): ``1,2`` keeps
single-source rows in the mixed build (each image draws K = 1 or 2, seeded; ``1:1,2:2`` weights).

Usage: ``python benchmark/bench_mixing.py [--epochs 8] [--equal-steps] [--negatives 0.2 0.3 0.4]
[--sources-per-row 2 1,2] [--mix-keep-silent] [--audio-norm fit] [--runs single mix+neg] [--config sama-avs-tiny] [--work DIR] [--train-seed N]
[--ms3-videos 40]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from avsynth.build import BuildOptions, SourcePaths, build
from avsynth.demo import DemoSize, write_demo
from avsynth.demo.corpus import DemoCorpus
from avsynth.evaluation.evaluate import evaluate, predict_videos, shard_samples
from avsynth.manifest import select_categories
from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.predictor import AVPredictor
from avsynth.modeling.registry import build_vggish_for
from avsynth.protocols.common import checkpoint_config, load_model
from avsynth.protocols.zero_shot import zero_shot
from avsynth.shards.record import read_record
from avsynth.sources.lvis import read_lvis
from avsynth.sources.records import ImageLabels, SkipCounter
from avsynth.training.trainer import TrainConfig, train

UNFREEZE = ("sam.image_encoder.",)  # the tiny SAM is random: train its encoder too (as bench_train)
#: The off-screen evaluation build: the same images and clips with ``--negatives 0.9`` (capped at
#: one negative per image, so every held-out image that has a verified-absent category gives one);
#: its validation + test negatives, minus any image a compared model trained on, are the held-out
#: off-screen rows of every model (48 on the default corpus; a K = 1 build gives the same rows).
OFFSCREEN_EVAL = {"offscreen-k2": {"sources_per_row": 2, "negatives": 0.9}}


def build_name(sources_per_row: str, negatives: float, keep_silent: bool = False) -> str:
    """``mix+neg0.2`` for ``--sources-per-row 2`` (the first runs' name), else e.g. ``k1_2+neg0.2``
    (``1,2``) or ``k1w1_2w2+neg0.2`` (``1:1,2:2``); ``+silent`` with ``--mix-keep-silent``."""
    tail = "+silent" if keep_silent else ""
    if sources_per_row == "2":
        return f"mix+neg{negatives:g}{tail}"
    return f"k{sources_per_row.replace(',', '_').replace(':', 'w')}+neg{negatives:g}{tail}"


def larger_ms3_tree(root: Path, demo: DemoCorpus, size: DemoSize, seed: int, videos: int) -> Path:
    """The AVSBench root of a second demo corpus: ``size`` with ``videos`` MS3 test videos. The demo
    draws its videos after its images and clips, so that corpus has the same LVIS files and VGGSound
    clips (checked, byte for byte) and other, more MS3 videos of the same kind."""
    out = root / f"demo-ms3-{videos}"
    if (out / "demo.json").is_file():
        other = DemoCorpus.at(out, json.loads((out / "demo.json").read_text()))
    else:
        other = write_demo(out, seed=seed, scale=dataclasses.replace(size, name=f"bench-mixing-ms3-{videos}",
                                                                      v1m=(size.v1m[0], size.v1m[1], videos)), workers=2)
    for a, b in ((demo.lvis_train_json, other.lvis_train_json), (demo.lvis_val_json, other.lvis_val_json),
                 (demo.vggsound_csv, other.vggsound_csv)):
        if Path(a).read_bytes() != Path(b).read_bytes():
            raise SystemExit(f"{b}: differs from {a}; the larger MS3 corpus must share the images and clips")
    return Path(other.avsbench_root)


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def _rows(shards: Path, split: str, columns: list[str]) -> list[dict]:
    return [r for p in sorted((shards / "data").glob(f"{split}-*.parquet"))
            for r in pq.read_table(p, columns=columns).to_pylist()]


def offscreen_rows(eval_builds: list[Path], train_builds: list[Path]) -> list[tuple[Path, str, str]]:
    """(build, split, row id) of the held-out off-screen rows: validation + test negatives of
    ``eval_builds``, one per (image, audio category), none on an image of a training split."""
    trained = {r["image_id"] for b in train_builds for r in _rows(b, "train", ["image_id"])}
    seen, out = set(), []
    for b in eval_builds:
        for split in ("validation", "test"):
            for r in _rows(b, split, ["id", "image_id", "category", "negative"]):
                key = (r["image_id"], r["category"])
                if r["negative"] and r["image_id"] not in trained and key not in seen:
                    seen.add(key)
                    out.append((b, split, r["id"]))
    return out


#: clips per verified-absent category in the off-screen grid (held-out clips, sorted by clip id)
GRID_CLIPS = 4


def offscreen_grid(demo: DemoCorpus, offscreen: list[tuple[Path, str, str]], single: Path,
                   train_builds: list[Path], clips_per_category: int = GRID_CLIPS) -> list[tuple[tuple, tuple]]:
    """The larger off-screen set: each held-out off-screen image × **every** manifest category
    verified absent from it (LVIS ``neg_category_ids``, read with avsynth's LVIS reader) × up to
    ``clips_per_category`` held-out clips of that category (the audio of a validation / test row of
    the single-source build whose clip no compared build trains on). Pairs of (image row, audio row),
    each a (build, split, row id); the image's mask is empty for every pair by construction."""
    labels: list[ImageLabels] = []
    instances = read_lvis([demo.lvis_train_json, demo.lvis_val_json], demo.coco_root,
                          select_categories(",".join(demo.categories)), SkipCounter(),
                          verify_images=False, image_labels=labels)
    negatives = {lab.image_id: lab.negatives for lab in labels if lab.source == "lvis"}
    present = {(i.image_id, i.category) for i in instances}
    trained_clips = {a for b in train_builds for r in _rows(b, "train", ["audio_id"])
                     for a in str(r["audio_id"]).split("+")}
    clips: dict[str, dict[str, tuple]] = {}
    for split in ("validation", "test"):
        for r in _rows(single, split, ["id", "category", "audio_id"]):
            if r["audio_id"] not in trained_clips:
                clips.setdefault(r["category"], {}).setdefault(r["audio_id"], (single, split, r["id"]))
    image_ids = {(b, split, r["id"]): str(r["image_id"]) for b, split in _groups(offscreen)
                 for r in _rows(b, split, ["id", "image_id"])}
    pairs = []
    for ref in offscreen:
        for category in negatives.get(image_ids[ref], ()):
            if (image_ids[ref], category) in present:  # a verified negative with an instance: bad data
                raise SystemExit(f"image {image_ids[ref]}: {category} is both annotated and verified absent")
            for audio_id in sorted(clips.get(category, {}))[:clips_per_category]:
                pairs.append((ref, clips[category][audio_id]))
    return pairs


def _groups(refs: Iterable[tuple[Path, str, str]]) -> dict[tuple[Path, str], list[str]]:
    """(build, split) → its row ids, in the order first seen."""
    groups: dict[tuple[Path, str], list[str]] = {}
    for b, split, rid in refs:
        groups.setdefault((b, split), []).append(rid)
    return groups


def _foreground(model: AVSegmenter, batches: Iterable[list]) -> list[float]:
    """The predicted foreground fraction of each one-frame sample, one forward per batch."""
    predictor = AVPredictor(model)
    with predictor.evaluating():
        return [(lg[0] > 0).float().mean().item() for batch in batches for lg in predict_videos(predictor, batch)]


def _fpr(on: list[float], prefix: str = "") -> dict:
    """False positives of off-screen rows from their foreground fractions: any pixel, more than 1 %
    of the image, and the mean fraction."""
    n = max(1, len(on))
    fp = sum(x > 0 for x in on)
    return {f"{prefix}false_positives": fp, f"{prefix}false_positive_rate": round(fp / n, 4),
            f"{prefix}false_positive_rate_over_1pct": round(sum(x > 0.01 for x in on) / n, 4),
            f"{prefix}mean_foreground": round(sum(on) / n, 4)}


def negatives_fpr(model: AVSegmenter, vggish, rows: list[tuple[Path, str, str]]) -> dict:
    """False positives on the held-out off-screen rows (:func:`_fpr`)."""
    on = _foreground(model, (list(shard_samples(b, split, vggish, ids=ids))
                             for (b, split), ids in _groups(rows).items()))
    return {"negative_rows": len(on), **_fpr(on)}


def grid_fpr(model: AVSegmenter, vggish, pairs: list[tuple[tuple, tuple]], batch: int = 16) -> dict:
    """False positives on the off-screen grid (:func:`offscreen_grid`; keys ``grid_*``)."""
    refs = sorted({p for pair in pairs for p in pair})
    samples = {(b, split, s.uid): s for (b, split), ids in _groups(refs).items()
               for s in shard_samples(b, split, vggish, ids=ids)}
    combined = [dataclasses.replace(samples[img], audio=samples[aud].audio,
                                    masks=[np.zeros_like(m) for m in samples[img].masks]) for img, aud in pairs]
    on = _foreground(model, (combined[i:i + batch] for i in range(0, len(combined), batch)))
    return {"grid_rows": len(on), "grid_images": len({img for img, _ in pairs}), **_fpr(on, "grid_")}


def audio_swap(model: AVSegmenter, vggish, single: Path) -> dict:
    """Does the model listen? mIoU on the single-source test rows with each row's own clip, and with
    the clip of the next row of another category (the image and mask unchanged)."""
    own = list(shard_samples(single, "test", vggish))
    swapped = []
    for i, s in enumerate(own):
        other = next(o for o in own[i + 1:] + own[:i] if o.category != s.category)
        swapped.append(dataclasses.replace(s, audio=other.audio))
    return {"single_test_miou_own_audio": round(evaluate(model, own)["miou"], 4),
            "single_test_miou_swapped_audio": round(evaluate(model, swapped)["miou"], 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--categories", type=int, default=5)
    ap.add_argument("--images-per-category", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="seed of the demo corpus, the builds and training")
    ap.add_argument("--train-seed", type=int, help="another training seed (same corpus and builds)")
    ap.add_argument("--config", default="sama-avs-tiny", help="model config of every trained model")
    ap.add_argument("--equal-steps", action="store_true", help="as many training samples, not epochs")
    ap.add_argument("--runs", nargs="+", default=["single", "mix+neg"], choices=["single", "mix+neg"])
    ap.add_argument("--negatives", type=float, nargs="+", default=[0.2],
                    help="--negatives of the mix+neg builds (one model per fraction)")
    ap.add_argument("--sources-per-row", nargs="+", default=["2"],
                    help="--sources-per-row of the mixed builds (each with each --negatives), e.g. 2 1,2 1:1,2:2")
    ap.add_argument("--mix-keep-silent", action="store_true",
                    help="build the mixed builds with --mix-keep-silent (names end in +silent)")
    ap.add_argument("--audio-norm", choices=["none", "fit"],
                    help="every trained model's audio standardisation (avsynth train --audio-norm; "
                    "default: the config's); fit: runs are named run-CONFIG-norm-...")
    ap.add_argument("--work", type=Path, help="keep the corpus, builds and runs here (reused when present)")
    ap.add_argument("--ms3-videos", type=int, default=40,
                    help="also score on a larger demo MS3 test split of this many videos (a second demo corpus "
                    "of the same seed and size but for its MS3 count: the same images and clips, other videos); 0: not")
    args = ap.parse_args(argv)
    train_seed = args.seed if args.train_seed is None else args.train_seed
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-mixing-") as tmp:
        root = args.work or Path(tmp)
        size = DemoSize("bench-mixing", images_per_category=args.images_per_category, val_every=5, clips_train=6,
                        clips_test=2, missing_rows=1, extra_label_rows=1, v1s=(2, 1, 1), v1m=(2, 1, 10),
                        avs_images=2, max_categories=args.categories, width=(160, 240), height=(120, 180))
        if (root / "demo" / "demo.json").is_file():
            demo = DemoCorpus.at(root / "demo", json.loads((root / "demo" / "demo.json").read_text()))
        else:
            demo = write_demo(root / "demo", seed=args.seed, scale=size, workers=2)
        ms3_large = None
        if args.ms3_videos:
            ms3_large = larger_ms3_tree(root, demo, size, args.seed, args.ms3_videos)
        sources = SourcePaths(lvis_json=[demo.lvis_train_json, demo.lvis_val_json], coco_root=demo.coco_root,
                              vggsound_csv=demo.vggsound_csv, vggsound_audio=demo.vggsound_audio)
        builds = {"single": {}}
        silent = {"mix_keep_silent": True} if args.mix_keep_silent else {}
        builds.update({build_name(k, f, args.mix_keep_silent): {"sources_per_row": k, "negatives": f, **silent}
                       for k in args.sources_per_row for f in args.negatives})
        builds.update(OFFSCREEN_EVAL)
        rows = {}
        for name, extra in builds.items():
            out = root / f"build-{name}"
            if (out / "manifest.json").is_file():
                rec = read_record(out)
            else:
                rec = build(BuildOptions(out=out, categories=",".join(demo.categories), sources=sources,
                                         sizes={"train": 5000, "validation": 500, "test": 500}, workers=2,
                                         rows_per_shard=100, seed=args.seed, **extra), progress=False).record
            rows[name] = rec.split_rows("train")
            emit(figure=f"build_{name}", train_rows=rows[name],
                 composition=rec.extra.get("composition", {}).get("train"))
        trained_on = [n for n in builds if n not in OFFSCREEN_EVAL]
        # the held-out set excludes the train images of every build in the work dir (also those of
        # earlier invocations), so models scored in different invocations share one set
        kept = sorted({p.name[len("build-"):] for p in root.glob("build-*") if (p / "manifest.json").is_file()}
                      - set(OFFSCREEN_EVAL) | set(trained_on))
        offscreen = offscreen_rows([root / f"build-{n}" for n in OFFSCREEN_EVAL],
                                   [root / f"build-{n}" for n in kept])
        emit(figure="offscreen_eval_set", rows=len(offscreen), builds=list(OFFSCREEN_EVAL),
             excluded_images_of=kept)
        grid = offscreen_grid(demo, offscreen, root / "build-single", [root / f"build-{n}" for n in kept])
        emit(figure="offscreen_grid", rows=len(grid), images=len({img for img, _ in grid}),
             clips=len({aud for _, aud in grid}), clips_per_category=GRID_CLIPS)
        names = [n for n in trained_on if ("single" if n == "single" else "mix+neg") in args.runs]
        for name in names:
            t0 = time.perf_counter()
            epochs = args.epochs
            if args.equal_steps:
                epochs = max(1, round(args.epochs * rows["single"] / rows[name]))
            norm = "-norm" if args.audio_norm == "fit" else ""
            run = root / f"run-{Path(args.config).stem}{norm}-{name}-e{epochs}-s{train_seed}"
            if (run / "result.json").is_file():
                best_miou = json.loads((run / "result.json").read_text()).get("best_miou")
            else:
                best_miou = train(TrainConfig(out=run, model=args.config, data=str(root / f"build-{name}"),
                                              epochs=epochs, unfreeze=UNFREEZE, batch_size=2, lr=1e-3,
                                              num_workers=0, seed=train_seed, progress=False,
                                              audio_norm=args.audio_norm,
                                              log_every=50)).best_miou
            train_seconds = round(time.perf_counter() - t0, 1)
            best = run / "best.pt"
            config = checkpoint_config(best)  # loaded once for every figure below
            model, vggish = load_model(best, config), build_vggish_for(config)
            loaded = {"config": config, "model": model, "vggish": vggish}
            (ms3,) = zero_shot(best, demo.avsbench_root, subsets=["ms3"], split="test", **loaded)
            large = {}
            if ms3_large is not None:
                (big,) = zero_shot(best, ms3_large, subsets=["ms3"], split="test", **loaded)
                large = {"ms3_large_zero_shot_miou": round(big.miou, 4), "ms3_large_zero_shot_fscore": round(big.fscore, 4),
                         "ms3_large_videos": big.videos}
            emit(figure=f"pretrained_on_{name}", config=args.config, audio_norm=args.audio_norm or "config", train_seed=train_seed,
                 sources_per_row=builds[name].get("sources_per_row", 1), negatives=builds[name].get("negatives", 0.0),
                 mix_keep_silent=builds[name].get("mix_keep_silent", False),
                 epochs=epochs, train_samples=epochs * rows[name], ms3_zero_shot_miou=round(ms3.miou, 4),
                 ms3_zero_shot_fscore=round(ms3.fscore, 4), ms3_videos=ms3.videos, **large, own_val_miou=best_miou,
                 **negatives_fpr(model, vggish, offscreen), **grid_fpr(model, vggish, grid),
                 **audio_swap(model, vggish, root / "build-single"),
                 train_seconds=train_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
