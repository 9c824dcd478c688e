"""Fast, targeted checks of modeling/adapters and modeling/sama_avs (tiny dimensions, CPU), written
to kill the mutants that mattered (scripts/mutation.sh; TESTING.md). Expected values are computed
by hand from the module's documented formula (explicit matmuls, the erf GELU), from the official
SAMA-AVS fixture (tests/data/official/sama_avs) or from the construction."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from avsynth.modeling.adapters import AdaptiveNoise, AudioPromptMLP, AudioTokenAdapters
from avsynth.modeling.losses import bce_iou_loss
from avsynth.modeling.sam import SAM_ARCHS, build_sam
from avsynth.modeling.sama_avs import SamaAvs

OFFICIAL = Path(__file__).parent / "data" / "official" / "sama_avs"


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact (erf) GELU, written out: x · Φ(x)."""
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def fill(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))


# --------------------------------------------------------------------------- adapters


def test_audio_token_adapters_formula_shape_and_defaults():
    ad = AudioTokenAdapters(depth=3, dim=5, audio_dim=4, hidden_dim=6)
    fill(ad, 0)
    audio = torch.randn(2, 4, generator=torch.Generator().manual_seed(1))
    up_w, up_b = ad.shared_up.weight, ad.shared_up.bias
    for block in range(3):
        w, b = ad.down[block].weight, ad.down[block].bias
        want = gelu(audio @ w.T + b) @ up_w.T + up_b  # per-block down, shared up
        got = ad(audio, block)
        assert got.shape == (2, 1, 1, 5)  # broadcast over the [B, h, w, dim] token grid
        assert torch.allclose(got[:, 0, 0, :], want, atol=1e-6)
    assert not torch.allclose(ad(audio, 0), ad(audio, 1))  # each block has its own projection
    # defaults: 128 → 512 per block, 512 → dim shared (the paper's ViT-H count, module docstring)
    default = AudioTokenAdapters(depth=32, dim=1280)
    assert (default.down[0].in_features, default.down[0].out_features) == (128, 512)
    assert sum(p.numel() for p in default.parameters()) == 2_770_176 == 32 * (128 * 512 + 512) + 512 * 1280 + 1280


def test_adaptive_noise_eval_is_the_mean_and_training_reparameterises():
    noise = AdaptiveNoise(4, init_sigma=2.0)
    assert torch.equal(noise.mu, torch.zeros(4))
    assert torch.allclose(noise.log_sigma, torch.full((4,), math.log(2.0)))
    with torch.no_grad():
        noise.mu.copy_(torch.tensor([1.0, -1.0, 0.5, 3.0]))
    noise.eval()
    assert torch.equal(noise(3), noise.mu.expand(3, 4))  # deterministic inference: the mean
    noise.train()
    torch.manual_seed(7)
    out = noise(3)
    torch.manual_seed(7)
    eps = torch.randn(3, 4)
    assert out.shape == (3, 4)
    assert torch.allclose(out, noise.mu + 2.0 * eps)  # mu + exp(log sigma) * eps
    out.sum().backward()  # reparameterised: both parameters get a gradient
    assert torch.allclose(noise.mu.grad, torch.full((4,), 3.0))
    assert torch.allclose(noise.log_sigma.grad, 2.0 * eps.sum(0))
    double = AdaptiveNoise(2).double().train()  # noise drawn in the parameters' dtype
    torch.manual_seed(3)
    got = double(5)
    torch.manual_seed(3)
    assert got.dtype == torch.float64 and torch.equal(got, torch.randn(5, 2, dtype=torch.float64))
    assert AdaptiveNoise(2).log_sigma.abs().max() == 0  # default sigma 1


def test_audio_prompt_mlp_is_linear_gelu_linear():
    mlp = AudioPromptMLP(audio_dim=4, hidden_dim=6, prompt_dim=3)
    fill(mlp, 2)
    audio = torch.randn(5, 4, generator=torch.Generator().manual_seed(3))
    first, second = mlp.net[0], mlp.net[2]
    assert (first.in_features, first.out_features, second.out_features) == (4, 6, 3)
    want = gelu(audio @ first.weight.T + first.bias) @ second.weight.T + second.bias
    assert torch.allclose(mlp(audio), want, atol=1e-6)
