"""SAMA-AVS against the official implementation (jinxiang-liu/anno-free-AVS ``models/sam.py``),
run outside the project at tiny dimensions with random weights: forward, the training loss of
the official recipe and its gradients; the official checkpoint layout read by ``--checkpoint`` and
``avsynth convert-checkpoint``. See tests/data/official/sama_avs/README.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from avsynth.cli import app
from avsynth.modeling.checkpoint import CheckpointError, load_checkpoint, read_checkpoint
from avsynth.modeling.official import FORMATS, convert_official, sama_avs_official_config
from avsynth.modeling.registry import build_model, build_vggish_for, load_config
from avsynth.modeling.sam import SAM_ARCHS, build_sam
from avsynth.modeling.vggish import VGGish

FIX = Path(__file__).parent / "data" / "official" / "sama_avs"


@pytest.fixture(scope="module")
def official_state() -> dict:
    return torch.load(FIX / "sama_avs_official_state.pt", weights_only=True)


@pytest.fixture(scope="module")
def io() -> dict:
    return torch.load(FIX / "sama_avs_io.pt", weights_only=True)


def official_model(state):
    cfg, model_state, vggish, report = convert_official(state, "sama-avs-official")
    assert report.clean and not report.unexpected and not vggish
    model = build_model(cfg, load_weights=False)
    result = model.load_state_dict(model_state, strict=False)
    assert not result.unexpected_keys and set(result.missing_keys) == set(report.explained)
    return model.eval()


def test_forward_loss_and_gradients_match_the_official_code(official_state, io):
    model = official_model(official_state)
    assert (model.resize, model.loss_resolution, model.iou_eps, model.pretrained_dense_pe) == (
        "square", "input", 0.0, False)
    out = model(io["images"], io["audio"])
    assert torch.allclose(out.logits, io["low_res_logits"], atol=1e-5, rtol=0)
    loss = model.loss(out, io["gt"])
    assert abs(float(loss.detach()) - float(io["loss"])) < 1e-5
    loss.backward()
    names = {"image_encoder.prompt_generator.shared_mlp.weight": "adapters.shared_up.weight",
             "image_encoder.prompt_generator.lightweight_mlp_2.0.bias": "adapters.down.2.bias",
             "mask_decoder.output_upscaling.0.weight": "sam.mask_decoder.output_upscaling.0.weight",
             "no_mask_embed.weight": "sam.prompt_encoder.no_mask_embed.weight"}
    params = dict(model.named_parameters())
    for official, ours in names.items():
        g = params[ours].grad
        assert g is not None, ours  # trained in the official recipe (no_mask_embed too)
        want = io["grads"][official]
        assert torch.allclose(g, want, atol=1e-7, rtol=1e-4), (ours, float((g - want).abs().max()))


def test_avsynth_recipe_differs_where_the_issue_says(official_state, io):
    """The former loss (256² logits vs the resized mask, IoU eps 1) gives other gradients: their
    relative difference here is ~5% (measured 0.049), far above the 1e-4 agreement above."""
    model = official_model(official_state)
    grads = []
    for resolution, eps in (("input", 0.0), ("low_res", 1.0)):
        model.zero_grad()
        model.loss_resolution, model.iou_eps = resolution, eps
        model.loss(model(io["images"], io["audio"]), io["gt"]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert float((grads[0] - grads[1]).norm() / grads[0].norm()) > 0.01


def test_dense_pe_is_random_and_no_mask_embed_trains_in_the_official_recipe(tmp_path):
    torch.manual_seed(3)
    sam = build_sam(SAM_ARCHS["tiny"])
    path = tmp_path / "sam_tiny.pth"
    torch.save(sam.state_dict(), path)
    cfg = load_config("sama-avs-tiny")
    cfg["sam"]["checkpoint"] = str(path)
    pe_key = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
    for pretrained in (True, False):
        cfg["model"]["pretrained_dense_pe"] = pretrained
        model = build_model(cfg)
        same_pe = torch.equal(model.sam.state_dict()[pe_key], sam.state_dict()[pe_key])
        same_nm = torch.equal(model.sam.prompt_encoder.no_mask_embed.weight, sam.prompt_encoder.no_mask_embed.weight)
        assert same_pe == same_nm == pretrained
        assert model.sam.prompt_encoder.no_mask_embed.weight.requires_grad == (not pretrained)
        assert torch.equal(model.sam.image_encoder.pos_embed, sam.image_encoder.pos_embed)  # SAM's, always
    again = build_model(cfg)  # drawn from the config's seed: the same every build
    assert torch.equal(again.sam.prompt_encoder.no_mask_embed.weight, model.sam.prompt_encoder.no_mask_embed.weight)


def test_official_checkpoint_is_detected_by_checkpoint_loading(tmp_path, official_state, io):
    path = tmp_path / "model_epoch_best.pth"
    torch.save({f"module.{k}": v for k, v in official_state.items()}, path)  # as DDP saves it
    payload = read_checkpoint(path)
    assert payload["official"]["format"] == "sama-avs-official"
    assert payload["official"]["unexpected"] == {}
    assert len(payload["official"]["missing"]) == 15 == len(payload["official"]["explained"])
    model = load_checkpoint(path, payload=payload).eval()
    assert torch.allclose(model(io["images"], io["audio"]).logits, io["low_res_logits"], atol=1e-5, rtol=0)


def test_unknown_key_is_refused_not_dropped(tmp_path, official_state):
    path = tmp_path / "bad.pth"
    torch.save({**official_state, "image_encoder.extra_head.weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"unexpected keys: 1\n?.*extra_head"):
        read_checkpoint(path)


def test_convert_checkpoint_cli_reports_and_routes_vggish(tmp_path, official_state, io):
    torch.manual_seed(0)
    vgg = {f"audio_encoder.audio_backbone.{k}": v for k, v in VGGish(
        (8, "M", 16, "M", 16, 16, "M", 32, 32, "M"), (64, 64)).state_dict().items()}
    src = tmp_path / "official.pth"
    torch.save({**official_state, **vgg}, src)
    cfg = sama_avs_official_config(official_state)
    cfg["vggish"]["arch"] = "tiny"
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(__import__("yaml").safe_dump(cfg))
    dst = tmp_path / "out" / "model.pt"
    r = CliRunner().invoke(app, ["convert-checkpoint", str(src), str(dst), "--from", "sama-avs-official",
                                 "--config", str(cfg_path)])
    assert r.exit_code == 0, r.output
    assert "unexpected keys: 0" in r.output and "missing keys: 15 (0 unexplained)" in r.output
    assert f"197 keys -> model, {len(vgg)} keys -> VGGish" in r.output
    payload = read_checkpoint(dst)
    assert payload["config"]["vggish"]["checkpoint"] == str(dst.with_suffix(".vggish.pth").resolve())
    net = build_vggish_for(payload["config"]).network.state_dict()
    assert all(torch.equal(net[k[len("audio_encoder.audio_backbone."):]], v) for k, v in vgg.items())
    model = load_checkpoint(dst).eval()
    assert torch.allclose(model(io["images"], io["audio"]).logits, io["low_res_logits"], atol=1e-5, rtol=0)
    bad = CliRunner().invoke(app, ["convert-checkpoint", str(src), str(tmp_path / "x.pt"), "--from", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output and not (tmp_path / "x.pt").exists()
    assert "sama-avs-official" in FORMATS


def test_bench_reads_an_official_checkpoint(tmp_path, official_state, demo_corpus):
    path = tmp_path / "model_epoch_best.pth"
    torch.save(official_state, path)
    cfg = sama_avs_official_config(official_state)
    cfg["vggish"]["arch"] = "tiny"  # the tiny stand-in: a full-size random VGGish is slow on CPU
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(__import__("yaml").safe_dump(cfg))
    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["bench", "--checkpoint", str(path), "--config", str(cfg_path),
                                 "--demo-dir", str(demo_corpus.root), "--subsets", "s4", "--no-overlays",
                                 "--no-controls", "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = __import__("json").loads((out / "results.json").read_text())
    assert data["model"] == "sama-avs-official" and data["recipe"]["resize"] == "square"
    assert any("released checkpoint (sama-avs-official) converted on reading: 197 keys -> model" in n
               for n in data["notes"])


def test_gavs_official_format_is_registered(tmp_path):
    """The GAVS fixture (official layout, tiny) through the same registry: detected by
    read_checkpoint, converted with zero unexpected keys."""
    state = torch.load(Path(__file__).parent / "data" / "official" / "gavs" / "official_state_dict.pt",
                       weights_only=True)
    path = tmp_path / "gavs.pth"
    torch.save(state, path)
    cfg = load_config("gavs-tiny-public-code")
    _, model_state, _, report = convert_official(state, "gavs-official", cfg)
    assert report.clean and report.unexpected == {} and report.missing == []
    assert FORMATS["gavs-official"].detect(state) and not FORMATS["sama-avs-official"].detect(state)
    with pytest.raises(CheckpointError, match="gavs-official checkpoint does not fit gavs-vit-b-public-code"):
        read_checkpoint(path)  # detected; the default config is ViT-B, the fixture tiny: refused, named
