"""sources/avsbench: the object release's records (paths as the release lays them out), which
videos a training source selects (fraction / k-shot / uids files), release detection, and the
precomputed log-mel pickles with their restricted unpickler — on small trees written here."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from avsynth.errors import AvsynthError, SourceError
from avsynth.sources import avsbench as B
from tests.avsbench_fixture import write_object_tree


def test_object_release_records(tmp_path):
    root = tmp_path / "avsbench_data"
    write_object_tree(root, "s4", [("vidA", "dog", "test"), ("vidB", "cat", "train")], size_wh=(8, 8))
    write_object_tree(root, "ms3", [("m1", "", "val")], size_wh=(8, 8))
    data = root / "Single-source" / "s4_data"
    lm = data / "audio_log_mel" / "train" / "cat"
    lm.mkdir(parents=True)
    (lm / "vidB.pkl").write_bytes(b"x")
    s4 = B.AVSBenchObjectDataset(root, "s4", split=None, resolution=None)
    a, b = s4.videos
    assert (a.uid, a.label, a.split, a.a_obj) == ("vidA", "s4", "test", "dog")
    assert a.frame_paths == tuple(data / "visual_frames" / "test" / "dog" / "vidA" / f"vidA_{i}.png" for i in range(1, 6))
    assert a.mask_paths == tuple(data / "gt_masks" / "test" / "dog" / "vidA" / f"vidA_{i}.png" for i in range(1, 6))
    assert a.audio_path == data / "audio_wav" / "test" / "dog" / "vidA.wav" and a.log_mel_path is None
    assert b.mask_paths == (data / "gt_masks" / "train" / "cat" / "vidB" / "vidB_1.png", None, None, None, None)
    assert b.log_mel_path == lm / "vidB.pkl"  # shipped: used
    assert (s4.subset, s4.split, s4.resolution, s4.mode) == ("s4", None, None, "binary")
    ms3 = B.AVSBenchObjectDataset(root, "ms3", split="val", resolution=None)
    (m,) = ms3.videos
    md = root / "Multi-sources" / "ms3_data"
    assert (m.uid, m.label, m.split, m.a_obj) == ("m1", "ms3", "val", "")
    assert m.frame_paths[0] == md / "visual_frames" / "m1" / "m1.mp4_1.png"
    assert m.mask_paths[4] == md / "gt_masks" / "val" / "m1" / "m1_5.png"
    assert m.audio_path == md / "audio_wav" / "val" / "m1.wav"
    assert [v.uid for v in B.AVSBenchObjectDataset(root, "s4", split=None, uids=["vidB"]).videos] == ["vidB"]
    with pytest.raises(ValueError, match=r"^subset must be 's4' or 'ms3', got 'v2'$"):
        B.AVSBenchObjectDataset(root, "v2")
    meta = root / "Single-source" / "s4_meta_data.csv"
    meta.write_text("category,name,split\ndog,vidA,test\n")
    with pytest.raises(SourceError) as e:
        B.AVSBenchObjectDataset(root, "s4")
    assert str(e.value) == f"{meta}: the first column must hold the video name"
    assert B.is_object_release(root) and B.is_object_release(str(root / "..") + "/avsbench_data")
    ms_only = tmp_path / "ms"
    (ms_only / "Multi-sources").mkdir(parents=True)
    assert B.is_object_release(ms_only)
    (ms_only / "metadata.csv").write_text("x")
    assert not B.is_object_release(ms_only) and not B.is_object_release(tmp_path / "none")
    assert isinstance(B.avsbench_dataset(root / ".." / "avsbench_data", "ms3", "val", None), B.AVSBenchObjectDataset)


def test_training_source_rules(tmp_path):
    root = tmp_path / "avsbench_data"
    write_object_tree(root, "s4", [("v1", "dog", "train"), ("v2", "dog", "train"), ("v3", "cat", "val")],
                      size_wh=(8, 8))
    src = B.AVSBenchSource(root)
    assert [v.uid for v in src.videos("train")] == ["v1", "v2"]
    assert [v.uid for v in src.videos(None, ["v3"])] == ["v3"]
    for kw, msg in (({"fraction": 0.5, "k_shot": 1}, "choose at most one of fraction, k_shot and uids for AVSBench training"),
                    ({"k_shot": 1, "uids": ("a",)}, "choose at most one"),
                    ({"fraction": 0.0}, r"AVSBench fraction must be in \(0, 1\], got 0.0"),
                    ({"fraction": 1.5}, r"AVSBench fraction must be in \(0, 1\], got 1.5"),
                    ({"k_shot": 0}, "k_shot must be >= 1, got 0")):
        with pytest.raises(AvsynthError, match=msg):
            B.AVSBenchSource(root, **kw)
    B.AVSBenchSource(root, fraction=1.0)
    B.AVSBenchSource(root, k_shot=1)
    with pytest.raises(SourceError) as e:
        B.AVSBenchSource(tmp_path).videos("train")
    assert str(e.value) == (f"{tmp_path}: not an AVSBench root: no metadata.csv (semantic release) and no "
                            "Single-source/ or Multi-sources/ (object release)")


def video(uid, cls) -> B.AVSBenchVideo:
    return B.AVSBenchVideo(uid, "s4", "train", cls, (Path("f"),), (None,), Path("a"))


def test_select_videos_per_class():
    vids = [video(f"d{i}", "dog") for i in range(5)] + [video(f"c{i}", "cat") for i in range(2)] + [video("o0", "owl")]
    assert B.select_videos(vids) == vids
    k2 = B.select_videos(vids, k_shot=2)
    assert [v.a_obj for v in k2].count("dog") == 2 and [v.a_obj for v in k2].count("cat") == 2
    assert [v.a_obj for v in k2].count("owl") == 1  # a class with fewer keeps all it has
    assert [v.uid for v in k2] == [v.uid for v in vids if v in k2]  # input order
    f = B.select_videos(vids, fraction=0.5)  # ceil(2.5) = 3 dogs, 1 cat, ceil(0.5) = 1 owl
    assert [v.a_obj for v in f].count("dog") == 3 and [v.a_obj for v in f].count("cat") == 1
    tiny = B.select_videos(vids, fraction=0.01)  # at least one per class
    assert sorted(v.a_obj for v in tiny) == ["cat", "dog", "owl"]
    assert B.select_videos(vids, k_shot=2, seed=0) == k2  # deterministic
    picks = {tuple(v.uid for v in B.select_videos(vids, k_shot=1, seed=s) if v.a_obj == "dog") for s in range(6)}
    assert len(picks) > 1  # the seed changes the choice
    # the choice within a class does not depend on the other classes
    only_dogs = B.select_videos(vids[:5], k_shot=2, seed=3)
    assert [v.uid for v in only_dogs] == [v.uid for v in B.select_videos(vids, k_shot=2, seed=3) if v.a_obj == "dog"]


def test_read_uids_file(tmp_path):
    p = tmp_path / "u.txt"
    p.write_text("\n a \nb\n\n")
    assert B.read_uids_file(str(p)) == ("a", "b")
    p.write_text("vid,uid,label\nx,x_1,v2\ny,y_2,v2\n")
    assert B.read_uids_file(p) == ("x_1", "y_2")
    p.write_text("vid,label\nx,v2\n")
    with pytest.raises(SourceError) as e:
        B.read_uids_file(p)
    assert str(e.value) == f"{p}: a csv uids file needs a 'uid' column"
    p.write_text("uid,label\n")
    with pytest.raises(SourceError, match="needs a 'uid' column"):
        B.read_uids_file(p)  # a header alone: no rows
    p.write_text("")
    assert B.read_uids_file(p) == ()
    with pytest.raises(SourceError) as e:
        B.read_uids_file(tmp_path / "none.txt")
    assert str(e.value) == f"{tmp_path / 'none.txt'}: uids file not found"


def test_log_mel_pickles(tmp_path):
    p = tmp_path / "a.pkl"
    t = torch.arange(3 * 96 * 64, dtype=torch.float64).reshape(3, 1, 96, 64)
    with open(p, "wb") as fh:
        pickle.dump(t, fh)
    got = B.load_log_mel_pkl(p, 5)  # frame i <- example min(i, 2)
    assert got.dtype == np.float32 and got.shape == (5, 96, 64) and got.flags["C_CONTIGUOUS"]
    assert [int(got[i, 0, 0]) for i in range(5)] == [0, 6144, 12288, 12288, 12288]
    with open(p, "wb") as fh:
        pickle.dump(torch.zeros(2, 96, 64), fh)
    with pytest.raises(SourceError) as e:
        B.load_log_mel_pkl(p, 2)
    assert str(e.value) == f"{p}: expected a log-mel tensor [N, 1, 96, 64], got (2, 96, 64)"
    for bad, shape in ((torch.zeros(0, 1, 96, 64), "(0, 1, 96, 64)"), (torch.zeros(1, 2, 96, 64), "(1, 2, 96, 64)")):
        with open(p, "wb") as fh:
            pickle.dump(bad, fh)
        with pytest.raises(SourceError) as e:
            B.load_log_mel_pkl(p, 1)
        assert str(e.value).endswith(f"got {shape}")
    with open(p, "wb") as fh:
        pickle.dump({"a": 1}, fh)
    with pytest.raises(SourceError) as e:
        B.load_log_mel_pkl(p, 1)
    assert str(e.value) == f"{p}: expected a log-mel tensor [N, 1, 96, 64], got dict"
    from collections import OrderedDict

    with open(p, "wb") as fh:
        pickle.dump(OrderedDict(a=1), fh)  # an allowed global, not a tensor
    with pytest.raises(SourceError, match="got OrderedDict$"):
        B.load_log_mel_pkl(p, 1)
    with open(p, "wb") as fh:
        pickle.dump(np.zeros(3), fh)  # numpy is not allowed
    with pytest.raises(SourceError) as e:
        B.load_log_mel_pkl(p, 1)
    assert str(e.value).startswith(f"{p}: cannot read the log-mel pickle: refusing to load numpy")
    p.write_bytes(b"")
    with pytest.raises(SourceError, match="cannot read the log-mel pickle: Ran out of input"):
        B.load_log_mel_pkl(p, 1)
    with pytest.raises(SourceError, match="cannot read the log-mel pickle: .*No such file"):
        B.load_log_mel_pkl(tmp_path / "none.pkl", 1)


def test_avsbench_dataset_passes_its_arguments_to_either_release(tmp_path, labels_dir):
    from tests.avsbench_fixture import pick_rows, write_semantic_tree

    rows = pick_rows(labels_dir / "gavs_avs_v3" / "metadata.csv")
    sem = write_semantic_tree(tmp_path / "sem", rows, labels_dir / "avsbench_avss_classes.csv", (48, 32))
    test_uids = [u for u, s in zip(rows["uid"], rows["split"]) if s == "test"]
    ds = B.avsbench_dataset(sem, "avss", "test", 112, uids=test_uids[:1])
    assert isinstance(ds, B.AVSBenchDataset)
    assert (ds.subset, ds.split, ds.resolution, ds.mode) == ("avss", "test", 112, "binary")  # always binary
    assert [v.uid for v in ds.videos] == test_uids[:1]
    assert [v.uid for v in B.AVSBenchSource(sem, subset="avss").videos("test", test_uids[:1])] == test_uids[:1]
    obj = tmp_path / "avsbench_data"
    write_object_tree(obj, "s4", [("vidA", "dog", "test")], size_wh=(8, 8))
    o = B.avsbench_dataset(obj, "s4", "test", 112)
    assert isinstance(o, B.AVSBenchObjectDataset) and o.resolution == 112
    assert B.AVSBenchObjectDataset(obj).subset == "s4" and B.AVSBenchObjectDataset(obj).split == "test"  # defaults
