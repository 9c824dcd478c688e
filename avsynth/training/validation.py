"""Validation during training: per-frame scores on each rank, gathered, then the AVSBench figures.

Each rank scores its own share of the validation frames: the model's low-res logits are mapped
back to the ground truth's resolution by the model's own ``postprocess`` (as at inference), then
:func:`avsynth.evaluation.metrics.frame_iou` and :func:`~avsynth.evaluation.metrics.f_curves` give
the frame's IoU and F-beta curve. The :class:`FrameScore` records of all ranks are gathered (so the
result covers the WHOLE validation set whatever the number of processes), de-duplicated by frame
index, put in index order and summarised with the grouping rules of
:class:`avsynth.evaluation.metrics.AVSBenchMetric` (``f_group`` "batch4": consecutive groups of 4
videos; "video": one group per video). A shard row is its own video.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from avsynth.evaluation.metrics import F_GROUPS, f_curves, frame_iou, group_fscore


@dataclass
class FrameScore:
    """One validation frame: its index in the split, video, category, IoU and F curve."""

    index: int
    group: str
    category: str
    iou: float
    curve: np.ndarray  # float64 [T]; meaningful only when ``valid``
    valid: bool  # non-empty ground truth (frames with empty GT are left out of the F-score)


def score_frames(logits: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], batch: dict) -> list[FrameScore]:
    """FrameScores of one batch: ``logits[i]`` [H, W] at the resolution of ``masks[i]``."""
    out = []
    for i, (lg, gt) in enumerate(zip(logits, masks)):
        lg = lg.float()[None]
        g = gt.to(lg.device)[None]
        iou = float(frame_iou(lg, g)[0])
        curves, valid = f_curves(lg, g)
        out.append(FrameScore(int(batch["index"][i]), str(batch["group"][i]), str(batch["category"][i]),
                              iou, curves[0].cpu().numpy(), bool(valid[0])))
    return out


def merge(parts: Iterable[FrameScore]) -> list[FrameScore]:
    """Frames of all ranks, de-duplicated by index, in index order."""
    seen: dict[int, FrameScore] = {}
    for f in parts:
        seen.setdefault(f.index, f)
    return [seen[k] for k in sorted(seen)]


def _groups(videos: list[str], f_group: str, per_group: int) -> list[list[str]]:
    size = per_group if f_group == "batch4" else 1
    return [videos[i : i + size] for i in range(0, len(videos), size)]


def _score(frames: list[FrameScore], f_group: str, per_group: int) -> dict:
    by_video: dict[str, list[FrameScore]] = {}
    for f in frames:
        by_video.setdefault(f.group, []).append(f)
    g_iou, g_f = [], []
    for group in _groups(list(by_video), f_group, per_group):
        fs = [f for v in group for f in by_video[v]]
        g_iou.append(float(np.mean([f.iou for f in fs])))
        curves = [f.curve for f in fs if f.valid]
        g_f.append(group_fscore(torch.from_numpy(np.stack(curves))) if curves else 0.0)
    return {
        "miou": float(np.mean(g_iou)) if g_iou else 0.0,
        "fscore": float(np.mean(g_f)) if g_f else 0.0,
        "frames": len(frames),
        "videos": len(by_video),
        "groups": len(g_iou),
    }


def summarize(frames: list[FrameScore], f_group: str = "batch4", videos_per_group: int = 4,
              per_category: bool = False) -> dict:
    """The AVSBench mIoU / F-score of ``frames`` (already merged and in order)."""
    if f_group not in F_GROUPS:
        raise ValueError(f"f_group must be one of {F_GROUPS}, got {f_group!r}")
    out = {"f_group": f_group, **_score(frames, f_group, videos_per_group)}
    if per_category:
        cats: dict[str, list[FrameScore]] = {}
        for f in frames:
            cats.setdefault(f.category, []).append(f)
        out["per_category"] = {c: _score(v, f_group, videos_per_group) for c, v in sorted(cats.items())}
    return out


@torch.no_grad()
def predict_frames(model, batch: dict, device: torch.device,
                   audio_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   autocast=None) -> list[torch.Tensor]:
    """Logits [H, W] per frame of a validation batch, at its ground truth's resolution."""
    images = batch["image"].to(device)
    audio = batch["audio"].to(device)
    if audio_fn is not None:
        audio = audio_fn(audio)
    if autocast is not None:
        with autocast():
            out = model(images, audio)
    else:
        out = model(images, audio)
    logits = (out.logits if hasattr(out, "logits") else out).float()
    return [
        model.postprocess(logits[i : i + 1], tuple(batch["input_size"][i]), tuple(batch["original_size"][i]))[0, 0]
        for i in range(logits.shape[0])
    ]


@torch.no_grad()
def evaluate_dataset(model, dataset, f_group: str = "batch4", batch_size: int = 8,
                     device: torch.device | str = "cpu", num_workers: int = 0,
                     audio_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict:
    """Single-process validation of ``model`` on a sample dataset (``ShardFrames`` /
    ``AVSBenchFrames`` built with ``keep_mask=True``): the figures the trainer logs."""
    from torch.utils.data import DataLoader

    from avsynth.training.data import collate

    was_training = model.training
    model.eval()
    frames: list[FrameScore] = []
    try:
        for batch in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate):
            logits = predict_frames(model, batch, torch.device(device), audio_fn)
            frames.extend(score_frames([lg.cpu() for lg in logits], batch["mask"], batch))
    finally:
        model.train(was_training)
    return summarize(merge(frames), f_group, per_category=True)
