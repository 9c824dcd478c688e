"""AAVS and Stepping Stones on the current transformers: equal to the official code at tiny size
(fixtures recorded from GeWu-Lab/Stepping-Stones, tests/data/official/aavs/README.md), parameter counts
against the issue's figures, the two-phase recipe, and training through the trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import Mask2FormerForUniversalSegmentation

from avsynth.errors import SourceError
from avsynth.modeling.aavs import (
    Aavs,
    aavs_f_scores,
    convert_official_aavs,
    load_mask2former_pretrained,
    load_official_aavs,
    mask2former_config,
)
from avsynth.modeling.registry import build_model, load_config, parameter_counts
from avsynth.modeling.stepping_stones import SteppingStones

FIXTURES = Path(__file__).resolve().parent / "data" / "official" / "aavs"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fixture(name: str) -> dict:
    return torch.load(FIXTURES / name, weights_only=True)


def _tiny_model(cls, record: dict, queries: int, labels: int):
    """The fixture's architecture (make_fixtures.py: tiny arch, 32² input, audio hidden 32)."""
    m2f = Mask2FormerForUniversalSegmentation(mask2former_config("tiny", queries, [f"c{i}" for i in range(labels)]))
    model = cls(m2f, audio_hidden_dim=32, image_size=32).eval()
    return model


def _pth(tmp_path: Path, rec: dict) -> Path:
    """The fixture's state dict as the official code saves it (``torch.save(model.state_dict())``)."""
    path = tmp_path / "official.pth"
    torch.save(rec["state_dict"], path)
    return path


def _official_labels(gt: torch.Tensor):
    """Mask / class labels as the official image processor makes them from class maps: one binary mask
    per class present, in increasing class order."""
    classes = [torch.unique(m) for m in gt]
    return [torch.stack([(m == c).float() for c in cl]) for m, cl in zip(gt, classes)], classes


@pytest.mark.parametrize("name, cls, queries, labels", [
    ("aavs_stage1_tiny.pt", Aavs, 6, 2),
    ("stepping_stones_stage2_tiny.pt", SteppingStones, 8, 5),
])
def test_forward_and_loss_equal_the_official_code(name, cls, queries, labels, tmp_path):
    rec = _fixture(name)
    model = _tiny_model(cls, rec, queries, labels)
    missing = load_official_aavs(model, _pth(tmp_path, rec))
    assert all("swin.layernorm" in k for k in missing)  # transformers 5's extra (unused) LayerNorm only
    with torch.no_grad():
        extra = (rec["stage1_mask"],) if "stage1_mask" in rec else ()
        out = model(rec["pixel_values"], rec["audio"], *extra)
        torch.manual_seed(rec["loss_seed"])  # the official seed right before its forward + loss
        loss = model.loss_from_labels(out, *_official_labels(rec["gt"].long()))
        torch.manual_seed(rec["loss_seed"])
        loss_from_maps = model.loss(out, rec["gt"].long())
    torch.testing.assert_close(out.aux["class_queries_logits"], rec["class_queries_logits"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.aux["masks_queries_logits"], rec["masks_queries_logits"], atol=1e-5, rtol=0)
    official = rec["loss"].reshape(())  # the official loss is a [1] tensor
    torch.testing.assert_close(loss, official, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(loss_from_maps, official, atol=1e-5, rtol=1e-6)


def test_binary_logits_are_the_official_post_processing(tmp_path):
    rec = _fixture("aavs_stage1_tiny.pt")
    model = _tiny_model(Aavs, rec, 6, 2)
    load_official_aavs(model, _pth(tmp_path, rec))
    with torch.no_grad():
        out = model(rec["pixel_values"], rec["audio"])
    # the official post_process_binary_segmentation, stated from its definition on the recorded outputs
    masks = torch.nn.functional.interpolate(rec["masks_queries_logits"], size=(32, 32), mode="bilinear",
                                            align_corners=False).sigmoid()
    probs = rec["class_queries_logits"].softmax(-1)[..., :2]
    scores = torch.einsum("bqc,bqhw->bchw", probs, masks)
    torch.testing.assert_close(out.logits[:, 0], scores[:, 1] - scores[:, 0], atol=1e-5, rtol=0)
    assert torch.equal(out.logits[:, 0] > 0, scores.argmax(1) == 1)
    torch.testing.assert_close(aavs_f_scores(scores), torch.sigmoid(2 * scores[:, 1] - scores[:, 0]))
    full = model.postprocess(out.logits[:1], (32, 32), (224, 224))
    assert full.shape == (1, 1, 224, 224)


def test_audio_enters_the_queries_frame_by_frame(tmp_path):
    rec = _fixture("aavs_stage1_tiny.pt")
    model = _tiny_model(Aavs, rec, 6, 2)
    load_official_aavs(model, _pth(tmp_path, rec))
    with torch.no_grad():
        real = model(rec["pixel_values"], rec["audio"]).aux["class_queries_logits"]
        other = rec["audio"].clone()
        other[1] = -other[1]  # change the audio of frame 1 only
        changed = model(rec["pixel_values"], other).aux["class_queries_logits"]
        blind = model(rec["pixel_values"], None).aux["class_queries_logits"]
    assert not torch.allclose(real[1], changed[1])
    torch.testing.assert_close(real[0], changed[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(real[2], changed[2], atol=1e-6, rtol=0)
    assert not torch.allclose(real, blind)


def test_official_key_map_and_bad_files(tmp_path):
    rec = _fixture("aavs_stage1_tiny.pt")
    sd = rec["state_dict"]
    converted = convert_official_aavs(sd)
    # official (transformers 4.35) → current names, as stated in the two releases
    pre = "m2f.model.pixel_level_module.encoder."
    official = "model.model.pixel_level_module.encoder.encoder.layers.0.blocks.0."
    assert torch.equal(converted[pre + "swin.encoder.layers.0.blocks.0.attention.q_proj.weight"],
                       sd[official + "attention.self.query.weight"])
    assert torch.equal(converted[pre + "swin.encoder.layers.0.blocks.0.mlp.fc2.bias"],
                       sd[official + "output.dense.bias"])
    assert torch.equal(converted[pre + "swin.encoder.layers.0.blocks.0.mlp.swin_adapt_3.2.weight"],
                       sd[official + "output.swin_adapt_3.2.weight"])
    assert torch.equal(converted["audio_proj.0.weight"], sd["audio_proj.0.weight"])
    assert not any(k.endswith("relative_position_index") for k in converted)
    bad = tmp_path / "bad.pth"
    torch.save({"encoder.weight": torch.zeros(1)}, bad)
    with pytest.raises(SourceError, match="bad.pth"):
        load_official_aavs(_tiny_model(Aavs, rec, 6, 2), bad)
    with pytest.raises(SourceError, match="do not fit"):  # a 6-query AVS file into an 8-query, 5-label model
        load_official_aavs(_tiny_model(SteppingStones, rec, 8, 5), _pth(tmp_path, rec))


def test_pretrained_mask2former_loads_from_a_local_4x_checkpoint(tmp_path):
    """A from_pretrained directory in the transformers-4.x layout (the hub's ADE20k Swin-B is one)
    loads onto the current names; the class head of another label count stays fresh."""
    rec = _fixture("aavs_stage1_tiny.pt")
    state = {k[len("model."):]: v for k, v in rec["state_dict"].items()
             if k.startswith("model.") and "avs_adapt" not in k and "swin_adapt" not in k}
    (tmp_path / "m2f").mkdir()
    torch.save(state, tmp_path / "m2f" / "pytorch_model.bin")
    m2f = Mask2FormerForUniversalSegmentation(mask2former_config("tiny", 6, ["a", "b", "c"]))
    fresh, unused = load_mask2former_pretrained(m2f, tmp_path / "m2f")
    head = {"class_predictor.weight", "class_predictor.bias", "criterion.empty_weight"}  # 3 labels, not 2
    assert set(fresh) == head | {k for k in m2f.state_dict() if "swin.layernorm" in k}
    assert set(unused) == head
    q = "model.transformer_module.queries_features.weight"
    assert torch.equal(m2f.state_dict()[q], state[q])


# ---- parameter counts: the issue's figures (independent provenance) --------------------------------
SWIN_ADAPTERS, PIXEL_ADAPTERS, DECODER_ADAPTERS, AUDIO_PROJ = 7_009_664, 198_528, 297_792, 197_376
#: Swin-B Mask2Former, 150 classes / 100 queries: transformers 4.x, 5.x (one extra LayerNorm)
BASE_4X, BASE_5X = 106_922_191, 106_924_239


def _base() -> int:
    import transformers

    return BASE_5X if int(transformers.__version__.split(".")[0]) >= 5 else BASE_4X


def test_full_mask2former_matches_the_issue():
    with torch.device("meta"):
        m2f = Mask2FormerForUniversalSegmentation(mask2former_config("swin-b", 100, [str(i) for i in range(150)]))
    assert sum(p.numel() for p in m2f.parameters()) == _base()


def test_parameter_counts_match_the_issue():
    hidden = 256
    adapters = SWIN_ADAPTERS + PIXEL_ADAPTERS + DECODER_ADAPTERS + AUDIO_PROJ
    head_150 = hidden * 151 + 151
    # AAVS: 30 queries (position + content embeddings), 2 labels (+ no-object)
    aavs = parameter_counts(load_config("aavs-swin-b"))
    base_aavs = _base() - 2 * (100 - 30) * hidden - head_150 + (hidden * 3 + 3)
    assert aavs.total == base_aavs + adapters
    assert aavs.trainable == 2 * 30 * hidden + (hidden * 3 + 3) + PIXEL_ADAPTERS + DECODER_ADAPTERS + AUDIO_PROJ
    assert parameter_counts(load_config("aavs-avss-swin-b")).total == aavs.total
    # Stepping Stones: 100 queries, 71 labels, 3 learned prompt embeddings; content queries frozen
    ss = parameter_counts(load_config("stepping-stones-swin-b"))
    head_71 = hidden * 72 + 72
    assert ss.total == _base() - head_150 + head_71 + adapters + 3 * hidden
    assert ss.trainable == 100 * hidden + head_71 + PIXEL_ADAPTERS + DECODER_ADAPTERS + AUDIO_PROJ + 3 * hidden


def test_phase2_adds_the_swin_adapters():
    with torch.device("meta"):
        model = build_model(load_config("aavs-swin-b"), load_weights=False)
    before, total = model.parameter_counts()
    model.start_phase2(seed=0)
    after, total2 = model.parameter_counts()
    assert total2 == total and after - before == SWIN_ADAPTERS
    tiny = build_model(load_config("aavs-tiny"))
    adapters = tiny.swin_adapters()
    assert all(float(p.abs().sum()) == 0.0 for a in adapters for p in a.parameters())  # phase 1: identity
    tiny.start_phase2(seed=0)
    assert all(float(a[0].weight.detach().abs().sum()) > 0 for a in adapters)


# ---- training through the trainer ---------------------------------------------------------------
def test_two_phase_training_on_shards(tmp_path):
    from avsynth.training.trainer import TrainConfig, train
    from tests._tiny_shards import make_shard_dir

    shards = make_shard_dir(tmp_path / "shards", rows={"train": 6, "validation": 3, "test": 1},
                            shards={"train": 1, "validation": 1, "test": 1})
    out = tmp_path / "run"
    result = train(TrainConfig(out=out, model="aavs-tiny", data=str(shards), epochs=2, num_workers=0,
                               progress=False, log_every=1, unfreeze=("m2f.model.transformer_module.",)))
    assert result.completed and len(result.history) == 2
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    phase2 = [e for e in events if e["event"] == "phase2"]
    assert len(phase2) == 1 and phase2[0]["epoch"] == 2 and phase2[0]["lr"] == 5e-4  # aavs-tiny.yaml
    start = next(e for e in events if e["event"] == "start")
    assert phase2[0]["trainable_params"] - start["trainable_params"] == sum(
        p.numel() for a in build_model(load_config("aavs-tiny")).swin_adapters() for p in a.parameters())
    epochs = [e for e in events if e["event"] == "epoch"]
    assert epochs[0]["lr"] == 1e-3 and epochs[1]["lr"] == 5e-4  # constant, no scheduler


# ---- the two-stage AVSS pipeline --------------------------------------------------------------------
def test_stage1_masks_written_once_and_stage2_trains_on_them(demo_corpus, tmp_path):
    import numpy as np
    from PIL import Image

    from avsynth.modeling.checkpoint import save_checkpoint
    from avsynth.modeling.predictor import AVPredictor
    from avsynth.modeling.registry import build_vggish_for
    from avsynth.sources.avsbench import audio_windows, load_audio, load_frame
    from avsynth.training.avss import (
        AVSSTrainConfig,
        evaluate_avss,
        load_avss_video,
        mask_path,
        read_stage1_masks,
        train_avss,
        write_stage1_masks,
    )

    root = Path(demo_corpus.avsbench_root)
    from avsynth.sources.avsbench import AVSBenchSource

    val = AVSBenchSource(root, subset="avss").videos("val")[:2]
    stage1 = build_model(load_config("aavs-tiny"))
    save_checkpoint(stage1, tmp_path / "stage1.pt")
    masks = tmp_path / "masks"
    assert write_stage1_masks(tmp_path / "stage1.pt", val, masks) == {"written": 2, "kept": 0}
    assert write_stage1_masks(tmp_path / "stage1.pt", val, masks) == {"written": 0, "kept": 2}
    v = val[0]
    png = np.asarray(Image.open(mask_path(masks, v, 0)))
    assert png.shape == (224, 224) and set(np.unique(png)) <= {0, 255}
    # the PNG is the predictor's mask of that frame (official layout MASKS/<label>/<uid>/<i>.png)
    assert mask_path(masks, v, 0) == masks / v.label / v.uid / "0.png"
    vggish = build_vggish_for(stage1.config)
    audio = vggish.embed_windows(audio_windows(load_audio(v.audio_path), v.num_frames), 16000)
    logits = AVPredictor(stage1.eval()).predict([load_frame(p, 224) for p in v.frame_paths], audio)
    assert np.array_equal(png > 0, (logits[0] > 0).numpy())
    assert torch.equal(read_stage1_masks(masks, v, [0])[0], torch.from_numpy(png / 255.0).float())
    mask_path(masks, v, 1).unlink()
    with pytest.raises(SourceError, match=f"{v.uid}/1.png"):
        read_stage1_masks(masks, v, [0, 1])
    write_stage1_masks(tmp_path / "stage1.pt", val, masks)  # restores the missing one

    result = train_avss(AVSSTrainConfig(root=root, out=tmp_path / "s2", model="stepping-stones-tiny",
                                        stage1_masks=masks, epochs=2, seed=0, device="cpu", max_videos=2,
                                        val_videos=2))
    assert [h["phase"] for h in result["history"]] == [1, 2]
    assert [h["lr"] for h in result["history"]] == [1e-3, 5e-4]
    assert (tmp_path / "s2" / "best.pt").is_file() and 0.0 <= result["best_miou"] <= 1.0
    lines = (tmp_path / "s2" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    model = build_model(load_config("stepping-stones-tiny"))
    data = [load_avss_video(x, vggish, train=False) for x in val]
    frames = sum(len(d.frame_ids) for d in data)
    assert evaluate_avss(model, data, masks)["frames"] == frames
    padded = evaluate_avss(model, data, masks, pad_to=10)
    assert padded["frames"] == 10 * len(data)
    assert {"miou_no_bg", "miou_official_no_bg", "fscore"} <= set(padded)


@pytest.mark.slow
def test_bench_avss_and_aavs_in_the_binary_protocols(demo_corpus, tmp_path):
    from typer.testing import CliRunner

    from avsynth.cli import app
    from avsynth.modeling.checkpoint import save_checkpoint

    root = str(demo_corpus.avsbench_root)
    save_checkpoint(build_model(load_config("aavs-tiny")), tmp_path / "s1.pt")
    save_checkpoint(build_model(load_config("stepping-stones-tiny")), tmp_path / "s2.pt")
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "--task", "avss", "--checkpoint", str(tmp_path / "s2.pt"), "--avsbench", root,
                              "--stage1-masks", str(tmp_path / "masks"), "--stage1-checkpoint", str(tmp_path / "s1.pt"),
                              "--out", str(tmp_path / "rep"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "rep" / "avss_results.json").read_text())
    official, ours = report["protocols"]["official"], report["protocols"]["stepping_stones"]
    assert official["frames"] == 10 * report["videos"]  # v1s / v1m padded to 10 (no v2 in the demo tree)
    assert ours["frames"] == 5 * report["videos"] and report["stage1_masks_written"]["written"] == report["videos"]
    # JSON: fractions 0-1; report and console: percent, the unit in every header
    md = (tmp_path / "rep" / "avss_results.md").read_text()
    assert "| mIoU (%) | F (%) | mIoU no bg ([1:]) (%) | F no bg ([1:]) (%) | mIoU official no bg ([:-1]) (%) |" in md
    for name, r in report["protocols"].items():
        keys = ("miou", "fscore", "miou_no_bg", "fscore_no_bg", "miou_official_no_bg")
        assert all(0 <= r[k] <= 1 for k in keys)
        assert f"| {name} | {r['frames']} | " + " | ".join(f"{100 * r[k]:.2f}" for k in keys) + " |" in md
        assert (f"{name}: mIoU {100 * r['miou']:.2f}% F {100 * r['fscore']:.2f}% (no background: mIoU "
                f"{100 * r['miou_no_bg']:.2f}%); {r['frames']} frames") in res.output
    # the binary AAVS in the S4 protocol (AVPredictor + the official metric)
    res = runner.invoke(app, ["bench", "--checkpoint", str(tmp_path / "s1.pt"), "--avsbench", root,
                              "--subsets", "s4", "--out", str(tmp_path / "bin"), "--device", "cpu", "--no-overlays"])
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "bin" / "results.json").read_text())
    assert "aavs-tiny" in json.dumps(results) and "miou" in json.dumps(results)
    # a binary model is refused by --task avss with a one-line error (exit 2)
    res = runner.invoke(app, ["bench", "--task", "avss", "--checkpoint", str(tmp_path / "s1.pt"), "--avsbench", root,
                              "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "binary model" in res.output


@pytest.mark.parametrize("name, fmt, family, queries, labels", [
    ("aavs_stage1_tiny.pt", "aavs-official", "aavs", 6, 2),
    ("stepping_stones_stage2_tiny.pt", "stepping-stones-official", "stepping_stones", 8, 5),
])
def test_convert_checkpoint_cli_takes_released_aavs_files(name, fmt, family, queries, labels, tmp_path):
    """`avsynth convert-checkpoint --from aavs-official|stepping-stones-official` on a file in the
    released layout (the fixture's state dict): every official tensor placed, 0 unexpected, the only
    missing keys transformers 5's unused Swin layernorm (explained), same outputs as the official code."""
    import yaml
    from typer.testing import CliRunner

    from avsynth.cli import app
    from avsynth.modeling.checkpoint import load_checkpoint

    rec = _fixture(name)
    cfg = {"name": f"{family}-fixture", "family": family, "seed": 0,
           "mask2former": {"arch": {"base": "tiny", "image_size": 32}, "num_queries": queries, "labels": [f"c{i}" for i in range(labels)]},
           "vggish": {"arch": "tiny"}, "model": {"audio_hidden_dim": 32}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    dst = tmp_path / "converted.pt"
    r = CliRunner().invoke(app, ["convert-checkpoint", str(_pth(tmp_path, rec)), str(dst), "--from", fmt,
                                 "--config", str(tmp_path / "cfg.yaml")])
    assert r.exit_code == 0, r.output
    relpos = {k: v for k, v in rec["state_dict"].items() if k.endswith("relative_position_index")}
    assert len(relpos) == 4  # one Swin block per stage in the tiny arch: recomputed buffers, not weights
    assert f"{len(rec['state_dict']) - len(relpos)} keys -> model" in r.output
    assert "unexpected keys: 0" in r.output and "(0 unexplained)" in r.output
    model = load_checkpoint(dst).eval()
    buffers = {n: b for n, b in model.named_buffers() if n.endswith("relative_position_index")}
    assert len(buffers) == 4  # transformers 5 stores the index flat, 4.35 as a square
    assert sorted(b.flatten().tolist() for b in buffers.values()) == sorted(v.flatten().tolist() for v in relpos.values())
    with torch.no_grad():
        extra = (rec["stage1_mask"],) if "stage1_mask" in rec else ()
        out = model(rec["pixel_values"], rec["audio"], *extra)
    torch.testing.assert_close(out.aux["class_queries_logits"], rec["class_queries_logits"], atol=1e-5, rtol=0)
