"""The official AAVS training rules in the ordinary trainer (``GeWu-Lab/Stepping-Stones``, ``avs/``):

* S4: a train video (frame 0 annotated only) trains on 5 copies of frame 0, copy t with audio
  second t (``avs/dataset.py``: ``_idx = 0`` for v1s train inside the 5-frame loop);
* MS3: a video whose masks are all empty gets zero loss and moves no weight (``avs/utils/utility.py``
  ``get_loss`` returns a fresh zero tensor: no gradient reaches the model, ``optimizer.step()``
  skips parameters without gradients).

Expectations are stated from the fixture tree's construction (``tests/avsbench_fixture.py``: frame
i is a flat colour, second s of the audio a constant level, masks rectangles).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from avsynth.errors import AvsynthError
from avsynth.modeling.checkpoint import read_checkpoint, save_checkpoint
from avsynth.modeling.registry import build_model, build_vggish_for, load_config
from avsynth.sources.avsbench import AVSBenchSource
from avsynth.training.data import AVSBenchFrames, InputSpec, avsbench_datasets, model_image
from avsynth.training.embeddings import AudioEmbeddings
from avsynth.training.recipe import resolve_recipe
from avsynth.training.trainer import TrainConfig, empty_ms3_video, train
from tests.avsbench_fixture import pick_rows, write_semantic_tree

HOP, SPAN = 15360, 15600  # the official VGGish example cut: example t = samples [HOP t, HOP t + SPAN)


@pytest.fixture(scope="module")
def rows(labels_dir):
    return pick_rows(labels_dir / "gavs_avs_v3" / "metadata.csv", multi_object=False)


@pytest.fixture(scope="module")
def tree(tmp_path_factory, rows, labels_dir):
    return write_semantic_tree(tmp_path_factory.mktemp("aavs-rules") / "avsbench", rows,
                               labels_dir / "avsbench_avss_classes.csv", (64, 48))


@pytest.fixture(scope="module")
def tiny():
    cfg = load_config("aavs-tiny")
    return cfg, InputSpec.of(build_model(cfg)), AudioEmbeddings(build_vggish_for(cfg))


def test_configs_carry_the_rules_only_where_the_official_code_has_them():
    for name in ("aavs-tiny", "aavs-swin-b", "aavs-avss-swin-b"):
        r = resolve_recipe(load_config(name)["train"], {})
        assert (r.first_frame_per_second, r.zero_loss_empty_videos, r.batch_by) == (True, True, "video"), name
    # SAMA-AVS and GAVS train as before (GAVS's own S4 rule differs: frames 0-4 with mask 0).
    for name in ("sama-avs-vit-h", "gavs-vit-b", "gavs-vit-b-public-code"):
        r = resolve_recipe(load_config(name)["train"], {})
        assert (r.first_frame_per_second, r.zero_loss_empty_videos) == (False, False), name
    with pytest.raises(AvsynthError, match="needs batch_by: video"):
        resolve_recipe({"zero_loss_empty_videos": True}, {})
    with pytest.raises(AvsynthError, match="must be true or false"):
        resolve_recipe({"first_frame_per_second": "yes"}, {})


def test_s4_train_video_gives_frame0_once_per_audio_second(tree, tiny):
    cfg, spec, emb = tiny
    src = AVSBenchSource(tree, subset="s4")
    video = src.videos("train")[0]
    assert video.annotated == (True, False, False, False, False)
    base = tree / "v1s" / video.uid
    frame0 = model_image(np.asarray(Image.open(base / "frames" / "0.jpg").convert("RGB")), spec)[0]
    frame1 = model_image(np.asarray(Image.open(base / "frames" / "1.jpg").convert("RGB")), spec)[0]
    mask0 = torch.from_numpy((np.asarray(Image.open(base / "labels_rgb" / "0.png").convert("RGB")).sum(-1) > 0)
                            .astype(np.uint8))
    wave, sr = sf.read(base / "audio.wav", dtype="float32")
    assert sr == 16000 and len(wave) == 5 * 16000

    on = AVSBenchFrames([video], spec, emb, None, keep_mask=True, first_frame_per_second=True)
    samples = [on[i] for i in range(len(on))]
    assert [s["id"] for s in samples] == [f"{video.uid}/0"] + [f"{video.uid}/0@{t}" for t in range(1, 5)]
    assert not torch.equal(frame0, frame1)
    for t, s in enumerate(samples):
        assert torch.equal(s["image"], frame0), t  # always frame 0 ...
        assert torch.equal(s["mask"], mask0), t  # ... with its mask ...
        expected = emb.vggish.embed_clip(wave[HOP * t: HOP * t + SPAN], 16000)
        assert torch.allclose(s["audio"], expected, atol=1e-6), t  # ... and audio second t
        assert s["group"] == video.uid and s["label"] == "v1s"
    audio = torch.stack([s["audio"] for s in samples])
    assert torch.cdist(audio, audio).add(torch.eye(5)).min() > 0  # five different seconds

    off = AVSBenchFrames([video], spec, emb, None, keep_mask=True)
    assert len(off) == 1 and off[0]["id"] == f"{video.uid}/0"
    assert torch.allclose(off[0]["audio"], emb.vggish.embed_clip(wave[:SPAN], 16000), atol=1e-6)

    # validation videos (every frame annotated) keep frame i with second i
    train_ds, val_ds = avsbench_datasets(src, spec, emb, seed=0, first_frame_per_second=True)
    assert len(train_ds) == 5 * len(src.videos("train"))
    val = src.videos("val")[0]
    assert [val_ds[i]["id"] for i in range(5)] == [f"{val.uid}/{i}" for i in range(5)]


def _ms3_tree(src_tree, rows, labels_dir, root, empty: bool):
    """One MS3 train video (masks emptied when ``empty``) and one MS3 validation video."""
    sub = rows[(rows["label"] == "v1m") & rows["split"].isin(["train", "val"])].groupby("split").head(1)
    write_semantic_tree(root, sub, labels_dir / "avsbench_avss_classes.csv", (64, 48))
    if empty:
        uid = sub[sub["split"] == "train"]["uid"].iloc[0]
        for png in (root / "v1m" / uid / "labels_rgb").glob("*.png"):
            Image.fromarray(np.zeros((48, 64, 3), dtype=np.uint8)).save(png)
    return root


@pytest.mark.parametrize("empty", [True, False])
def test_all_empty_ms3_video_moves_no_weight(tree, rows, labels_dir, tmp_path, tiny, empty):
    cfg, _, _ = tiny
    root = _ms3_tree(tree, rows, labels_dir, tmp_path / "avsbench", empty)
    torch.manual_seed(1)
    start = build_model(copy.deepcopy(cfg))
    save_checkpoint(start, tmp_path / "init.pt", cfg, trainable_only=False)
    before = {k: v.clone() for k, v in start.state_dict().items()}
    # epochs 2 (phase 2 would start at epoch 1), one epoch run: one step on the one train video
    r = train(TrainConfig(out=tmp_path / "run", model="aavs-tiny", avsbench=AVSBenchSource(root, subset="ms3"),
                          epochs=2, stop_after_epochs=1, init=tmp_path / "init.pt", cpu=True,
                          num_workers=0, progress=False))
    assert r.history[0]["steps"] == 1
    after = read_checkpoint(tmp_path / "run" / "last" / "model.pt")["state_dict"]
    changed = [k for k, v in after.items() if not torch.equal(v, before[k])]
    if empty:
        assert r.history[0]["train_loss"] == 0.0
        assert changed == []  # no gradient, no AdamW step, no weight decay
    else:
        assert r.history[0]["train_loss"] > 1.0
        assert any(k.startswith("audio_proj.") for k in changed) and len(changed) > 50


def test_empty_ms3_video_predicate():
    empty = torch.zeros(5, 1, 8, 8)
    full = empty.clone()
    full[2, 0, 3, 3] = 1
    assert empty_ms3_video({"label": ["v1m"] * 5, "target": empty})
    assert empty_ms3_video({"label": ["ms3"] * 5, "target": empty})  # the object release's MS3
    assert not empty_ms3_video({"label": ["v1m"] * 5, "target": full})  # one pixel is enough
    assert not empty_ms3_video({"label": ["v1s"] * 5, "target": empty})  # official: v1m only
    assert not empty_ms3_video({"target": empty})  # shard rows carry no label
