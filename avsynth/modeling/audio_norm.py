"""Per-dimension standardisation of the VGGish vectors at a model's audio input: ``(x - mean) / std``.

Why: the tiny configs' VGGish is random and frozen. On the ``s4-audio`` demo its 128-d vectors are
about 90 % one common vector (mean norm 42.4, norm of the mean 42.0, residual 7.8, category
centroids 4.5 around the mean, mean pairwise cosine 0.981, 47 % of the entries 0), so a model sees
the audio as a near-constant bias. Subtracting the training split's mean and dividing by its
per-dimension spread leaves the part that differs between sounds. A pre-trained VGGish does not
have this offset; the paper configs keep ``audio_norm: none`` (the official models).

:class:`AudioNorm` holds the statistics as buffers (``mean``, ``std`` [D] float32 and ``vectors``,
the number of vectors they were fitted on), so they travel in every checkpoint's state dict. A model
built with the config key ``model.audio_norm: fit`` carries an unfitted one (``vectors == 0``) until
the trainer fits it from its training split (:func:`avsynth.training.audio_norm_fit.fit_audio_norm`)
or a checkpoint's buffers are loaded; running it unfitted is an :class:`AudioNormError`, never a
silent identity. :meth:`avsynth.modeling.base.AVSegmenter.enable_audio_norm` attaches it: a
forward pre-hook then standardises the ``audio`` argument of every forward (training, validation,
the predictor, ``avsynth bench`` and its audio controls: zeroed audio becomes the constant
``-mean / std``).
"""

from __future__ import annotations

import torch
from torch import nn

from avsynth.errors import AvsynthError

#: values of the config key ``model.audio_norm``
AUDIO_NORM_MODES = ("none", "fit")
#: the state-dict prefix of the statistics (kept in trainable-only checkpoints too)
STATE_PREFIX = "audio_norm."
#: a dimension whose training spread is below this is left unscaled (std := 1): a random VGGish's
#: ReLU outputs are exactly 0 in about half the dimensions for every clip
MIN_STD = 1e-6


class AudioNormError(AvsynthError):
    """An ``audio_norm: fit`` model ran before its statistics were fitted or loaded."""


def audio_statistics(vectors: torch.Tensor, min_std: float = MIN_STD) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) [D] float32 of ``vectors`` [N, D]: the per-dimension mean and population standard
    deviation (divisor N), computed in float64; a std below ``min_std`` becomes 1 (that dimension
    is only centred)."""
    x = torch.as_tensor(vectors).detach().to(torch.float64)
    if x.dim() != 2 or x.shape[0] < 1:
        raise ValueError(f"audio statistics need vectors [N, D] with N >= 1, got shape {tuple(x.shape)}")
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False)
    std = torch.where(std < min_std, torch.ones_like(std), std)
    return mean.float(), std.float()


class AudioNorm(nn.Module):
    """``(x - mean) / std`` over the last dimension (size ``dim``); see the module docstring."""

    def __init__(self, dim: int = 128):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("vectors", torch.zeros((), dtype=torch.long))

    @property
    def fitted(self) -> bool:
        return int(self.vectors) > 0

    def fit(self, vectors: torch.Tensor) -> int:
        """Set the statistics from ``vectors`` [N, D] (:func:`audio_statistics`); returns N."""
        mean, std = audio_statistics(vectors)
        if mean.shape != self.mean.shape:
            raise ValueError(f"audio vectors have {mean.shape[0]} dimensions, the model's audio input {self.mean.shape[0]}")
        with torch.no_grad():
            self.mean.copy_(mean)
            self.std.copy_(std)
            self.vectors.fill_(int(vectors.shape[0]))
        return int(vectors.shape[0])

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            raise AudioNormError("model config sets audio_norm: fit but the audio statistics were never fitted "
                                 "(train it, or load a checkpoint trained with it)")
        return (audio - self.mean.to(audio.dtype)) / self.std.to(audio.dtype)

    def summary(self) -> dict:
        """What a run records: vectors fitted on, and the size of what was removed."""
        return {"vectors": int(self.vectors), "mean_norm": round(float(self.mean.norm()), 4),
                "dims": int(self.mean.numel())}


__all__ = ["AUDIO_NORM_MODES", "MIN_STD", "STATE_PREFIX", "AudioNorm", "AudioNormError", "audio_statistics"]
