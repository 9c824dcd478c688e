"""Tests of the AVSBench loaders on small trees laid out from the real metadata.csv."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from avsynth.errors import SourceError
from avsynth.evaluation.metrics import AVSBenchMetric, AVSSMetric
from avsynth.sources.avs_v3 import load_avs_v3_split
from avsynth.sources.avsbench import (
    AVSBenchDataset,
    AVSBenchObjectDataset,
    annotated_frames,
    binary_from_rgb,
    collate_videos,
    decode_rgb_labels,
    load_metadata,
    load_palette,
)

from .avsbench_fixture import (
    UNKNOWN_AT,
    frame_red,
    object_rect,
    objects_of,
    palette,
    pick_rows,
    second_level,
    write_object_tree,
    write_semantic_tree,
)

W, H = 48, 32


@pytest.fixture(scope="module")
def v3_dir(labels_dir) -> Path:
    return labels_dir / "gavs_avs_v3"


@pytest.fixture(scope="module")
def rows(v3_dir):
    return pick_rows(v3_dir / "metadata.csv")


@pytest.fixture(scope="module")
def tree(tmp_path_factory, rows, labels_dir) -> Path:
    odd = rows[rows["label"] == "v2"].iloc[0]["uid"]
    root = tmp_path_factory.mktemp("avsbench_semantic")
    return write_semantic_tree(root, rows, labels_dir / "avsbench_avss_classes.csv", (W, H),
                               odd_audio=odd)


@pytest.fixture(scope="module")
def pal(labels_dir):
    return palette(labels_dir / "avsbench_avss_classes.csv")


def expected_labels(a_obj: str, pal: dict, i: int) -> np.ndarray:
    lab = np.zeros((H, W), dtype=np.int64)
    for k, name in enumerate(objects_of(a_obj)):
        y0, y1, x0, x1 = object_rect(k, i, W, H)
        lab[y0:y1, x0:x1] = pal.get(name, pal["man"])[0]
    return lab


# --------------------------------------------------------------------------- metadata


def test_real_metadata_counts(v3_dir):
    df = load_metadata(v3_dir)
    assert len(df) == 11356
    counts = df.groupby(["label", "split"]).size().to_dict()
    assert counts[("v1s", "test")] == 740 and counts[("v1m", "test")] == 64
    assert counts[("v2", "test")] == 750
    assert df["uid"].map(type).eq(str).all()


def test_metadata_errors(tmp_path):
    with pytest.raises(SourceError, match="metadata.csv: metadata file not found"):
        load_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("vid,uid,split,label\na,a_0,test,v1s\n")
    with pytest.raises(SourceError, match=r"metadata.csv: missing column\(s\) s_min, s_sec, a_obj"):
        load_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text(
        "vid,uid,s_min,s_sec,a_obj,split,label\na,a_0,0,0,dog,test,v9\n")
    with pytest.raises(SourceError, match="unknown label"):
        load_metadata(tmp_path)
    with pytest.raises(SourceError, match="unknown label"):
        AVSBenchDataset(tmp_path)


def test_annotation_rules():
    assert annotated_frames("v1s", "train") == (True, False, False, False, False)
    assert annotated_frames("v1s", "test") == (True,) * 5
    assert annotated_frames("v1m", "train") == (True,) * 5
    assert annotated_frames("v2", "val") == (True,) * 10


# --------------------------------------------------------------------------- semantic release


def test_subsets_and_splits_find_the_videos(tree, rows):
    for subset, labels in (("s4", {"v1s"}), ("ms3", {"v1m"}), ("v2", {"v2"})):
        for split in ("train", "val", "test"):
            ds = AVSBenchDataset(tree, subset=subset, split=split)
            want = rows[rows["label"].isin(labels) & (rows["split"] == split)]["uid"]
            assert [v.uid for v in ds.videos] == list(want)
    everything = AVSBenchDataset(tree, subset="avss", split=None)
    assert len(everything) == len(rows) and everything.mode == "semantic"


def test_items_native_binary(tree, rows, pal):
    ds = AVSBenchDataset(tree, subset="avss", split=None, resolution=None, mode="binary")
    for k, row in enumerate(rows.to_dict("records")):
        item = ds[k]
        t = {"v1s": 5, "v1m": 5, "v2": 10}[row["label"]]
        assert item["uid"] == row["uid"] and item["category"] == row["a_obj"]
        assert item["frames"].shape == (t, 3, H, W) and item["frames"].dtype == torch.uint8
        assert item["masks"].shape == (t, H, W) and item["masks"].dtype == torch.uint8
        assert item["annotated"].tolist() == list(annotated_frames(row["label"], row["split"]))
        for i in range(t):
            assert abs(float(item["frames"][i, 0].float().mean()) - frame_red(i)) < 3
            if item["annotated"][i]:
                want = (expected_labels(row["a_obj"], pal, i) > 0).astype(np.uint8)
                if i == 0:
                    y, x = UNKNOWN_AT
                    want[y : y + 2, x : x + 2] = 1
                assert np.array_equal(item["masks"][i].numpy(), want), (row["uid"], i)
            else:
                assert int(item["masks"][i].sum()) == 0


def test_items_native_semantic_palette_decoding(tree, rows, pal):
    ds = AVSBenchDataset(tree, subset="avss", split=None, resolution=None)
    multi_seen = False
    for k, row in enumerate(rows.to_dict("records")):
        item = ds[k]
        assert item["masks"].dtype == torch.int64
        for i in np.flatnonzero(item["annotated"].numpy()):
            # the unknown colour patch decodes to background
            assert np.array_equal(item["masks"][i].numpy(), expected_labels(row["a_obj"], pal, i))
        multi_seen |= len(set(np.unique(item["masks"][0].numpy())) - {0}) > 1
    assert multi_seen  # a multi-object video decodes to several classes


def test_resize_224_official(tree, rows, pal):
    ds = AVSBenchDataset(tree, subset="v2", split="test", resolution=224, mode="semantic")
    item = ds[0]
    row = rows[rows["uid"] == item["uid"]].iloc[0]
    assert item["frames"].shape == (10, 3, 224, 224)
    assert item["masks"].shape == (10, 224, 224)
    native = Image.open(tree / "v2" / row["uid"] / "labels_rgb" / "3.png").convert("RGB")
    want = decode_rgb_labels(np.asarray(native.resize((224, 224), Image.NEAREST)))
    assert np.array_equal(item["masks"][3].numpy(), want)
    assert set(np.unique(want)) == set(np.unique(expected_labels(row["a_obj"], pal, 3)))
    frame = np.asarray(Image.open(tree / "v2" / row["uid"] / "frames" / "3.jpg").convert("RGB")
                       .resize((224, 224), Image.BILINEAR))
    assert np.array_equal(item["frames"][3].permute(1, 2, 0).numpy(), frame)


def official_window(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame i's window of the fixture's second-level audio under the official cut (start 0.96 i s,
    15600 samples), and which of its samples lie >= 300 samples from a second boundary (the
    resampled video's transitions blur there)."""
    n = 15360 * i + torch.arange(15600)
    want = torch.tensor([second_level(int(s)) for s in (n // 16000).tolist()], dtype=torch.float32)
    return want, (n % 16000 >= 300) & (n % 16000 < 15700)


def test_audio_windows_and_resampling(tree, rows):
    ds = AVSBenchDataset(tree, subset="avss", split=None)
    odd = rows[rows["label"] == "v2"].iloc[0]["uid"]
    for k, v in enumerate(ds.videos):
        item = ds[k]
        t = v.num_frames
        assert item["sample_rate"] == 16000
        # the official cut: frame i <- VGGish example i = samples [15360 i, 15360 i + 15600)
        assert item["audio_windows"].shape == (t, 15600)
        assert abs(item["audio"].numel() - t * 16000) <= 2
        for i in range(t):
            window = item["audio_windows"][i]
            want, far = official_window(i)
            tol = 1e-3 if v.uid == odd else 1e-7
            assert torch.allclose(window[far], want[far], atol=tol)


def test_uid_filter_and_pad_to(tree, rows):
    uids = list(rows["uid"].iloc[[0, 4]])
    ds = AVSBenchDataset(tree, subset="all", split=None, uids=uids)
    assert sorted(v.uid for v in ds.videos) == sorted(uids)
    with pytest.raises(SourceError, match="1 requested uid"):
        AVSBenchDataset(tree, subset="all", split=None, uids=[uids[0], "nope_0_1"])
    s4 = AVSBenchDataset(tree, subset="s4", split="test", mode="semantic", pad_to=10)
    item = s4[0]
    assert item["frames"].shape[0] == 10 and item["masks"].shape[0] == 10
    assert item["padded"].tolist() == [False] * 5 + [True] * 5
    assert item["annotated"].tolist() == [True] * 5 + [False] * 5
    assert int(item["frames"][5:].sum()) == 0 and int(item["masks"][5:].sum()) == 0


def test_missing_files(tree, rows, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy)
    row = rows[(rows["label"] == "v1s") & (rows["split"] == "test")].iloc[0]
    victim = copy / "v1s" / row["uid"] / "frames" / "2.jpg"
    victim.unlink()
    with pytest.raises(SourceError, match=r"frames/2\.jpg: file of video"):
        AVSBenchDataset(copy, subset="s4", split="test")
    ds = AVSBenchDataset(copy, subset="s4", split="test", on_missing="skip")
    assert len(ds) == 0 and ds.skipped.counts["missing file"] == 1
    (copy / "v1s" / row["uid"] / "frames" / "2.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SourceError, match="cannot decode image"):
        AVSBenchDataset(copy, subset="s4", split="test")[0]


def test_loader_feeds_the_metrics(tree):
    """Perfect logits from the loaded masks score 1 end to end (binary and semantic)."""
    ds = AVSBenchDataset(tree, subset="avss", split=None, mode="binary", resolution=None)
    loader = DataLoader(ds, batch_size=3, collate_fn=collate_videos)
    metric = AVSBenchMetric("batch4")
    for batch in loader:
        for uid, masks, ann in zip(batch["uid"], batch["masks"], batch["annotated"]):
            gt = masks[ann].float()
            metric.update(gt * 40 - 20, gt, [uid] * gt.shape[0])
    got = metric.compute()
    assert got["miou"] == pytest.approx(1.0, abs=1e-6) and got["fscore"] == pytest.approx(1.0, abs=1e-6)
    assert got["videos"] == len(ds)
    sem = AVSBenchDataset(tree, subset="avss", split=None, resolution=None)
    avss = AVSSMetric()
    for k in range(len(sem)):
        item = sem[k]
        gt = item["masks"][item["annotated"]]
        avss.update(gt, gt)
    res = avss.compute()
    present = res["classes_present"]
    assert res["miou"] == pytest.approx(present / 71)


def test_palette_helpers():
    names, colours = load_palette()
    assert len(names) == 71 and names[0] == "background" and tuple(colours[0]) == (0, 0, 0)
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = colours[70]
    rgb[1, 2] = (9, 9, 9)
    assert decode_rgb_labels(rgb).tolist() == [[70, 0, 0], [0, 0, 0]]
    assert binary_from_rgb(rgb).tolist() == [[1, 0, 0], [0, 0, 1]]


# --------------------------------------------------------------------------- AVS-V3 splits


def test_avs_v3_splits(v3_dir, tmp_path, labels_dir):
    meta = load_metadata(v3_dir)
    sizes = {}
    for path in sorted(v3_dir.glob("*.csv")):
        if path.name == "metadata.csv":
            continue
        split = load_avs_v3_split(path, meta)
        sizes[split.name] = len(split.uids)
        assert (split.table["split"] == split.name).all()
        assert (split.table["a_obj"] != "").all()
    assert sizes["seen_train"] == 4807 and sizes["unseen"] == 758
    assert sizes["1_shot_train"] == 11 and sizes["5_shot_train"] == 55
    raw = load_avs_v3_split(v3_dir / "v3_3_shot_train.csv")
    assert (raw.table["a_obj"] == "").all()  # empty without metadata
    assert set(raw.table["source_split"]) == {"v3_1_shot_train"}
    # the split's uids drive the loader on a tree laid out from their metadata rows
    k1 = load_avs_v3_split(v3_dir / "v3_1_shot_train.csv", meta)
    sub = meta[meta["uid"].isin(k1.uids[:3])]
    root = write_semantic_tree(tmp_path / "v3", sub, labels_dir / "avsbench_avss_classes.csv")
    ds = AVSBenchDataset(root, subset="all", split=None, uids=k1.uids[:3])
    assert sorted(v.uid for v in ds.videos) == sorted(k1.uids[:3])
    bad = tmp_path / "v3_1_shot_test.csv"
    bad.write_text("vid,uid\nx,x_0\n")
    with pytest.raises(SourceError, match="v3_1_shot_test.csv: missing column"):
        load_avs_v3_split(bad)


# --------------------------------------------------------------------------- object release


def test_object_release_s4_and_ms3(tmp_path):
    root = tmp_path / "avsbench_data"
    write_object_tree(root, "s4", [("vidA", "dog_barking", "test"), ("vidB", "dog_barking", "train"),
                                   ("vidC", "helicopter", "test")])
    write_object_tree(root, "ms3", [("m1", "", "test"), ("m2", "", "train")])
    s4 = AVSBenchObjectDataset(root, "s4", split="test")
    assert [v.uid for v in s4.videos] == ["vidA", "vidC"]
    item = s4[1]
    assert item["category"] == "helicopter" and item["frames"].shape == (5, 3, 224, 224)
    assert item["annotated"].all()
    for i in range(5):
        y0, y1, x0, x1 = object_rect(0, i, 224, 224)
        want = np.zeros((224, 224), dtype=np.uint8)
        want[y0:y1, x0:x1] = 1
        assert np.array_equal(item["masks"][i].numpy(), want)
        assert int(item["frames"][i, 0, 0, 0]) == frame_red(i)
        assert float(item["audio_windows"][i].mean()) == pytest.approx(float(official_window(i)[0].mean()), abs=1e-6)
    train = AVSBenchObjectDataset(root, "s4", split="train")
    assert train[0]["annotated"].tolist() == [True, False, False, False, False]
    ms3 = AVSBenchObjectDataset(root, "ms3", split=None, resolution=None)
    assert [v.uid for v in ms3.videos] == ["m1", "m2"]
    assert ms3[1]["annotated"].all() and ms3[1]["masks"].shape == (5, 224, 224)
    small = AVSBenchObjectDataset(root, "ms3", split="test", resolution=112)
    assert small[0]["frames"].shape == (5, 3, 112, 112)
    (root / "Multi-sources" / "ms3_data" / "visual_frames" / "m1" / "m1.mp4_3.png").unlink()
    with pytest.raises(SourceError, match=r"m1\.mp4_3\.png: file of video 'm1'"):
        AVSBenchObjectDataset(root, "ms3", split="test")
    with pytest.raises(SourceError, match="s4_meta_data.csv: metadata file not found"):
        AVSBenchObjectDataset(tmp_path, "s4")


# --------------------------------------------------------------------------- demo corpus


def test_demo_avsbench_tree_loads(demo_corpus):
    """The generated demo AVSBench tree (avsynth.demo) goes through the same loader."""
    root = demo_corpus.avsbench_root
    meta = load_metadata(root)
    names, _ = load_palette()
    index = {n: i for i, n in enumerate(names)}
    for subset, label in (("s4", "v1s"), ("ms3", "v1m")):
        ds = AVSBenchDataset(root, subset=subset, split=None, resolution=224)
        want = meta[meta["label"] == label]
        assert len(ds) == len(want) > 0
        metric = AVSBenchMetric("video")
        for k in range(len(ds)):
            item = ds[k]
            assert item["frames"].shape == (5, 3, 224, 224)
            assert item["annotated"].tolist() == list(annotated_frames(label, item["split"]))
            gt = item["masks"][item["annotated"]].float()
            assert gt.sum() > 0  # the sounding object is visible in the demo
            metric.update(gt * 40 - 20, gt, [item["uid"]] * gt.shape[0])
        assert metric.compute()["miou"] == pytest.approx(1.0, abs=1e-6)
    sem = AVSBenchDataset(root, subset="avss", split=None, resolution=None)
    for k in range(len(sem)):
        item = sem[k]
        # colours of objects outside the 71 AVSS classes are not in the palette -> background
        allowed = {index[o] for o in item["category"].split("_") if o in index} | {0}
        got = set(np.unique(item["masks"][item["annotated"]].numpy()).tolist())
        assert got <= allowed, item["uid"]
