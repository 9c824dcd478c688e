"""Controls beside every evaluation: how much of a score comes from listening.

* ``audio_zeroed``: the same model, every audio embedding replaced by zeros;
* ``audio_shuffled``: the same model, each video given another video's embeddings (a seeded
  derangement within the evaluated split: the videos in a seeded order, each taking the next
  one's audio; a video with fewer frames lends its embeddings cyclically);
* ``predict_nothing``: an empty mask on every frame (no model);
* ``predict_everything``: every pixel foreground (no model).

All four are scored exactly as the result they accompany (same variant, grouping, frames).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np
import torch

from avsynth.evaluation.evaluate import VideoSample, _mask_at, evaluate
from avsynth.evaluation.metrics import AVSBenchMetric
from avsynth.modeling.base import AVSegmenter

CONTROLS = ("audio_zeroed", "audio_shuffled", "predict_nothing", "predict_everything")
#: Logit of the constant predictions (sigmoid 1 - 2e-9: above every threshold but the last).
CONSTANT_LOGIT = 20.0


def shuffled_order(uids: Sequence[str], seed: int) -> dict[str, str]:
    """uid → the uid whose audio it gets: the uids sorted by ``sha256(seed:uid)``, each taking the
    next one's (the last the first's); with one video, itself."""
    order = sorted(uids, key=lambda u: hashlib.sha256(f"{seed}:{u}".encode()).hexdigest())
    return {u: order[(i + 1) % len(order)] for i, u in enumerate(order)}


def _lend(audio: torch.Tensor, frames: int) -> torch.Tensor:
    return audio[torch.arange(frames) % audio.shape[0]]


def constant_scores(samples: Iterable[VideoSample], value: float, *, f_group: str, threshold: float,
                    f_on_logits: bool, size: tuple[int, int] | None) -> dict:
    """The metric of a constant logit ``value`` on every scored frame (no model)."""
    metric = AVSBenchMetric(f_group=f_group, threshold=threshold, f_on_logits=f_on_logits)
    for v in samples:
        idx = [i for i, s in enumerate(v.scored) if s]
        if not idx:
            continue
        gt = torch.from_numpy(np.stack([_mask_at(v.masks[i], size) for i in idx]))
        metric.update(torch.full(gt.shape, value), gt, [v.uid] * len(idx), [v.category] * len(idx))
    out = metric.compute()
    return {"miou": out["miou"], "fscore": out["fscore"], "frames": out["frames"]}


def run_controls(model: AVSegmenter, samples: Callable[[], Iterable[VideoSample]],
                 audio: dict[str, torch.Tensor], *, seed: int = 0, f_group: str = "batch4",
                 batch_frames: int = 16, device=None, threshold: float = 0.5, f_on_logits: bool = False,
                 at_model_input: bool = False) -> dict:
    """The four controls. ``samples()`` yields the evaluated videos afresh at each call (their
    ``audio`` is replaced); ``audio``: every video's embeddings [T, 128] as evaluated, by uid."""
    kw = dict(f_group=f_group, batch_frames=batch_frames, device=device, threshold=threshold,
              f_on_logits=f_on_logits, at_model_input=at_model_input)
    lend = shuffled_order(list(audio), seed)
    out = {}
    zero = evaluate(model, (replace(v, audio=torch.zeros_like(audio[v.uid])) for v in samples()), **kw)
    out["audio_zeroed"] = {"miou": zero["miou"], "fscore": zero["fscore"], "frames": zero["frames"]}
    shuf = evaluate(model, (replace(v, audio=_lend(audio[lend[v.uid]], len(v.frames))) for v in samples()), **kw)
    out["audio_shuffled"] = {"miou": shuf["miou"], "fscore": shuf["fscore"], "frames": shuf["frames"],
                             "seed": seed}
    size = (model.image_size, model.image_size) if at_model_input else None
    ckw = dict(f_group=f_group, threshold=threshold, f_on_logits=f_on_logits, size=size)
    out["predict_nothing"] = constant_scores(samples(), -CONSTANT_LOGIT, **ckw)
    out["predict_everything"] = constant_scores(samples(), CONSTANT_LOGIT, **ckw)
    return out


__all__ = ["CONSTANT_LOGIT", "CONTROLS", "constant_scores", "run_controls", "shuffled_order"]
