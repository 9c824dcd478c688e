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


# --------------------------------------------------------------------------- sama_avs


@pytest.fixture(scope="module")
def tiny_sam_state():
    torch.manual_seed(0)
    return build_sam(SAM_ARCHS["tiny"]).state_dict()


def tiny_sama(state, **kwargs) -> SamaAvs:
    sam = build_sam(SAM_ARCHS["tiny"])
    sam.load_state_dict(state)
    return SamaAvs(sam, **kwargs)


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 128, generator=g),
            (torch.rand(2, 1, 64, 64, generator=g) > 0.6).float())


def bce_plus_soft_iou(logits, gt, bce_w, iou_w, eps):
    """BCE with logits + (1 - (Σpg + eps) / (Σ(p + g - pg) + eps)), written out."""
    p = torch.sigmoid(logits)
    bce = -(gt * torch.log(p) + (1 - gt) * torch.log(1 - p)).mean()
    inter = (p * gt).flatten(1).sum(1)
    union = (p + gt - p * gt).flatten(1).sum(1)
    return bce_w * bce + iou_w * (1 - (inter + eps) / (union + eps)).mean()


def test_sama_defaults_are_avsynths_former_recipe(tiny_sam_state):
    model = tiny_sama(tiny_sam_state)
    assert model.recipe() == {"resize": "longest", "pretrained_dense_pe": True,
                              "loss_resolution": "low_res", "iou_eps": 1.0}
    assert not model.grad_checkpointing
    down, up = model.adapters.down, model.adapters.shared_up
    assert len(down) == len(model.sam.image_encoder.blocks)
    assert (down[0].in_features, down[0].out_features, up.in_features) == (128, 512, 512)
    assert up.out_features == model.sam.image_encoder.patch_embed.proj.out_channels
    small = tiny_sama(tiny_sam_state, audio_dim=8, adapter_dim=4)
    assert (small.adapters.down[1].in_features, small.adapters.shared_up.in_features) == (8, 4)
    # pretrained dense PE (default): SAM's values kept and frozen
    pe = model.sam.prompt_encoder
    assert torch.equal(pe.pe_layer.positional_encoding_gaussian_matrix,
                       tiny_sam_state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"])
    assert torch.equal(pe.no_mask_embed.weight, tiny_sam_state["prompt_encoder.no_mask_embed.weight"])
    with pytest.raises(ValueError, match=r"^loss_resolution must be one of \('input', 'low_res'\), got 'full'$"):
        tiny_sama(tiny_sam_state, loss_resolution="full")


def test_sama_trainable_set(tiny_sam_state):
    for pretrained in (True, False):
        model = tiny_sama(tiny_sam_state, pretrained_dense_pe=pretrained)
        names = {n for n, _ in model.named_parameters()}
        decoder = {n for n in names if n.startswith("sam.mask_decoder.")
                   and not n.startswith("sam.mask_decoder.iou_prediction_head.")
                   and not (n.startswith("sam.mask_decoder.output_hypernetworks_mlps.")
                            and not n.startswith("sam.mask_decoder.output_hypernetworks_mlps.0."))}
        want = {n for n in names if n.startswith("adapters.")} | decoder
        if not pretrained:
            want.add("sam.prompt_encoder.no_mask_embed.weight")
        assert "sam.mask_decoder.output_hypernetworks_mlps.0.layers.0.weight" in decoder
        assert {n for n, p in model.named_parameters() if p.requires_grad} == want


def test_sama_encoder_audio_before_each_block_and_none_is_vanilla(tiny_sam_state):
    model = tiny_sama(tiny_sam_state).eval()
    fill(model.adapters, 4)
    images, audio, _ = inputs()
    enc = model.sam.image_encoder
    with torch.no_grad():
        vanilla = enc(images)
        assert torch.equal(model.encode_image(images, None), vanilla)
        x = enc.patch_embed(images) + enc.pos_embed  # SAM's encoder, written out, tokens + audio
        for i, blk in enumerate(enc.blocks):
            x = blk(x + model.adapters(audio, i))
        want = enc.neck(x.permute(0, 3, 1, 2))
        got = model.encode_image(images, audio)
    assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, vanilla, atol=1e-3)


def test_sama_loss_at_both_resolutions_and_weights(tiny_sam_state):
    images, audio, gt = inputs(1)
    model = tiny_sama(tiny_sam_state, bce_weight=2.0, iou_weight=3.0).eval()
    with torch.no_grad():
        out = model(images, audio)
        low = out.logits
        assert low.shape == (2, 1, 32, 32)
        small_gt = gt[:, :, ::2, ::2]  # nearest 64 → 32 takes pixel 2k (floor(k · 64/32))
        assert torch.allclose(model.loss(out, gt), bce_plus_soft_iou(low, small_gt, 2.0, 3.0, 1.0), atol=1e-5)
        model.loss_resolution, model.iou_eps = "input", 0.0
        up = torch.nn.functional.interpolate(low, size=(64, 64), mode="bilinear", align_corners=False)
        assert torch.allclose(model.loss(out, gt), bce_plus_soft_iou(up, gt, 2.0, 3.0, 0.0), atol=1e-5)
    plain = tiny_sama(tiny_sam_state).eval()  # default weights 1 : 1
    with torch.no_grad():
        out = plain(images, audio)
        assert torch.allclose(plain.loss(out, gt), bce_plus_soft_iou(out.logits, gt[:, :, ::2, ::2], 1.0, 1.0, 1.0),
                              atol=1e-5)


def test_sama_forward_is_sams_own_decoder_on_the_audio_embeddings(tiny_sam_state):
    """Logits and predicted IoU = segment_anything's MaskDecoder (single mask, no prompts: SAM's
    own prompt encoder with nothing given) on the audio-conditioned embeddings, image by image."""
    model = tiny_sama(tiny_sam_state).eval()
    fill(model.adapters, 5)
    images, audio, _ = inputs(2)
    sam = model.sam
    with torch.no_grad():
        out = model(images, audio)
        emb = model.encode_image(images, audio)
        sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
        for i in range(2):
            masks, iou = sam.mask_decoder(image_embeddings=emb[i:i + 1], image_pe=sam.prompt_encoder.get_dense_pe(),
                                          sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                          multimask_output=False)
            assert torch.allclose(out.logits[i:i + 1], masks, atol=1e-5)
            assert out.iou.shape == (2, 1) and torch.allclose(out.iou[i:i + 1], iou, atol=1e-5)


def test_sama_grad_checkpointing_recomputes_each_block_in_backward(tiny_sam_state):
    """The option exists to trade time for memory: with it, each ViT block runs twice in a
    training step (forward, then again in backward); without it once; in eval once either way."""
    images, audio, gt = inputs(3)
    for flag, want in ((True, 2), (False, 1)):
        model = tiny_sama(tiny_sam_state, grad_checkpointing=flag).train()
        calls = []
        for blk in model.sam.image_encoder.blocks:
            blk.register_forward_pre_hook(lambda m, args: calls.append(m))
        model.loss(model(images, audio), gt).backward()
        n = len(model.sam.image_encoder.blocks)
        assert len(calls) == want * n, flag
        calls.clear()
        with torch.no_grad():
            model.eval()(images, audio)
        assert len(calls) == n
