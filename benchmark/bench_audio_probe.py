"""Can a model config's audio input tell the demo categories apart? Probes on its audio tokens.

A SAMA-AVS-style model sees a sound only as the 128-d vector its (frozen) VGGish gives; if those
vectors do not separate the categories, no model built on them can know which sound is playing, so
none can know that a sound's source is off screen. This script measures it on the demo corpus
(the same 5-category corpus as ``bench_mixing.py``, seed 0), one JSON line per figure:

* **single sources**: every 3 s window (hop 0.5 s) of the VGGSound-format clips, embedded as the
  trainer embeds a shard row's clip (``embed_clip``: mean over the window's 0.96 s examples).
  Nearest-centroid and logistic-regression (linear probe) accuracy, trained on the train-split
  clips, scored on the *test-split* clips (other recordings); and the geometry that a small
  adapter has to work with: the mean embedding's norm against the spread between category
  centroids and within a category (``between_over_norm``, ``within_over_between``).
* **two-source mixes** (the build's RMS recipe, gains in [-6, 0] dB): which pair of categories is
  in the mix (top-2 of a one-vs-rest linear probe), 3 s windows and single 0.96 s examples.
* **MS3 frames**: the per-frame 0.96 s audio of the demo AVSBench MS3 videos (the zero-shot
  input; frame i = VGGish example i): the pair read by the probe trained on the mixes, and by the
  nearest pair centroid of the raw mix tokens (no scaling: a shift between the training tokens
  and the zero-shot tokens shows there).
* the same figures for the log-mel front end alone (mean and std over time per band, 128-d): what
  the audio holds before any network.

Usage: ``python benchmark/bench_audio_probe.py [--config sama-avs-tiny] [--demo DIR]``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from avsynth.demo import DemoSize, write_demo
from avsynth.demo.corpus import DemoCorpus
from avsynth.media.mix import mix
from avsynth.modeling.registry import build_vggish_for, load_config
from avsynth.modeling.vggish import LogMelFrontEnd, MIN_SAMPLES
from avsynth.sources.avsbench import audio_windows, load_audio

SR = 16000
WINDOW_S, HOP_S = 3.0, 0.5


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def bench_size(categories: int = 5, images_per_category: int = 60) -> DemoSize:
    """The demo scale of ``bench_mixing.py`` (its corpus, so both scripts measure the same data)."""
    return DemoSize("bench-mixing", images_per_category=images_per_category, val_every=5, clips_train=6,
                    clips_test=2, missing_rows=1, extra_label_rows=1, v1s=(2, 1, 1), v1m=(2, 1, 10),
                    avs_images=2, max_categories=categories, width=(160, 240), height=(120, 180))


def clips_by_split(demo: DemoCorpus) -> dict[str, list[tuple[int, np.ndarray]]]:
    """(category index, 16 kHz mono wave) of every VGGSound clip of a manifest label, per split."""
    label_cat = {lab: i for i, c in enumerate(demo.info["categories"]) for lab in c["vggsound"]}
    out: dict[str, list] = {"train": [], "test": []}
    with open(demo.vggsound_csv, newline="") as f:
        for ytid, start, label, split in csv.reader(f):
            path = demo.vggsound_audio / f"{ytid}_{int(start):06d}.wav"
            if label in label_cat and path.is_file():
                wave, sr = sf.read(path, dtype="float32")
                assert sr == SR
                out[split].append((label_cat[label], wave))
    return out


def windows(wave: np.ndarray, seconds: float) -> list[np.ndarray]:
    n, hop = round(seconds * SR), round(HOP_S * SR)
    return [wave[s:s + n] for s in range(0, len(wave) - n + 1, hop)]


class Features:
    """Audio → vector: the config's VGGish (``embed_clip``) or the log-mel statistics."""

    def __init__(self, config: dict):
        self.vggish = build_vggish_for(config)
        self.front = LogMelFrontEnd()

    def vggish_vec(self, wave: np.ndarray) -> np.ndarray:
        return self.vggish.embed_clip(wave, SR).numpy()

    def logmel_vec(self, wave: np.ndarray) -> np.ndarray:
        w = wave if len(wave) >= MIN_SAMPLES else np.pad(wave, (0, MIN_SAMPLES - len(wave)))
        mel = self.front.log_mel(torch.from_numpy(np.asarray(w, dtype=np.float32))[None])[0]
        return torch.cat([mel.mean(0), mel.std(0)]).numpy()

    def both(self, waves: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {"vggish": np.stack([self.vggish_vec(w) for w in waves]),
                "logmel": np.stack([self.logmel_vec(w) for w in waves])}


def nearest_centroid(xtr, ytr, xte, yte) -> float:
    cats = np.unique(ytr)
    cent = np.stack([xtr[ytr == c].mean(0) for c in cats])
    pred = cats[np.argmin(((xte[:, None, :] - cent[None]) ** 2).sum(-1), axis=1)]
    return float((pred == yte).mean())


def linear_probe(xtr, ytr, xte, yte) -> float:
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(sc.transform(xtr), ytr)
    return float((clf.predict(sc.transform(xte)) == yte).mean())


def geometry(x: np.ndarray, y: np.ndarray) -> dict:
    """Mean norm, spread of the category centroids, spread within categories (RMS distances)."""
    cats = np.unique(y)
    cent = np.stack([x[y == c].mean(0) for c in cats])
    between = float(np.sqrt(((cent - cent.mean(0)) ** 2).sum(1).mean()))
    within = float(np.sqrt(np.mean([((x[y == c] - cent[i]) ** 2).sum(1).mean() for i, c in enumerate(cats)])))
    norm = float(np.linalg.norm(x.mean(0)))
    return {"mean_norm": round(norm, 4), "between_over_norm": round(between / max(norm, 1e-12), 4),
            "within_over_between": round(within / max(between, 1e-12), 4)}


def pair_probe(xtr, ptr, xte, pte, n_cats: int) -> float:
    """Share of test mixes whose two categories are the top-2 of a one-vs-rest linear probe."""
    ytr = np.zeros((len(ptr), n_cats), dtype=int)
    for i, p in enumerate(ptr):
        ytr[i, list(p)] = 1
    sc = StandardScaler().fit(xtr)
    scores = np.stack([LogisticRegression(max_iter=2000).fit(sc.transform(xtr), ytr[:, c])
                       .decision_function(sc.transform(xte)) for c in range(n_cats)], axis=1)
    top2 = np.argsort(-scores, axis=1)[:, :2]
    return float(np.mean([set(t) == set(p) for t, p in zip(top2.tolist(), pte)]))


def pair_centroid(xtr, ptr, xte, pte) -> float:
    """Share of test mixes nearest (Euclidean, raw tokens) to the centroid of their own pair: no
    scaling, no fitting, so a shift between the two token distributions shows here."""
    keys = sorted(set(ptr))
    cent = np.stack([xtr[[p == k for p in ptr]].mean(0) for k in keys])
    pred = np.argmin(((xte[:, None, :] - cent[None]) ** 2).sum(-1), axis=1)
    return float(np.mean([keys[i] == tuple(p) for i, p in zip(pred, pte)]))


def make_mixes(clips: list[tuple[int, np.ndarray]], seconds: float, per_pair: int, rng) -> tuple[list, list]:
    """``per_pair`` mixes for every pair of categories, windows and gains drawn from ``rng``."""
    by_cat: dict[int, list[np.ndarray]] = {}
    for c, w in clips:
        by_cat.setdefault(c, []).extend(windows(w, seconds))
    waves, pairs = [], []
    for a, b in itertools.combinations(sorted(by_cat), 2):
        for _ in range(per_pair):
            wa = by_cat[a][rng.integers(len(by_cat[a]))]
            wb = by_cat[b][rng.integers(len(by_cat[b]))]
            waves.append(mix([wa, wb], [round(float(rng.uniform(-6, 0)), 1), round(float(rng.uniform(-6, 0)), 1)]))
            pairs.append((a, b))
    return waves, pairs


def ms3_frames(demo: DemoCorpus) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Per-frame 0.96 s audio of every demo MS3 (v1m) video, with its two categories."""
    obj_cat = {c.get("avsbench_object", c["name"]): i for i, c in enumerate(demo.info["categories"])}
    waves, pairs = [], []
    with open(demo.avsbench_root / "metadata.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["label"] != "v1m":
                continue
            cats = tuple(sorted(obj_cat[o] for o in row["a_obj"].split("_")))
            wave = load_audio(demo.avsbench_root / "v1m" / row["uid"] / "audio.wav")
            for w in audio_windows(wave, 5):
                waves.append(w)
                pairs.append(cats)
    return waves, pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="sama-avs-tiny", help="model config whose VGGish is probed")
    ap.add_argument("--demo", type=Path, help="an existing bench-mixing demo corpus (else one is written)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    config = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="bench-audio-probe-") as tmp:
        if args.demo is not None:
            info = json.loads((args.demo / "demo.json").read_text())
            demo = DemoCorpus.at(args.demo, info)
        else:
            demo = write_demo(Path(tmp) / "demo", seed=args.seed, scale=bench_size(), workers=2)
        n_cats = len(demo.info["categories"])
        feats = Features(config)
        clips = clips_by_split(demo)
        data = {}
        for split, items in clips.items():
            ws = [(c, w) for c, wave in items for w in windows(wave, WINDOW_S)]
            data[split] = (feats.both([w for _, w in ws]), np.array([c for c, _ in ws]))
        (ftr, ytr), (fte, yte) = data["train"], data["test"]
        for kind in ("vggish", "logmel"):
            emit(figure="single_source", config=args.config, features=kind, categories=n_cats,
                 train_windows=len(ytr), test_windows=len(yte), chance=round(1 / n_cats, 3),
                 nearest_centroid_acc=round(nearest_centroid(ftr[kind], ytr, fte[kind], yte), 3),
                 linear_probe_acc=round(linear_probe(ftr[kind], ytr, fte[kind], yte), 3),
                 **geometry(np.concatenate([ftr[kind], fte[kind]]), np.concatenate([ytr, yte])))
        rng = np.random.default_rng(args.seed)
        n_pairs = n_cats * (n_cats - 1) // 2
        ms3_waves, ms3_pairs = ms3_frames(demo)
        ms3 = feats.both(ms3_waves)
        for seconds in (WINDOW_S, 0.975):
            wtr, ptr = make_mixes(clips["train"], seconds, 40, rng)
            wte, pte = make_mixes(clips["test"], seconds, 20, rng)
            mtr, mte = feats.both(wtr), feats.both(wte)
            for kind in ("vggish", "logmel"):
                # the probe trained on these mixes also reads the MS3 frames (0.96 s, frame i =
                # example i): with 3 s mixes (the token a row's clip gives) that is the gap between
                # the training audio and the zero-shot audio
                emit(figure="two_source_mix_pair", config=args.config, features=kind, window_s=seconds,
                     chance=round(1 / n_pairs, 3), test_mixes=len(pte),
                     pair_acc=round(pair_probe(mtr[kind], ptr, mte[kind], pte, n_cats), 3),
                     ms3_frames=len(ms3_pairs),
                     ms3_pair_acc=round(pair_probe(mtr[kind], ptr, ms3[kind], ms3_pairs, n_cats), 3),
                     pair_centroid_acc=round(pair_centroid(mtr[kind], ptr, mte[kind], pte), 3),
                     ms3_pair_centroid_acc=round(pair_centroid(mtr[kind], ptr, ms3[kind], ms3_pairs), 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
