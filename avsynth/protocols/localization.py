"""``avsynth bench --localization vggss|flickr``: zero-shot sound-source localisation of any avsynth
model on VGG-SS or Flickr-SoundNet, scored as Chen et al. CVPR'21 score it
(:mod:`avsynth.evaluation.localization`), beside two audio-blind controls.

* Samples: :func:`avsynth.sources.vggss.open_vggss` / :func:`avsynth.sources.flickr_soundnet.open_flickr`
  (clips missing locally are counted); without ``root`` the demo corpus's localisation set
  (:func:`avsynth.demo.localization.ensure_localization_demo`), and every report says so.
* Model: the checkpoint's model through :class:`~avsynth.modeling.predictor.AVPredictor` (its own
  preprocessing; VGGish on the 10 s clip, tiled when shorter as the reference's loader does,
  ``datasets/dataloader.py:94-97``); the heatmap is ``sigmoid(logits)`` at the frame's resolution,
  which the metric resizes to 224 x 224.
* Controls (binary 224 x 224 predictions, not thresholded again): ``whole image`` (every pixel) and
  ``centre box`` (the centred square of half the image area, side ``round(224 / sqrt 2)`` = 158 px:
  the same coverage as a median-thresholded heatmap).
* Report (:mod:`avsynth.protocols.localization_report`): ``localization.json``, ``localization.md``,
  ``localization_curve.png`` and ``overlays/localization-{best,worst}-*.png``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from avsynth.evaluation.localization import GT_SIZE, LocalizationMetric, check_threshold, gt_map
from avsynth.media.audio import TARGET_SR, load_window, probe
from avsynth.media.video import middle_frame
from avsynth.modeling.predictor import AVPredictor, resolve_device
from avsynth.modeling.registry import build_vggish_for
from avsynth.protocols.bench import BenchConfig, fingerprint, resolve_config
from avsynth.protocols.common import FineTuneOptions, load_model
from avsynth.protocols.results import BenchError
from avsynth.sources.flickr_soundnet import open_flickr
from avsynth.sources.records import LocalizationItem, LocalizationSet
from avsynth.sources.vggss import open_vggss

LOCALIZATION_DATASETS = ("vggss", "flickr")
#: The length of audio the reference feeds per clip (``datasets/dataloader.py:94-97``).
CLIP_SECONDS = 10.0
CONTROLS = ("whole image", "centre box")


@dataclass
class LocalizationConfig:
    """One ``avsynth bench --localization`` run. ``root`` None: the demo corpus's set (``demo_dir`` or
    the cached demo corpus). ``threshold``: "median" (the reference) or a number (e.g. 0.5)."""

    checkpoint: Path
    out: Path
    dataset: str = "vggss"
    root: Path | None = None
    annotations: Path | None = None
    test_list: Path | None = None
    demo_dir: Path | None = None
    model: str | None = None
    config: str | None = None
    threshold: str | float = "median"
    device: str | None = None
    batch_size: int = 8
    examples: int = 3  # best and worst samples drawn as overlays (0: none)
    sam_checkpoint: Path | None = None
    vggish_checkpoint: Path | None = None

    def __post_init__(self) -> None:
        if self.dataset not in LOCALIZATION_DATASETS:
            raise BenchError(f"--localization must be one of {', '.join(LOCALIZATION_DATASETS)}, got {self.dataset!r}")
        try:
            self.threshold = check_threshold(self.threshold)
        except ValueError as err:
            raise BenchError(f"--localization-threshold: {err}") from None
        if self.threshold == "given":
            raise BenchError("--localization-threshold takes 'median' or a number in [0, 1]")


@dataclass
class LocalizationRun:
    """What a run measured: the metric summaries (model and controls), per-sample values, counts."""

    dataset: str
    root: str
    annotations: str
    demo: bool
    checkpoint: str
    checkpoint_sha256: str
    model: str
    threshold: str | float
    listed: int
    evaluated: int
    skipped: dict
    corrupt_entries: list[str]
    corrupt_coordinates: int
    results: dict[str, dict]  # "model" and each control -> summarize(...)
    per_sample: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tool_version: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def whole_image() -> np.ndarray:
    """The whole-image control: every pixel predicted."""
    return np.ones((GT_SIZE, GT_SIZE), dtype=np.float64)


def centre_box() -> np.ndarray:
    """The centre-box control: the centred square of half the image area (158 x 158 of 224 x 224)."""
    side = round(GT_SIZE / math.sqrt(2))
    lo = (GT_SIZE - side) // 2
    pred = np.zeros((GT_SIZE, GT_SIZE), dtype=np.float64)
    pred[lo:lo + side, lo:lo + side] = 1
    return pred


def load_frame(item: LocalizationItem) -> np.ndarray:
    """The sample's frame (uint8 H x W x 3): the frame file, else the video's middle frame."""
    if item.frame is not None:
        from avsynth.errors import SourceError

        try:
            with Image.open(item.frame) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as err:
            raise SourceError(item.frame, f"not a readable image ({err})") from None
    return middle_frame(item.video)


def load_clip(path: Path, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """``seconds`` of mono 16 kHz audio from the start of the clip; a shorter clip is repeated
    (``np.tile``) to that length, as the reference's loader does."""
    sr, frames, _ = probe(path)
    have = frames / sr
    if have >= seconds:
        return load_window(path, 0.0, seconds)
    wave = load_window(path, 0.0, have)
    n = round(seconds * TARGET_SR)
    return np.tile(wave, n // max(1, wave.size) + 1)[:n]


def open_set(cfg: LocalizationConfig) -> tuple[LocalizationSet, bool]:
    """The test set ``cfg`` names, and whether it is the demo set."""
    root, demo = cfg.root, False
    if root is None:
        from avsynth.demo import DemoCorpus, ensure_demo
        from avsynth.demo.localization import ensure_localization_demo

        corpus = DemoCorpus.load(cfg.demo_dir) if cfg.demo_dir is not None else ensure_demo()
        root, demo = ensure_localization_demo(corpus) / cfg.dataset, True
    reader = open_vggss if cfg.dataset == "vggss" else open_flickr
    lset = reader(root, cfg.annotations, cfg.test_list)
    if not lset.items:
        raise BenchError(f"{root}: none of the {lset.listed} listed {cfg.dataset} samples has a frame (or video) "
                         f"and audio locally ({dict(lset.skips.counts)})")
    return lset, demo


def heatmaps(predictor: AVPredictor, items: list[LocalizationItem], batch_size: int):
    """Yield (item, frame, heatmap) in order: heatmap = sigmoid(logits) at the frame's resolution."""
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        frames = [load_frame(it) for it in chunk]
        waves = [load_clip(it.audio) for it in chunk]
        logits = predictor.predict_waveforms(frames, waves, TARGET_SR, batch_size=batch_size)
        for it, fr, lg in zip(chunk, frames, logits):
            yield it, fr, torch.sigmoid(lg.float())


def run_localization(cfg: LocalizationConfig, log: Callable[[str], None] = lambda s: None):
    """Evaluate the checkpoint on the set ``cfg`` names and write the report into ``cfg.out``.

    Returns ``(LocalizationRun, {name: path written})``."""
    from avsynth import __version__
    from avsynth.protocols.localization_report import Example, write_localization_report

    config = resolve_config(BenchConfig(
        checkpoint=cfg.checkpoint, out=cfg.out, model=cfg.model, config=cfg.config,
        fine_tune=FineTuneOptions(sam_checkpoint=cfg.sam_checkpoint, vggish_checkpoint=cfg.vggish_checkpoint)))
    lset, demo = open_set(cfg)
    notes = []
    if demo:
        notes.append(f"DEMO {cfg.dataset} set {lset.root}: generated data, not the real benchmark")
        log(f"[bold yellow]No --localization-root given: running on the DEMO {cfg.dataset} set {lset.root} "
            "(procedural objects and sounds, NOT the real benchmark).[/]")
    if lset.skips.total:
        log(f"{lset.skips.total} of {lset.listed} listed samples not evaluated: {dict(lset.skips.counts)}")
    if lset.corrupt_entries:
        evaluated = {it.id for it in lset.items}
        log(f"{len(lset.corrupt_entries)} listed entries carry a corrupt (negative) coordinate "
            f"({sum(i in evaluated for i in lset.corrupt_entries)} of them evaluated); clamped with max(x, 0) "
            "as the reference does")
    model = load_model(cfg.checkpoint, config)
    predictor = AVPredictor(model, device=resolve_device(cfg.device), vggish=build_vggish_for(config))
    metrics = {"model": LocalizationMetric(cfg.threshold)}
    metrics.update({c: LocalizationMetric("given") for c in CONTROLS})
    controls = {"whole image": whole_image(), "centre box": centre_box()}
    for it, _frame, heat in heatmaps(predictor, lset.items, cfg.batch_size):
        gt = gt_map(cfg.dataset, it.boxes)
        metrics["model"].update([heat], [gt])
        for name, pred in controls.items():
            metrics[name].update([pred], [gt])
    values = {name: m.per_sample().tolist() for name, m in metrics.items()}
    per_sample = [{"id": it.id, "category": it.category, "ciou": values["model"][k],
                   **{name: values[name][k] for name in CONTROLS}} for k, it in enumerate(lset.items)]
    results = {name: m.compute() for name, m in metrics.items()}
    for name, r in results.items():
        log(f"{cfg.dataset} {name}: cIoU@0.5 {100 * r['cIoU@0.5']:.2f}%  AUC {r['AUC']:.3f} (0-1)  "
            f"mean cIoU {100 * r['mean_cIoU']:.2f}% ({r['samples']} samples)")
    run = LocalizationRun(
        dataset=cfg.dataset, root=str(lset.root), annotations=str(lset.annotations), demo=demo,
        checkpoint=str(cfg.checkpoint), checkpoint_sha256=fingerprint(cfg.checkpoint), model=config["name"],
        threshold=cfg.threshold, listed=lset.listed, evaluated=len(lset.items), skipped=lset.skips.as_dict(),
        corrupt_entries=list(lset.corrupt_entries), corrupt_coordinates=lset.corrupt_coordinates,
        results=results, per_sample=per_sample, notes=notes, tool_version=__version__,
    )
    examples = []
    if cfg.examples > 0:
        by_id = {it.id: it for it in lset.items}
        ranked = sorted(per_sample, key=lambda s: (np.nan_to_num(s["ciou"], nan=-1.0), s["id"]))
        chosen = [("best", s) for s in ranked[::-1][:cfg.examples]]
        chosen += [("worst", s) for s in ranked[:cfg.examples] if all(s is not c for _, c in chosen)]
        items = [by_id[s["id"]] for _, s in chosen]
        for (which, s), (it, frame, heat) in zip(chosen, heatmaps(predictor, items, cfg.batch_size)):
            examples.append(Example(which=which, item=it, frame=frame, heatmap=heat.numpy(), ciou=s["ciou"],
                                    threshold=cfg.threshold))
    return run, write_localization_report(cfg.out, run, examples)


__all__ = ["CLIP_SECONDS", "CONTROLS", "LOCALIZATION_DATASETS", "LocalizationConfig", "LocalizationRun",
           "centre_box", "load_clip", "load_frame", "open_set", "run_localization", "whole_image"]
