"""The one inference path: frames + audio embeddings → mask logits at the ground truth's resolution.

:class:`AVPredictor` is what trainer validation, the benchmark evaluation
(:mod:`avsynth.evaluation.evaluate`) and the tests call, so their figures cannot drift apart:

* :meth:`AVPredictor.predict_batch` (low level): an already preprocessed ``[B, 3, S, S]`` batch,
  ``[B, 128]`` audio embeddings and each frame's input / original size → one ``[H, W]`` float32
  logit map per frame (the model's forward, optionally under ``autocast``, then the model's own
  ``postprocess``);
* :meth:`AVPredictor.predict` (high level): uint8 ``H x W x 3`` frames (any sizes) and their
  embeddings → the model's ``preprocess`` on the predictor's device, then :meth:`predict_batch`;
* :meth:`AVPredictor.predict_waveforms`: the same from raw waveforms, embedded by the frozen
  VGGish (:meth:`avsynth.modeling.vggish.VGGishEmbedder.embed_clip`), ``batch_size`` at a time.

Threshold the logits at 0 (probability 0.5) for a mask. :meth:`AVPredictor.evaluating` puts the
model in eval mode (and on the device) for a block and restores its training flag afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.transforms import ImageLike
from avsynth.modeling.vggish import VGGishEmbedder

Size = Sequence[int]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` or the first GPU when there is one, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class AVPredictor:
    """Mask logits of an :class:`~avsynth.modeling.base.AVSegmenter` (see the module docstring).

    ``device``: where frames and audio are sent (default: the model's device). ``autocast``: a
    context-manager factory wrapped around the forward (e.g. ``Accelerator.autocast``); logits are
    cast to float32 before post-processing. ``vggish``: needed by :meth:`predict_waveforms` only.
    """

    def __init__(self, model: AVSegmenter, device: str | torch.device | None = None,
                 autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
                 vggish: VGGishEmbedder | None = None):
        self.model = model
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.autocast = autocast
        self.vggish = vggish

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[AVPredictor]:
        """Eval mode (on ``device``) for the block; the model's training flag is restored after."""
        was_training = self.model.training
        self.model.eval()
        self.model.to(self.device)
        try:
            yield self
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def predict_batch(self, images: torch.Tensor, audio: torch.Tensor, input_sizes: Sequence[Size],
                      original_sizes: Sequence[Size]) -> list[torch.Tensor]:
        """Preprocessed images [B, 3, S, S] + embeddings [B, 128] → B logit maps [H_i, W_i] (float32,
        on ``device``) at each frame's ``original_sizes[i]``."""
        images, audio = images.to(self.device), audio.to(self.device)
        with self.autocast() if self.autocast is not None else contextlib.nullcontext():
            out = self.model(images, audio)
        logits = (out.logits if hasattr(out, "logits") else out).float()
        return [
            self.model.postprocess(logits[i : i + 1], tuple(input_sizes[i]), tuple(original_sizes[i]))[0, 0]
            for i in range(logits.shape[0])
        ]

    @torch.no_grad()
    def predict(self, frames: Sequence[ImageLike], audio: torch.Tensor,
                output_size: Size | None = None) -> list[torch.Tensor]:
        """uint8 H x W x 3 frames (any sizes) + their embeddings [N, 128] → N logit maps [H, W]
        at the frames' own resolution, or all at ``output_size`` (e.g. the model's input size, as
        SAMA-AVS's test scores them)."""
        if len(frames) != audio.shape[0]:
            raise ValueError(f"{len(frames)} frames but {audio.shape[0]} audio embeddings")
        batch = self.model.preprocess(frames, device=self.device)
        sizes = batch.original_sizes if output_size is None else [tuple(output_size)] * len(frames)
        return self.predict_batch(batch.images, audio, batch.input_sizes, sizes)

    @torch.no_grad()
    def predict_waveforms(self, frames: Sequence[ImageLike], waveforms: Sequence[np.ndarray],
                          sample_rate: int, batch_size: int = 8) -> list[torch.Tensor]:
        """One logit map [H, W] (on the CPU) per (frame, waveform) pair, ``batch_size`` pairs at a
        time, in eval mode. Waveforms are mono [T] or [T, C] at ``sample_rate`` (one clip each)."""
        if self.vggish is None:
            raise ValueError("predict_waveforms needs an AVPredictor built with a vggish embedder")
        if len(frames) != len(waveforms):
            raise ValueError(f"{len(frames)} images but {len(waveforms)} waveforms")
        out: list[torch.Tensor] = []
        with self.evaluating():
            for start in range(0, len(frames), batch_size):
                chunk = waveforms[start : start + batch_size]
                audio = torch.stack([self.vggish.embed_clip(w, sample_rate) for w in chunk])
                out += [lg.cpu() for lg in self.predict(frames[start : start + batch_size], audio)]
        return out


__all__ = ["AVPredictor", "resolve_device"]
