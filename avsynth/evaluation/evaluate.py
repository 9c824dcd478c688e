"""The one evaluation loop: samples → :class:`~avsynth.modeling.predictor.AVPredictor` →
:class:`~avsynth.evaluation.metrics.AVSBenchMetric`.

A :class:`VideoSample` is one video ready for the model: uint8 frames, masks at the evaluation
resolution, which frames are scored and one 128-d audio embedding per frame. Two adapters make
them: :func:`avsbench_samples` (the videos of an AVSBench dataset; audio: frame i <- VGGish
example i of the clip, as the official preprocessing cuts it, or the object release's precomputed
``audio_log_mel`` examples when shipped; see ``avsynth.sources.avsbench.AUDIO_PREPROCESSING``) and
:func:`shard_samples` (a shard split's rows as one-frame videos at native resolution; the row's
own clip embedded whole, as the trainer's validation does). :func:`evaluate` runs the predictor
over whole videos (``batch_frames`` frames a forward) and scores their scored frames in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from avsynth.errors import AvsynthError
from avsynth.evaluation.metrics import F_GROUPS, AVSBenchMetric, frame_iou
from avsynth.media.audio import decode_audio
from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.predictor import AVPredictor, resolve_device
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.shards.reader import ShardReader, decode_image_and_mask
from avsynth.sources.avsbench import AVSBenchDataset, AVSBenchObjectDataset


class EvaluationError(AvsynthError):
    """An evaluation cannot run (bad options, data that does not fit)."""


@dataclass
class VideoSample:
    """One video ready for the model: frames, masks, which frames are scored, one embedding per
    frame. A shard row is a one-frame video."""

    uid: str
    category: str
    frames: list[np.ndarray]  # uint8 H x W x 3
    masks: list[np.ndarray]  # {0,1} H x W at the evaluation resolution
    scored: list[bool]
    audio: torch.Tensor  # [T, 128]


def _first(batch: list) -> Any:
    return batch[0]


def avsbench_samples(dataset: AVSBenchDataset | AVSBenchObjectDataset, vggish: VGGishEmbedder | None,
                     num_workers: int = 0, audio: dict[str, torch.Tensor] | None = None) -> Iterator[VideoSample]:
    """The videos of an AVSBench dataset (binary mode) as :class:`VideoSample`, in order; with
    ``audio`` (uid → [T, 128]) the embeddings are taken from it instead of computed."""
    if getattr(dataset, "mode", "binary") != "binary":
        raise EvaluationError("the binary AVSBench protocols need mode='binary' datasets")
    loader = DataLoader(dataset, batch_size=1, num_workers=num_workers, collate_fn=_first)
    for item in loader:
        frames = item["frames"].permute(0, 2, 3, 1).numpy()
        yield VideoSample(
            uid=item["uid"], category=item["category"],
            frames=[np.ascontiguousarray(f) for f in frames],
            masks=[m.numpy() for m in item["masks"]],
            scored=item["annotated"].tolist(),
            audio=(audio[item["uid"]] if audio is not None
                   else vggish.embed_examples(item["audio_log_mel"]) if "audio_log_mel" in item
                   else vggish.embed_windows(item["audio_windows"].numpy(), item["sample_rate"])),
        )


def shard_samples(source: str | Path, split: str, vggish: VGGishEmbedder,
                  limit: int | None = None, ids: Iterable[str] | None = None) -> Iterator[VideoSample]:
    """The rows of a shard split as one-frame :class:`VideoSample` (native resolution, the row's
    own clip embedded whole, as the trainer's validation does); ``ids`` keeps only those rows."""
    reader = ShardReader(source, split, ["id", "category", "image", "mask", "audio"])
    wanted = None if ids is None else set(ids)
    for n, row in enumerate(reader.iter_rows()):
        if limit is not None and n >= limit:
            return
        if wanted is not None and str(row["id"]) not in wanted:
            continue
        where = f"{source} {split} row {row['id']!r}"
        image, mask = decode_image_and_mask(row, where)
        wave, sr = decode_audio(row["audio"]["bytes"], where)
        yield VideoSample(uid=str(row["id"]), category=str(row["category"]),
                          frames=[image], masks=[mask.astype(np.uint8)],
                          scored=[True], audio=vggish.embed_clip(wave, sr)[None])


def predict_videos(predictor: AVPredictor, videos: Sequence[VideoSample],
                   output_size: tuple[int, int] | None = None) -> list[list[torch.Tensor]]:
    """CPU logits [H, W] of every frame of ``videos`` (one forward over all their frames), at each
    frame's own resolution (or ``output_size``)."""
    frames = [f for v in videos for f in v.frames]
    flat = [lg.cpu() for lg in predictor.predict(frames, torch.cat([v.audio for v in videos]), output_size)]
    out, start = [], 0
    for v in videos:
        out.append(flat[start : start + len(v.frames)])
        start += len(v.frames)
    return out


def _mask_at(mask: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """A {0,1} mask, PIL-NEAREST-resized to ``size`` (H, W) when given (as SAMA-AVS's loader)."""
    m = np.asarray(mask, dtype=np.uint8)
    if size is None or m.shape == tuple(size):
        return m
    return np.asarray(Image.fromarray(m).resize((size[1], size[0]), Image.NEAREST))


def evaluate(model: AVSegmenter, samples: Iterable[VideoSample], *, f_group: str = "batch4",
             batch_frames: int = 16, device: str | torch.device | None = None,
             progress: Callable[[int], None] | None = None, threshold: float = 0.5,
             f_on_logits: bool = False, at_model_input: bool = False) -> dict:
    """Score ``model`` on ``samples`` with the official AVSBench rules (or a paper's variant:
    :mod:`avsynth.evaluation.variants`: ``threshold``, ``f_on_logits``, ``at_model_input`` = logits
    at the model's S x S input size against the masks nearest-resized to it).

    Videos are run ``batch_frames`` frames at a time (whole videos per forward) and fed to
    :class:`AVSBenchMetric` in order, only their scored frames. Returns the metric's figures plus
    ``per_video`` (uid, category, frames, miou), ``seconds`` and ``frames_per_s``.
    """
    if f_group not in F_GROUPS:
        raise EvaluationError(f"--f-group must be one of {', '.join(F_GROUPS)}, got {f_group!r}")
    predictor = AVPredictor(model, device=resolve_device(device))
    metric = AVSBenchMetric(f_group=f_group, threshold=threshold, f_on_logits=f_on_logits)
    size = (model.image_size, model.image_size) if at_model_input else None
    per_video: list[dict] = []
    pending: list[VideoSample] = []
    t0 = time.perf_counter()

    def flush() -> None:
        for v, logits in zip(pending, predict_videos(predictor, pending, size)):
            idx = [i for i, s in enumerate(v.scored) if s]
            if not idx:
                continue
            lg = torch.stack([logits[i] for i in idx])
            gt = torch.from_numpy(np.stack([_mask_at(v.masks[i], size) for i in idx]))
            metric.update(lg, gt, [v.uid] * len(idx), [v.category] * len(idx))
            per_video.append({"uid": v.uid, "category": v.category, "frames": len(idx),
                              "miou": float(frame_iou(lg, gt, threshold).mean())})
            if progress is not None:
                progress(len(idx))
        pending.clear()

    with predictor.evaluating():
        for sample in samples:
            if pending and sum(len(p.frames) for p in pending) + len(sample.frames) > batch_frames:
                flush()
            pending.append(sample)
        if pending:
            flush()
    seconds = time.perf_counter() - t0
    out = metric.compute()
    out["per_video"] = per_video
    out["seconds"] = seconds
    out["frames_per_s"] = out["frames"] / seconds if seconds > 0 else 0.0
    return out


__all__ = ["EvaluationError", "VideoSample", "avsbench_samples", "evaluate", "predict_videos",
           "shard_samples"]
