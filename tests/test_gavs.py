"""GAVS against its official code (GeWu-Lab/Generalizable-Audio-Visual-Segmentation @ 753b23b).

The fixture in tests/data/official/gavs/ was recorded by running the official model code at tiny
widths with random weights (README.md there): its state dict (official key layout), inputs and
outputs. The public-code config must reproduce them; the paper variant is the same modules plus
options, checked against the public-code forward (options off) and a re-statement (options on).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from avsynth.modeling import Gavs, build_model, load_config
from avsynth.modeling.gavs import (
    OfficialCheckpointError,
    convert_official_gavs,
    is_official_gavs,
    official_missing_keys,
)
from avsynth.modeling.sam import load_state_checked
from avsynth.modeling.transforms import PIXEL_MEAN, PIXEL_STD, preprocess_images

FIXTURE = Path(__file__).parent / "data" / "official" / "gavs"


@pytest.fixture(scope="module")
def official():
    io = torch.load(FIXTURE / "io.pt", weights_only=True)
    state = torch.load(FIXTURE / "official_state_dict.pt", weights_only=True)
    return io, state


def loaded(name: str, state, **overrides) -> Gavs:
    """The config's model with the official fixture's weights; no unexpected key may remain."""
    cfg = load_config(name)
    cfg["model"].update(overrides)
    model = build_model(cfg)
    converted = convert_official_gavs(state)
    report = load_state_checked(model, converted, "fixture")
    assert report.unexpected == []
    assert sorted(report.missing) == sorted(official_missing_keys(model, converted))
    return model


def native(model: Gavs, logits: torch.Tensor, io) -> torch.Tensor:
    isz, osz = tuple(io["input_size"].tolist()), tuple(io["original_size"].tolist())
    return torch.cat([model.postprocess(logits[i : i + 1], isz, osz) for i in range(logits.shape[0])])


# --------------------------------------------------------------------------- public code


def test_public_code_eval_forward_equals_the_official_code(official):
    io, state = official
    model = loaded("gavs-tiny-public-code", state).eval()
    with torch.no_grad():
        out = model(io["images"], io["audio"])
    torch.testing.assert_close(out.logits, io["eval_low_res_logits"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.iou, io["eval_iou"], atol=1e-5, rtol=0)
    torch.testing.assert_close(native(model, out.logits, io), io["eval_native_logits"], atol=1e-5, rtol=0)
    # BCE on the logits at the native frame size, per frame, averaged (official per-video loss)
    torch.testing.assert_close(model.loss(out, io["masks"]), io["eval_losses"].mean(), atol=1e-6, rtol=0)


def test_public_code_training_step_equals_the_official_code(official):
    io, state = official
    model = loaded("gavs-tiny-public-code", state).train()
    torch.manual_seed(int(io["train_seed"]))  # the official run drew randn_like(a) per frame from here
    out = model(io["images"], io["audio"])
    torch.testing.assert_close(native(model, out.logits, io), io["train_native_logits"], atol=1e-5, rtol=0)
    loss = model.loss(out, list(io["masks"]))
    torch.testing.assert_close(loss, io["train_loss"], atol=1e-6, rtol=0)
    loss.backward()
    params = dict(model.named_parameters())
    for key in [k for k in io if k.startswith("grad:")]:  # the audio projection and both adapters train
        assert params["sam." + key[5:]].requires_grad
        torch.testing.assert_close(params["sam." + key[5:]].grad, io[key], atol=1e-6, rtol=0)


def test_training_replaces_the_audio_by_noise_of_its_std():
    model = build_model(load_config("gavs-tiny-public-code"))
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(2, 200_000, generator=g) * torch.tensor([[0.5], [3.0]]) + 7.0
    model.eval()
    assert torch.equal(model.audio_input(audio), audio)
    model.train()
    noise = model.audio_input(audio)
    assert noise.shape == audio.shape
    assert torch.allclose(noise.mean(-1), torch.zeros(2), atol=0.03)  # centred: the mean 7 is gone
    assert torch.allclose(noise.std(-1), torch.tensor([0.5, 3.0]), rtol=0.01)  # each frame's own std
    assert abs(float(torch.corrcoef(torch.stack([noise[1], audio[1]]))[0, 1])) < 0.01


def test_public_code_training_output_ignores_the_audio_values(official):
    io, state = official
    model = loaded("gavs-tiny-public-code", state)
    images, audio = io["images"], io["audio"]
    shuffled = audio[:, torch.randperm(128, generator=torch.Generator().manual_seed(0))]  # same std
    model.train()
    outs = []
    for a in (audio, shuffled):
        torch.manual_seed(5)
        outs.append(model(images, a).logits)
    assert torch.equal(outs[0], outs[1])
    model.eval()
    assert (model(images, audio).logits - model(images, shuffled).logits).abs().max() > 1e-3


def test_public_code_trains_what_the_official_code_trains():
    model = build_model(load_config("gavs-tiny-public-code"))
    tune_v = model.tune_v
    for name, p in model.named_parameters():
        # run_v1m_x.py:109-134, with blocks >= tune_v / tune_v + 1; the tiny config also unfreezes the
        # random tiny encoder through the trainer's `unfreeze`, not through the model
        want = (name.startswith("sam.mask_decoder.audio_proj.") or ".adapter_tf." in name
                or any(name.startswith(f"sam.image_encoder.blocks.{b}.adapter_v.") for b in range(tune_v, 4))
                or any(name.startswith(f"sam.image_encoder.blocks.{b}.norm") for b in range(tune_v + 1, 4)))
        assert p.requires_grad == want, name
    images = torch.randn(2, 3, 64, 64)
    model.train()
    model.loss(model(images, torch.randn(2, 128)), torch.ones(2, 1, 48, 64)).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


# --------------------------------------------------------------------------- the paper variant


def test_paper_variant_with_its_options_off_is_the_public_code(official):
    io, state = official
    model = loaded("gavs-tiny", state, adaptive_noise=False, visual_cue=False, triplet_weight=0.0,
                   noise_replaces_audio_in_training=False)
    assert model.noise is None and model.visual_proj is None
    model.eval()
    with torch.no_grad():
        out = model(io["images"], io["audio"])
        torch.testing.assert_close(out.logits, io["eval_low_res_logits"], atol=1e-5, rtol=0)
        model.train()  # the paper trains on the audio itself: training forward = inference forward
        torch.testing.assert_close(model(io["images"], io["audio"]).logits, out.logits, atol=0, rtol=0)


def _restated(public: Gavs, images, prompt):
    """SAM's own forward (segment_anything's ImageEncoderViT / MaskDecoder, frame by frame) with
    the public-code adapters and ``prompt`` [B, P] as the one sparse token."""
    sam = public.sam
    pe = sam.prompt_encoder
    out = []
    for i in range(images.shape[0]):
        emb = sam.image_encoder(images[i : i + 1])
        dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *pe.image_embedding_size)
        masks, _ = sam.mask_decoder(emb, pe.get_dense_pe(), prompt[i : i + 1, None], dense, False)
        out.append(masks)
    return torch.cat(out)


def test_paper_variant_with_noise_and_visual_cue_against_a_restatement(official):
    io, state = official
    images, audio = io["images"], io["audio"]
    paper = loaded("gavs-tiny", state)
    assert set(official_missing_keys(paper, convert_official_gavs(state))) == {
        "noise.mu", "noise.log_sigma", "visual_proj.weight", "visual_proj.bias"}
    with torch.no_grad():
        paper.noise.mu.normal_(0, 0.5)
        paper.noise.log_sigma.fill_(-1.0)
    public = loaded("gavs-tiny-public-code", state).eval()
    enc = public.sam.image_encoder
    with torch.no_grad():
        x = enc.patch_embed(images) + enc.pos_embed
        for block in enc.blocks[:2]:  # tune_v = 2: the frozen early blocks (no adapter)
            x = block(x)
        visual = paper.visual_proj(x.mean(dim=(1, 2)))
        projected = public.audio_proj(audio)
        paper.eval()  # inference: the noise is its mean
        expected = _restated(public, images, projected + paper.noise.mu + visual)
        torch.testing.assert_close(paper(images, audio).logits, expected, atol=1e-5, rtol=0)
        paper.train()  # training: mu + sigma * eps, eps ~ N(0, 1) per frame; the audio itself
        torch.manual_seed(3)
        got = paper(images, audio).logits
        torch.manual_seed(3)
        eps = torch.randn(3, 32)
        expected = _restated(public, images, projected + paper.noise.mu + np.exp(-1.0) * eps + visual)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_paper_loss_adds_the_triplet_alignment():
    model = build_model(load_config("gavs-tiny")).eval()
    images, audio = torch.randn(3, 3, 64, 64), torch.randn(3, 128)
    gt = torch.ones(3, 1, 64, 64)  # whole-frame masks: the positive is the mean image embedding
    out = model(images, audio)
    bce = F.binary_cross_entropy_with_logits(F.interpolate(out.logits, size=(64, 64), mode="bilinear"), gt)
    a, p = out.aux["audio_prompt"], out.aux["image_embeddings"].mean(dim=(2, 3))
    cos = F.cosine_similarity
    triplet = torch.stack([F.relu(0.2 - cos(a[i], p[i], dim=0) + cos(a[i], p[i - 1], dim=0)) for i in range(3)]).mean()
    assert triplet > 0
    torch.testing.assert_close(model.loss(out, gt), bce + triplet, atol=1e-5, rtol=0)


def test_tune_v_bounds_and_options():
    cfg = load_config("gavs-tiny")
    cfg["model"]["tune_v"] = 5
    with pytest.raises(ValueError, match="tune_v"):
        build_model(cfg)
    for key, bad in (("loss_size", "huge"), ("channel_order", "rbg")):
        cfg = load_config("gavs-tiny")
        cfg["model"][key] = bad
        with pytest.raises(ValueError, match=key):
            build_model(cfg)


# --------------------------------------------------------------------------- official checkpoints


def test_official_vit_b_layout_loads_with_zero_unexpected_keys():
    """vit_b_layout.json: names and shapes of the official ViT-B GAVS's AVSM.state_dict()."""
    layout = json.loads((FIXTURE / "vit_b_layout.json").read_text())
    fake = {k: torch.empty(0) for k in layout}
    converted = convert_official_gavs(fake)
    for name in ("gavs-vit-b-public-code", "gavs-vit-b"):
        with torch.device("meta"):
            model = build_model(load_config(name), load_weights=False)
        own = {k: list(v.shape) for k, v in model.state_dict().items()}
        assert not set(converted) - set(own), name  # zero unexpected keys
        assert all(own[k] == layout["model_v." + k[4:]] for k in converted), name  # same shapes
        missing = official_missing_keys(model, converted)
        if name == "gavs-vit-b-public-code":
            assert missing == {}
        else:
            assert set(missing) == {"noise.mu", "noise.log_sigma", "visual_proj.weight", "visual_proj.bias"}


def test_official_layout_detection_and_unexpected_keys(official):
    _, state = official
    assert is_official_gavs(state)
    assert is_official_gavs({k[len("model_v."):]: v for k, v in state.items()})  # the SAM part alone
    model = build_model(load_config("gavs-tiny-public-code"))
    assert not is_official_gavs(model.state_dict())  # avsynth's own layout
    plain_sam = {k: v for k, v in state.items() if "adapter" not in k and "audio_proj" not in k}
    assert not is_official_gavs(plain_sam)  # an ordinary SAM checkpoint
    bad = dict(state)
    bad["model_t.fc.weight"] = torch.zeros(1)
    bad["epoch"] = torch.zeros(1)
    with pytest.raises(OfficialCheckpointError, match=r"2 keys .*model_t\.fc\.weight, epoch"):
        convert_official_gavs(bad)
    converted = convert_official_gavs(state)
    del converted["sam.mask_decoder.audio_proj.0.weight"]
    with pytest.raises(OfficialCheckpointError, match="audio_proj.0.weight"):
        official_missing_keys(model, converted)


# --------------------------------------------------------------------------- BGR frames


def test_bgr_channel_order_is_normalised_with_the_rgb_statistics():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 100, 200  # R, G, B
    bgr = preprocess_images([image], 4, channel_order="bgr").images[0, :, 0, 0]
    rgb = preprocess_images([image], 4).images[0, :, 0, 0]
    # cv2.imread gives (B, G, R) = (200, 100, 10); SAM's preprocess subtracts the RGB mean from it
    expected_bgr = [(200 - PIXEL_MEAN[0]) / PIXEL_STD[0], (100 - PIXEL_MEAN[1]) / PIXEL_STD[1],
                    (10 - PIXEL_MEAN[2]) / PIXEL_STD[2]]
    expected_rgb = [(10 - PIXEL_MEAN[0]) / PIXEL_STD[0], (100 - PIXEL_MEAN[1]) / PIXEL_STD[1],
                    (200 - PIXEL_MEAN[2]) / PIXEL_STD[2]]
    torch.testing.assert_close(bgr, torch.tensor(expected_bgr), atol=1e-6, rtol=0)
    torch.testing.assert_close(rgb, torch.tensor(expected_rgb), atol=1e-6, rtol=0)
    public = build_model(load_config("gavs-tiny-public-code"))
    assert public.channel_order == "bgr"
    torch.testing.assert_close(public.preprocess([image]).images[0, :, 0, 0], torch.tensor(expected_bgr),
                               atol=1e-6, rtol=0)


def test_a_deep_copy_runs_its_own_adapters():
    import copy

    model = build_model(load_config("gavs-tiny-public-code")).eval()
    images, audio = torch.randn(1, 3, 64, 64), torch.randn(1, 128)
    before = model(images, audio).logits
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.sam.image_encoder.blocks[3].adapter_v[2].bias.add_(1.0)
        twin.sam.mask_decoder.transformer.layers[1].adapter_tf.proj.bias.add_(1.0)
    assert torch.equal(model(images, audio).logits, before)  # the original's hooks use its adapters
    assert (twin(images, audio).logits - before).abs().max() > 1e-3
