"""modeling/gavs beyond the official-fixture tests (tests/test_gavs.py): the default configuration
(the public code's), tune_v's bounds, what trains with the paper's options on, the low-res loss and
the triplet term with non-square masks, restated by hand (BCE written out, nearest indices, the mask
placed in the input frame and area-pooled to the embedding grid by counting pixels)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from avsynth.modeling.gavs import Gavs, is_official_gavs
from avsynth.modeling.sam import SAM_ARCHS, build_sam


@pytest.fixture(scope="module")
def tiny_state():
    torch.manual_seed(0)
    return build_sam(SAM_ARCHS["tiny"]).state_dict()


def tiny(state, **kw) -> Gavs:
    sam = build_sam(SAM_ARCHS["tiny"])
    sam.load_state_dict(state)
    torch.manual_seed(1)
    return Gavs(sam, **kw)


def bce(x, y):
    """Mean BCE with logits, written out (stable form)."""
    return (x.clamp(min=0) - x * y + torch.log1p(torch.exp(-x.abs()))).mean()


def test_defaults_are_the_public_code():
    with torch.device("meta"):
        model = Gavs(build_sam(SAM_ARCHS["vit_b"]))
    proj = model.audio_proj
    assert (proj[0].in_features, proj[0].out_features, proj[2].in_features, proj[2].out_features) == (128, 512, 512, 256)
    assert isinstance(proj[1], torch.nn.ReLU)
    blocks = model.sam.image_encoder.blocks
    assert (blocks[0].adapter_v[0].in_features, blocks[0].adapter_v[0].out_features) == (768, 128)
    tf = model.sam.mask_decoder.transformer.layers[0].adapter_tf
    assert (tf.dense.in_features, tf.dense.out_features) == (256, 128)
    assert model.tune_v == 9 and model.noise is None and model.visual_proj is None
    assert (model.loss_size, model.native_targets, model.channel_order, model.resize) == ("native", True, "bgr", "longest")
    assert model.noise_replaces_audio_in_training and model.triplet_weight == 0 and not model.grad_checkpointing
    trains = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "sam.image_encoder.blocks.9.adapter_v.0.weight" in trains
    assert "sam.image_encoder.blocks.8.adapter_v.0.weight" not in trains
    assert "sam.image_encoder.blocks.10.norm1.weight" in trains and "sam.image_encoder.blocks.9.norm1.weight" not in trains


def test_tune_v_bounds(tiny_state):
    for ok in (0, 4):  # 0..depth (4) inclusive
        assert tiny(tiny_state, tune_v=ok).tune_v == ok
    for bad in (-1, 5):
        with pytest.raises(ValueError, match=rf"^tune_v={bad} must be within 0\.\.4 \(encoder depth\)$"):
            tiny(tiny_state, tune_v=bad)
    with pytest.raises(ValueError, match=r"^loss_size must be one of \('native', 'low_res'\), got 'huge'$"):
        tiny(tiny_state, tune_v=2, loss_size="huge")
    with pytest.raises(ValueError, match=r"^channel_order must be one of .*, got 'rbg'$"):
        tiny(tiny_state, tune_v=2, channel_order="rbg")
    noisy = tiny(tiny_state, tune_v=2, adaptive_noise=True)
    assert torch.equal(noisy.noise.log_sigma, torch.zeros(32))  # sigma 1 by default
    assert torch.allclose(tiny(tiny_state, tune_v=2, adaptive_noise=True, noise_init_sigma=0.5).noise.log_sigma,
                          torch.full((32,), math.log(0.5)))


def test_what_trains_with_the_papers_options(tiny_state):
    model = tiny(tiny_state, tune_v=2, adaptive_noise=True, visual_cue=True)
    names = [n for n, _ in model.named_parameters()]
    want = {"noise.mu", "noise.log_sigma", "visual_proj.weight", "visual_proj.bias"}
    want |= {n for n in names if n.startswith("sam.mask_decoder.audio_proj.") or ".adapter_tf." in n}
    for i in (2, 3):  # blocks >= tune_v: their encoder adapter
        want |= {n for n in names if n.startswith(f"sam.image_encoder.blocks.{i}.adapter_v.")}
    want |= {f"sam.image_encoder.blocks.3.{k}.{w}" for k in ("norm1", "norm2") for w in ("weight", "bias")}
    assert {n for n, p in model.named_parameters() if p.requires_grad} == want
    assert len([n for n in want if ".adapter_tf." in n]) == 2 * 4  # 2 decoder layers x (dense, proj) x (w, b)


def test_an_unfrozen_early_part_gets_gradients(tiny_state):
    """Nothing before block tune_v trains, so it runs without autograd — unless a config unfreezes
    it (here SAM's positional embedding): then the gradient must reach it."""
    model = tiny(tiny_state, tune_v=2).eval()
    pos = model.sam.image_encoder.pos_embed
    pos.requires_grad_(True)
    images, audio = torch.randn(2, 3, 64, 64), torch.randn(2, 128)
    model.loss(model(images, audio), torch.ones(2, 1, 64, 64)).backward()
    assert pos.grad is not None and float(pos.grad.abs().sum()) > 0
    blk = model.sam.image_encoder.blocks[0].attn.qkv.weight
    blk.requires_grad_(True)
    pos.requires_grad_(False)
    pos.grad = None
    model.loss(model(images, audio), torch.ones(2, 1, 64, 64)).backward()
    assert blk.grad is not None and float(blk.grad.abs().sum()) > 0


def nearest(mask: torch.Tensor, size: int) -> torch.Tensor:
    """PyTorch's "nearest" resize written out: destination i takes source floor(i * in / out)."""
    h, w = mask.shape
    rows = [math.floor(i * h / size) for i in range(size)]
    cols = [math.floor(j * w / size) for j in range(size)]
    return mask[rows][:, cols]


def test_low_res_loss_is_bce_against_nearest_resized_masks(tiny_state):
    model = tiny(tiny_state, tune_v=2, loss_size="low_res").eval()
    assert not model.native_targets
    g = torch.Generator().manual_seed(3)
    images, audio = torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 128, generator=g)
    masks = [(torch.rand(64, 64, generator=g) > 0.5).float(), (torch.rand(48, 80, generator=g) > 0.7).float()]
    with torch.no_grad():
        out = model(images, audio)
        assert out.logits.shape == (2, 1, 32, 32)
        want = bce(out.logits, torch.stack([nearest(m, 32) for m in masks])[:, None])
        assert torch.allclose(model.loss(out, masks), want, atol=1e-6)
        assert torch.allclose(model.loss(out, torch.stack(masks[:1] * 2)[:, None]),
                              bce(out.logits, nearest(masks[0], 32).expand(2, 1, 32, 32)), atol=1e-6)


def test_triplet_term_with_non_square_masks_and_its_margin(tiny_state):
    """Mask 0 is 32 x 64 (h x w), mask 1 is 64 x 32; "longest" places them top-left in the 64 x 64
    input unscaled. The 8 x 8 embedding grid pools 8 x 8 input pixels per cell (area):
    mask 0 = rows 0-11 → grid row 0 weight 1, row 1 weight 4/8; mask 1 = rows 0-19, cols 0-31 →
    grid rows 0-1 weight 1, row 2 weight 0.5, columns 0-3 only."""
    m0 = torch.zeros(32, 64)
    m0[:12] = 1
    m1 = torch.zeros(64, 32)
    m1[:20] = 1
    w0 = torch.zeros(8, 8)
    w0[0], w0[1] = 1.0, 0.5
    w1 = torch.zeros(8, 8)
    w1[:2, :4], w1[2, :4] = 1.0, 0.5
    g = torch.Generator().manual_seed(4)
    images, audio = torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 128, generator=g)
    plain = tiny(tiny_state, tune_v=2).eval()
    model = tiny(tiny_state, tune_v=2, triplet_weight=2.0, triplet_margin=0.9).eval()
    model.load_state_dict(plain.state_dict())
    with torch.no_grad():
        out = model(images, audio)
        emb, a = out.aux["image_embeddings"], out.aux["audio_prompt"]
        assert emb.shape[-2:] == (8, 8)
        p = torch.stack([(emb[0] * w0).sum((1, 2)) / w0.sum(), (emb[1] * w1).sum((1, 2)) / w1.sum()])
        cos = F.cosine_similarity
        trip = torch.stack([F.relu(0.9 - cos(a[i], p[i], dim=0) + cos(a[i], p[i - 1], dim=0)) for i in range(2)]).mean()
        assert trip > 0
        diff = model.loss(out, [m0, m1]) - plain.loss(out, [m0, m1])
        assert torch.allclose(diff, 2.0 * trip, atol=1e-5)


def test_a_state_dict_with_avsynth_keys_is_never_official():
    t = torch.zeros(1)
    assert is_official_gavs({"model_v.mask_decoder.audio_proj.0.weight": t})
    assert not is_official_gavs({"sam.image_encoder.x": t, "model_v.mask_decoder.audio_proj.0.weight": t})
    assert not is_official_gavs({})


def test_default_triplet_margin_is_the_papers_0_2(tiny_state):
    mask = [torch.ones(64, 64), torch.ones(64, 64)]
    g = torch.Generator().manual_seed(5)
    images, audio = torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 128, generator=g)
    plain = tiny(tiny_state, tune_v=2).eval()
    model = tiny(tiny_state, tune_v=2, triplet_weight=1.0).eval()
    model.load_state_dict(plain.state_dict())
    with torch.no_grad():
        out = model(images, audio)
        a, p = out.aux["audio_prompt"], out.aux["image_embeddings"].mean(dim=(2, 3))  # whole-frame masks
        cos = F.cosine_similarity
        trip = torch.stack([F.relu(0.2 - cos(a[i], p[i], dim=0) + cos(a[i], p[i - 1], dim=0)) for i in range(2)]).mean()
        assert torch.allclose(model.loss(out, mask) - plain.loss(out, mask), trip, atol=1e-5)


def test_grad_checkpointing_recomputes_the_tuned_blocks(tiny_state):
    images, audio = torch.randn(2, 3, 64, 64), torch.randn(2, 128)
    for flag, want in ((True, 2), (False, 1)):
        model = tiny(tiny_state, tune_v=2, grad_checkpointing=flag).train()
        calls = []
        for blk in model.sam.image_encoder.blocks:
            blk.register_forward_pre_hook(lambda m, args: calls.append(m))
        model.loss(model(images, audio), torch.ones(2, 1, 64, 64)).backward()
        blocks = model.sam.image_encoder.blocks
        assert [sum(c is b for c in calls) for b in blocks] == [1, 1, want, want], flag  # only blocks >= tune_v


def test_official_conversion_layouts_and_messages(tiny_state):
    from avsynth.modeling.gavs import OFFICIAL_MISSING_REASONS, OfficialCheckpointError, convert_official_gavs, \
        official_missing_keys

    t = torch.zeros(1)
    assert convert_official_gavs({"model_v.image_encoder.a": t, "mask_decoder.b": t}) == {
        "sam.image_encoder.a": t, "sam.mask_decoder.b": t}  # with or without the AVSM prefix
    bad = {f"other.k{i:02d}": t for i in range(11)}
    with pytest.raises(OfficialCheckpointError) as e:
        convert_official_gavs({"model_v.prompt_encoder.c": t, **bad})
    assert str(e.value) == ("not an official GAVS checkpoint: 11 keys outside its layout (model_v.image_encoder/"
                            "prompt_encoder/mask_decoder): " + ", ".join(f"other.k{i:02d}" for i in range(10))
                            + ", ... (11 in all)")
    ten = dict(list(bad.items())[:10])
    with pytest.raises(OfficialCheckpointError) as e:
        convert_official_gavs(ten)
    assert str(e.value).endswith(": " + ", ".join(ten))  # ten named: all of them, no "in all"
    with pytest.raises(OfficialCheckpointError, match="1 keys outside"):
        convert_official_gavs({"model_v.image_encoder.a": [1.0]})  # not a tensor
    paper = tiny(tiny_state, tune_v=2, adaptive_noise=True, visual_cue=True)
    public = {k: v for k, v in paper.state_dict().items() if k.startswith("sam.")}
    assert official_missing_keys(paper, public) == {
        "noise.mu": OFFICIAL_MISSING_REASONS["noise."], "noise.log_sigma": OFFICIAL_MISSING_REASONS["noise."],
        "visual_proj.weight": OFFICIAL_MISSING_REASONS["visual_proj."],
        "visual_proj.bias": OFFICIAL_MISSING_REASONS["visual_proj."]}
    assert OFFICIAL_MISSING_REASONS["noise."].startswith("the paper's adaptive noise is not in the public code")
    public.pop("sam.mask_decoder.audio_proj.0.weight")
    with pytest.raises(OfficialCheckpointError, match=r"lacks 'sam\.mask_decoder\.audio_proj\.0\.weight'"):
        official_missing_keys(paper, public)
