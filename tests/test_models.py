"""SAMA-AVS, AP-SAM and GAVS on tiny configs: shapes, what trains, SAMA-AVS's two properties,
checkpoints through the real loaders, determinism (GAVS against its official code: test_gavs.py)."""

from __future__ import annotations

import copy
import logging

import pytest
import torch

from avsynth.errors import SourceError
from avsynth.modeling import (
    CheckpointError,
    ModelConfigError,
    build_model,
    build_sam,
    list_configs,
    load_checkpoint,
    load_config,
    load_sam_checkpoint,
    parameter_counts,
    save_checkpoint,
)
from avsynth.modeling.losses import cosine_triplet_loss, soft_iou_loss
from avsynth.modeling.sam import SAM_ARCHS
from avsynth.modeling.vggish import VGGish

TINY = ["sama-avs-tiny", "ap-sam-tiny", "gavs-tiny"]


def batch(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(b, 3, 64, 64, generator=g)
    audio = torch.randn(b, 128, generator=g)
    gt = (torch.rand(b, 1, 64, 64, generator=g) > 0.6).float()
    return images, audio, gt


@pytest.fixture(params=TINY)
def tiny(request):
    return load_config(request.param)


def test_shipped_configs():
    names = set(list_configs())
    for required in ["sama-avs-vit-h", "sama-avs-vit-b", "ap-sam-vit-h", "gavs-vit-b", *TINY]:
        assert required in names


def test_output_shapes(tiny):
    model = build_model(tiny)
    images, audio, _ = batch(3)
    out = model(images, audio)
    assert out.logits.shape == (3, 1, 32, 32) and out.iou.shape == (3, 1)
    assert model.low_res_size == 32 and model.image_size == 64


def intended_trainable(family: str, name: str, tune_v: int = 2) -> bool:
    """The papers' trainable sets, spelled out independently of the models' own predicates."""
    decoder_used = name.startswith("sam.mask_decoder.") and not (
        name.startswith("sam.mask_decoder.iou_prediction_head.")
        or any(name.startswith(f"sam.mask_decoder.output_hypernetworks_mlps.{i}.") for i in (1, 2, 3))
    )
    if family == "sama_avs":
        return name.startswith("adapters.") or decoder_used
    if family == "ap_sam":
        return name.startswith("audio_prompt.") or decoder_used
    # GAVS: the public code's run_v1m_x.py:109-134 (names with adapter_tf / audio_proj; adapter_v of
    # blocks >= tune_v; block norms from tune_v + 1) plus the paper's noise and visual projection
    heads = ("visual_proj.", "noise.", "sam.mask_decoder.audio_proj.")
    adapter_v = any(name.startswith(f"sam.image_encoder.blocks.{b}.adapter_v.") for b in range(tune_v, 4))
    late_vit_norm = any(name.startswith(f"sam.image_encoder.blocks.{b}.norm") for b in range(tune_v + 1, 4))
    adapter_tf = any(name.startswith(f"sam.mask_decoder.transformer.layers.{j}.adapter_tf.") for j in (0, 1))
    return name.startswith(heads) or adapter_v or late_vit_norm or adapter_tf


def test_exactly_the_intended_parameters_train(tiny):
    model = build_model(tiny)
    model.train()
    images, audio, gt = batch()
    loss = model.loss(model(images, audio), gt)
    loss.backward()
    for name, p in model.named_parameters():
        want = intended_trainable(tiny["family"], name)
        assert p.requires_grad == want, name
        if want:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
        else:
            assert p.grad is None, f"gradient reached frozen {name}"
    assert {id(p) for p in model.trainable_parameters()} == {
        id(p) for n, p in model.named_parameters() if intended_trainable(tiny["family"], n)
    }


def test_optimizer_step_changes_only_trainable(tiny):
    model = build_model(tiny)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, weight_decay=0.1)
    images, audio, gt = batch()
    model.loss(model(images, audio), gt).backward()
    opt.step()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]) != (k in trainable), k


def test_sama_zero_adapters_reproduce_vanilla_sam():
    model = build_model(load_config("sama-avs-tiny")).eval()
    images, audio, _ = batch()
    vanilla = model.sam.image_encoder(images)
    assert not torch.equal(model.encode_image(images, audio), vanilla)  # adapters do something
    with torch.no_grad():
        model.adapters.shared_up.weight.zero_()
        model.adapters.shared_up.bias.zero_()
    assert torch.equal(model.encode_image(images, audio), vanilla)
    assert torch.equal(model.encode_image(images, None), vanilla)


def test_sama_vit_h_adapter_count_is_the_papers():
    cfg = load_config("sama-avs-vit-h")
    with torch.device("meta"):
        model = build_model(cfg, load_weights=False)
        vggish = VGGish()
    adapters = sum(p.numel() for p in model.adapters.parameters())
    assert adapters == 2_770_176 == 32 * (128 * 512 + 512) + 512 * 1280 + 1280
    # "The rest": SAM ViT-H (image encoder + prompt encoder + mask decoder) plus the VGGish
    # network, i.e. everything in the SAMA-AVS system except the adapters.
    sam = sum(p.numel() for n, p in model.named_parameters() if n.startswith("sam."))
    rest = sam + sum(p.numel() for p in vggish.parameters())
    assert (sam, rest) == (641_090_608, 713_231_792)
    assert round(100 * adapters / rest, 4) == 0.3884
    assert parameter_counts(cfg).total == sam + adapters


def test_ap_sam_vit_h_and_gavs_vit_b_counts():
    ap = parameter_counts(load_config("ap-sam-vit-h"))
    decoder_used = 3_506_304  # SAM ViT-H mask decoder minus multimask hypernetworks and IoU head
    prompt_mlp = (128 * 256 + 256) + (256 * 256 + 256)
    assert ap.trainable == decoder_used + prompt_mlp
    assert ap.total - ap.trainable == 641_090_608 - decoder_used  # the frozen rest of SAM
    # GAVS public code, tune_v 9: audio_proj 128-512-256, adapter_v (768-128-768) in blocks 9-11, the
    # norms of blocks 10-11, adapter_tf (256-128-256) in both decoder layers
    public = parameter_counts(load_config("gavs-vit-b-public-code"))
    audio_proj = 128 * 512 + 512 + 512 * 256 + 256
    adapter_v = 768 * 128 + 128 + 128 * 768 + 768
    adapter_tf = 256 * 128 + 128 + 128 * 256 + 256
    assert public.sam_arch == "vit_b"
    assert public.trainable == audio_proj + 3 * adapter_v + 2 * 2 * 2 * 768 + 2 * adapter_tf
    paper = parameter_counts(load_config("gavs-vit-b"))  # + adaptive noise (mu, sigma) + visual cue
    assert paper.trainable == public.trainable + 2 * 256 + (768 * 256 + 256)


def test_checkpoint_round_trip_full(tmp_path, tiny):
    model = build_model(tiny).eval()
    with torch.no_grad():  # move away from the seeded initialisation
        for p in model.trainable_parameters():
            p.add_(0.01)
    path = save_checkpoint(model, tmp_path / "m.pt", tiny)
    loaded = load_checkpoint(path).eval()
    images, audio, _ = batch()
    assert torch.equal(model(images, audio).logits, loaded(images, audio).logits)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert loaded.config == model.config


def test_checkpoint_trainable_only_rebuilds_from_sam_checkpoint(tmp_path):
    torch.manual_seed(5)
    sam = build_sam(SAM_ARCHS["tiny"])
    torch.save(sam.state_dict(), tmp_path / "sam_tiny.pth")
    cfg = load_config("sama-avs-tiny")
    cfg["sam"]["checkpoint"] = str(tmp_path / "sam_tiny.pth")
    model = build_model(cfg).eval()
    assert torch.equal(model.sam.image_encoder.pos_embed, sam.image_encoder.pos_embed)
    with torch.no_grad():
        model.adapters.shared_up.bias.add_(1.0)
    save_checkpoint(model, tmp_path / "small.pt", trainable_only=True)
    full = save_checkpoint(model, tmp_path / "full.pt")
    assert (tmp_path / "small.pt").stat().st_size < full.stat().st_size / 2
    loaded = load_checkpoint(tmp_path / "small.pt").eval()
    images, audio, _ = batch()
    assert torch.equal(model(images, audio).logits, loaded(images, audio).logits)
    moved = tmp_path / "elsewhere.pth"  # the SAM weights moved: override the stored path
    (tmp_path / "sam_tiny.pth").rename(moved)
    with pytest.raises(SourceError, match="sam_tiny.pth"):
        load_checkpoint(tmp_path / "small.pt")
    cfg["sam"]["checkpoint"] = str(moved)
    relocated = load_checkpoint(tmp_path / "small.pt", config=cfg).eval()
    assert torch.equal(model(images, audio).logits, relocated(images, audio).logits)
    cfg["sam"]["checkpoint"] = None
    model.config = cfg
    save_checkpoint(model, tmp_path / "orphan.pt", trainable_only=True)
    with pytest.raises(CheckpointError, match="sam.checkpoint"):
        load_checkpoint(tmp_path / "orphan.pt")


def test_checkpoint_errors(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(SourceError, match="not an avsynth model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    model = build_model(load_config("ap-sam-tiny"))
    path = save_checkpoint(model, tmp_path / "ap.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"] = load_config("sama-avs-tiny")  # weights of one model, config of another
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="missing keys"):
        load_checkpoint(path)


def test_sam_loader_reports_missing_and_unexpected(tmp_path, caplog):
    torch.manual_seed(0)
    src = build_sam(SAM_ARCHS["tiny"])
    state = src.state_dict()
    dropped = {k: v for k, v in state.items() if not k.startswith("prompt_encoder.")}
    dropped["extra.weight"] = torch.zeros(2)
    torch.save(dropped, tmp_path / "sam.pth")
    dst = build_sam(SAM_ARCHS["tiny"])
    with caplog.at_level(logging.WARNING):
        report = load_sam_checkpoint(dst, tmp_path / "sam.pth")
    assert report.unexpected == ["extra.weight"]
    assert report.missing == sorted(k for k in state if k.startswith("prompt_encoder."))
    assert "prompt_encoder.no_mask_embed.weight" in report.missing
    assert "missing keys" in caplog.text and "extra.weight" in caplog.text
    assert torch.equal(dst.image_encoder.pos_embed, src.image_encoder.pos_embed)
    # a full, matching checkpoint loads clean
    torch.save(state, tmp_path / "full.pth")
    assert load_sam_checkpoint(build_sam(SAM_ARCHS["tiny"]), tmp_path / "full.pth").clean
    # missing encoder weights raise unless allowed; wrong shapes always raise
    torch.save({k: v for k, v in state.items() if not k.startswith("image_encoder.")}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="image-encoder"):
        load_sam_checkpoint(build_sam(SAM_ARCHS["tiny"]), tmp_path / "x.pth")
    assert load_sam_checkpoint(build_sam(SAM_ARCHS["tiny"]), tmp_path / "x.pth", allow_missing_encoder=True).missing
    bad = dict(state)
    bad["image_encoder.pos_embed"] = torch.zeros(1, 4, 4, 32)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_sam_checkpoint(build_sam(SAM_ARCHS["tiny"]), tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(SourceError, match="junk.pth"):
        load_sam_checkpoint(build_sam(SAM_ARCHS["tiny"]), tmp_path / "junk.pth")


def test_determinism(tiny):
    state = torch.random.get_rng_state()
    a, b = build_model(tiny), build_model(tiny)
    assert torch.equal(torch.random.get_rng_state(), state)  # building leaves the global RNG alone
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k
    images, audio, gt = batch()
    a.eval()
    assert torch.equal(a(images, audio).logits, a(images, audio).logits)
    a.train()
    b.train()
    torch.manual_seed(3)
    la = a.loss(a(images, audio), gt)
    torch.manual_seed(3)
    lb = b.loss(b(images, audio), gt)
    assert torch.equal(la, lb)
    other = copy.deepcopy(tiny)
    other["seed"] = 1
    c = build_model(other)
    assert any(not torch.equal(v, w) for v, w in zip(a.state_dict().values(), c.state_dict().values()))


def test_audio_changes_the_prediction(tiny):
    model = build_model(tiny).eval()
    images, audio, _ = batch()
    assert not torch.equal(model(images, audio).logits, model(images, audio.flip(0)).logits)


def test_losses():
    logits = torch.full((1, 1, 8, 8), -20.0)
    logits[..., :4, :] = 20.0
    gt = torch.zeros(1, 1, 8, 8)
    gt[..., :4, :] = 1
    assert soft_iou_loss(logits, gt) < 1e-6
    assert soft_iou_loss(-logits, gt) > 0.9
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert torch.isclose(cosine_triplet_loss(a, a, margin=0.2), torch.tensor(0.0))
    assert torch.isclose(cosine_triplet_loss(a, a.flip(0), margin=0.2), torch.tensor(1.2))
    assert cosine_triplet_loss(a[:1], a[:1]) == 0


def test_config_validation(tmp_path):
    cfg = load_config("sama-avs-tiny")
    with pytest.raises(ModelConfigError, match="unknown keys"):
        build_model({**cfg, "colour": "red"})
    with pytest.raises(ModelConfigError, match="family"):
        build_model({**cfg, "family": "segformer"})
    with pytest.raises(ModelConfigError, match="no parameters"):
        build_model({**cfg, "model": {"tune_v": 3}})
    with pytest.raises(ModelConfigError, match="sam.arch"):
        build_model({**cfg, "sam": {"arch": "vit_x"}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ModelConfigError, match="bad.yaml"):
        load_config(bad)
    custom = {**cfg, "sam": {"arch": {"base": "tiny", "encoder_depth": 2, "encoder_global_attn_indexes": [1]}}}
    assert len(build_model(custom).adapters.down) == 2


def test_sam_vit_b_l_h_build_on_meta():
    """The official shapes: every state-dict key and shape equals segment_anything's own builders'
    (``sam_model_registry``, which builds the released checkpoints' modules), and the totals are
    those of the released ``sam_vit_{b,l,h}`` checkpoints."""
    from segment_anything import sam_model_registry

    expected = {"vit_b": 93_735_472, "vit_l": 312_342_832, "vit_h": 641_090_608}
    for name in ("vit_b", "vit_l", "vit_h"):
        with torch.device("meta"):
            sam = build_sam(SAM_ARCHS[name])
            official = sam_model_registry[name]()
        shapes = {k: tuple(v.shape) for k, v in sam.state_dict().items()}
        assert shapes == {k: tuple(v.shape) for k, v in official.state_dict().items()}, name
        assert sum(p.numel() for p in sam.parameters()) == expected[name], name
        assert sam.image_encoder.img_size == 1024


def test_sam_tiny_parameter_count_by_hand():
    """SAM_ARCHS["tiny"] counted by hand from segment_anything's module definitions.

    Image encoder (dim 32, 4 blocks, 2 heads → head dim 16, 8-px patches, 64² input):
      patch conv 3·8·8·32+32 = 6,176; pos_embed 8·8·32 = 2,048;
      block = 2 LayerNorms 128 + qkv 32·96+96 + proj 32·32+32 + MLP 32·128+128 + 128·32+32 = 12,704,
      plus rel-pos tables: windowed (window 4) 2·7·16 = 224, global (8×8 grid) 2·15·16 = 480;
      4 blocks = 4·12,704 + 2·224 + 2·480 = 52,224; neck 32·32 + 64 + 32·32·9 + 64 = 10,368
      → 70,816.
    Prompt encoder: 4 point embeddings + not-a-point 5·32 = 160; mask downscaling
      (1→2 k2) 10 + LN 4 + (2→8 k2) 72 + LN 16 + (8→32 k1) 288 = 390; no-mask 32 → 582.
    Mask decoder (dim 32, MLP 64, 2 heads, cross-attention downsampled to 16):
      block = self-attn 4·1,056 + cross 2·(3·528 + 544) + MLP 4,192 + 4 LN 256 = 12,928;
      2 blocks + final cross-attn 2,128 + LN 64 = 28,048; IoU token 32, 4 mask tokens 128;
      upscaling (32→8 k2) 1,032 + LN 16 + (8→4 k2) 132 = 1,180;
      4 hypernetwork MLPs 4·(1,056+1,056+132) = 8,976; IoU head 2,244 → 40,608.
    """
    sam = build_sam(SAM_ARCHS["tiny"])
    parts = {name: sum(p.numel() for p in getattr(sam, name).parameters())
             for name in ("image_encoder", "prompt_encoder", "mask_decoder")}
    assert parts == {"image_encoder": 70_816, "prompt_encoder": 582, "mask_decoder": 40_608}
    assert sum(p.numel() for p in sam.parameters()) == 112_006


def test_cli_models_lists_counts():
    from typer.testing import CliRunner

    from avsynth.cli import app

    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in map(__import__("json").loads, result.output.strip().splitlines())}
    assert set(rows) == set(list_configs())
    h = rows["sama-avs-vit-h"]
    # frozen SAM rest; the official recipe trains no_mask_embed (256) too
    assert h["total"] - h["trainable"] == 641_090_608 - 3_506_304 - 256
    assert h["vggish"] == 72_141_184
    table = CliRunner().invoke(app, ["models", "gavs-tiny"])
    # gavs-tiny trains audio_proj (128*64+64 + 64*32+32 = 10,336), adapter_v of blocks 2-3 (2 * 1,072),
    # the norms of block 3 (128), adapter_tf of 2 decoder layers (2 * 1,072), noise (64), visual_proj (1,056)
    assert table.exit_code == 0 and "gavs-tiny" in table.output and "15,872" in table.output
    missing = CliRunner().invoke(app, ["models", "no-such-model"])
    assert missing.exit_code == 2 and "no-such-model" in missing.output


def test_batched_decoder_equals_sams_own_per_image_decoder():
    from avsynth.modeling.sam import decode_masks, dense_no_mask

    torch.manual_seed(0)
    sam = build_sam(SAM_ARCHS["tiny"])
    emb = sam.image_encoder(torch.randn(3, 3, 64, 64))
    sparse = torch.randn(3, 1, 32)
    pe = sam.prompt_encoder.get_dense_pe()
    dense = dense_no_mask(sam.prompt_encoder, 3)
    with torch.no_grad():
        masks, iou = decode_masks(sam.mask_decoder, emb, pe, sparse, dense)
        for i in range(3):
            ref_masks, ref_iou = sam.mask_decoder(emb[i : i + 1], pe, sparse[i : i + 1], dense[i : i + 1], False)
            assert torch.allclose(masks[i : i + 1], ref_masks, atol=1e-5)
            assert torch.allclose(iou[i : i + 1], ref_iou, atol=1e-5)


@pytest.mark.parametrize("name", ["sama-avs-tiny", "gavs-tiny"])
def test_grad_checkpointing_gives_the_same_step(name):
    cfg = load_config(name)
    plain = build_model(cfg).train()
    cfg["model"]["grad_checkpointing"] = True
    ckpt = build_model(cfg).train()
    images, audio, gt = batch()
    for m in (plain, ckpt):
        torch.manual_seed(0)
        m.loss(m(images, audio), gt).backward()
    for (n, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        if p.requires_grad:
            assert torch.allclose(p.grad, q.grad, atol=1e-6), n
