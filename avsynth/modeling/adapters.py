"""Small trainable modules that inject audio into a frozen SAM.

* :class:`AudioTokenAdapters` — SAMA-AVS: before ViT block i, every token gets
  ``shared_up(GELU(down_i(audio)))`` (per-block down-projections, one shared up-projection).
* :class:`AdaptiveNoise` — the GAVS paper's learnable noise added to the prompt.
* :class:`AudioPromptMLP` — audio embedding → prompt token (AP-SAM).

(GAVS's adapters and audio projection live in :mod:`avsynth.modeling.gavs`, under the public
code's names.)
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class AudioTokenAdapters(nn.Module):
    """SAMA-AVS audio adapters: ``depth`` Linear(audio_dim→hidden), one shared Linear(hidden→dim).

    For ViT-H (depth 32, 128→512, 512→1280) this is 2,770,176 parameters.
    """

    def __init__(self, depth: int, dim: int, audio_dim: int = 128, hidden_dim: int = 512):
        super().__init__()
        self.down = nn.ModuleList(nn.Linear(audio_dim, hidden_dim) for _ in range(depth))
        self.shared_up = nn.Linear(hidden_dim, dim)

    def forward(self, audio: torch.Tensor, block: int) -> torch.Tensor:
        """[B, audio_dim] → [B, 1, 1, dim], broadcast over the [B, h, w, dim] token grid."""
        return self.shared_up(F.gelu(self.down[block](audio)))[:, None, None, :]


class AdaptiveNoise(nn.Module):
    """Learnable Gaussian noise ``mu + exp(log_sigma) * eps`` (reparameterised) of size ``dim``.

    In eval mode it returns its mean ``mu`` (deterministic inference).
    """

    def __init__(self, dim: int, init_sigma: float = 1.0):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(dim))
        self.log_sigma = nn.Parameter(torch.full((dim,), math.log(init_sigma)))

    def forward(self, batch: int) -> torch.Tensor:
        if not self.training:
            return self.mu.expand(batch, -1)
        eps = torch.randn(batch, self.mu.shape[0], device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + self.log_sigma.exp() * eps


class AudioPromptMLP(nn.Module):
    """Audio embedding [B, audio_dim] → prompt embedding [B, prompt_dim] (Linear-GELU-Linear)."""

    def __init__(self, audio_dim: int, hidden_dim: int, prompt_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(audio_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, prompt_dim)
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.net(audio)
