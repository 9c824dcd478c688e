"""What one AVSBench video item holds, key by key (``_VideoDataset.__getitem__``), for both
releases: dtypes, padding, the precomputed log-mel examples, the video's label, and the error for a
frame of another size. Expected values come from how the fixture tree is written
(tests/avsbench_fixture.py): frame i has red channel ``frame_red(i)``, second s has level
``second_level(s)``, the mask of frame i is ``object_rect(0, i)``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from avsynth.errors import SourceError
from avsynth.sources import avsbench as B
from tests.avsbench_fixture import (frame_red, object_rect, pick_rows, second_level,
                                    write_object_tree, write_semantic_tree)


def _object_video(tmp_path, size=(32, 24)):
    root = tmp_path / "avsbench_data"
    write_object_tree(root, "s4", [("vidA", "dog", "test")], size_wh=size)
    return root, root / "Single-source" / "s4_data"


def test_object_release_item_keys_dtypes_and_contents(tmp_path):
    root, _ = _object_video(tmp_path)
    item = B.AVSBenchObjectDataset(root, "s4", "test", resolution=None)[0]
    assert (item["uid"], item["label"], item["split"], item["category"]) == ("vidA", "s4", "test", "dog")
    assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (5, 3, 24, 32)
    assert [int(item["frames"][i, 0, 0, 0]) for i in range(5)] == [frame_red(i) for i in range(5)]
    assert item["masks"].dtype == torch.uint8 and item["masks"].shape == (5, 24, 32)
    for i in range(5):
        y0, y1, x0, x1 = object_rect(0, i, 32, 24)
        want = np.zeros((24, 32), dtype=np.uint8)
        want[y0:y1, x0:x1] = 1
        assert np.array_equal(item["masks"][i].numpy(), want)
    assert item["annotated"].dtype == torch.bool and item["annotated"].tolist() == [True] * 5
    assert item["padded"].dtype == torch.bool and item["padded"].tolist() == [False] * 5
    assert item["sample_rate"] == 16000 and item["audio"].dtype == torch.float32
    assert item["audio"].shape == (5 * 16000,)
    assert item["audio_windows"].shape == (5, 15600)
    # window i starts at 15360 i: second 0 for i = 0, second 1 from sample 16000 on for i = 1
    assert float(item["audio_windows"][0, 0]) == pytest.approx(second_level(0))
    assert float(item["audio_windows"][1, 15599]) == pytest.approx(second_level(1))
    assert "audio_log_mel" not in item  # no .pkl shipped in this tree


def test_train_video_annotates_frame_one_only(tmp_path):
    root = tmp_path / "avsbench_data"
    write_object_tree(root, "s4", [("vidT", "cat", "train")], size_wh=(16, 16))
    item = B.AVSBenchObjectDataset(root, "s4", "train", resolution=None)[0]
    assert item["annotated"].tolist() == [True, False, False, False, False]
    assert item["masks"].dtype == torch.uint8
    assert int(item["masks"][1:].sum()) == 0  # unannotated frames: background masks of the frame size
    assert item["masks"].shape == (5, 16, 16)


def test_precomputed_log_mel_is_read_and_padded(tmp_path):
    root, data = _object_video(tmp_path)
    p = data / "audio_log_mel" / "test" / "dog" / "vidA.pkl"
    p.parent.mkdir(parents=True)
    examples = torch.arange(3 * 96 * 64, dtype=torch.float32).reshape(3, 1, 96, 64)
    with open(p, "wb") as fh:
        pickle.dump(examples, fh)
    ds = B.AVSBenchObjectDataset(root, "s4", "test", resolution=None)
    assert ds.videos[0].log_mel_path == p
    lm = ds[0]["audio_log_mel"]
    assert lm.dtype == torch.float32 and lm.shape == (5, 96, 64)
    # frame i <- example min(i, 2) (the official loader repeats the last example)
    assert [int(lm[i, 0, 0]) for i in range(5)] == [0, 6144, 12288, 12288, 12288]
    assert int(lm[2, 95, 63]) == 3 * 96 * 64 - 1

    ds.pad_to = 7  # the padding frames get zero examples, like the zero frames
    item = ds[0]
    assert item["audio_log_mel"].shape == (7, 96, 64)
    assert int(item["audio_log_mel"][5:].abs().sum()) == 0
    assert int(item["audio_log_mel"][4, 0, 0]) == 12288


def test_pad_to_appends_zero_frames_background_masks_and_silence(tmp_path):
    root, _ = _object_video(tmp_path)
    ds = B.AVSBenchObjectDataset(root, "s4", "test", resolution=None)
    ds.pad_to = 8
    item = ds[0]
    assert item["frames"].shape == (8, 3, 24, 32) and int(item["frames"][5:].sum()) == 0
    assert item["masks"].shape == (8, 24, 32) and int(item["masks"][5:].sum()) == 0
    assert item["annotated"].dtype == torch.bool
    assert item["annotated"].tolist() == [True] * 5 + [False] * 3
    assert item["padded"].dtype == torch.bool
    assert item["padded"].tolist() == [False] * 5 + [True] * 3
    assert item["audio_windows"].shape == (8, 15600) and float(item["audio_windows"][5:].abs().sum()) == 0.0
    ds.pad_to = 3  # fewer than the video's frames: nothing is cut or added
    item = ds[0]
    assert item["frames"].shape[0] == 5 and item["padded"].tolist() == [False] * 5


def test_a_frame_of_another_size_is_refused_naming_it(tmp_path):
    root, data = _object_video(tmp_path)
    odd = data / "visual_frames" / "test" / "dog" / "vidA" / "vidA_2.png"
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(odd)
    ds = B.AVSBenchObjectDataset(root, "s4", "test", resolution=None)
    with pytest.raises(SourceError) as e:
        ds[0]
    assert str(e.value) == f"{odd}: frame size 30x20 differs from the video's first frame 32x24"
    # at a fixed resolution every frame is resized: the same tree loads
    assert B.AVSBenchObjectDataset(root, "s4", "test", resolution=16)[0]["frames"].shape == (5, 3, 16, 16)


def test_semantic_release_masks_are_class_indices(tmp_path, labels_dir):
    rows = pick_rows(labels_dir / "gavs_avs_v3" / "metadata.csv")
    root = write_semantic_tree(tmp_path / "sem", rows, labels_dir / "avsbench_avss_classes.csv", (48, 32))
    row = rows[(rows["label"] == "v1s") & (rows["split"] == "test")].iloc[0]
    sem = B.AVSBenchDataset(root, "s4", "test", None, mode="semantic", uids=[row["uid"]])[0]
    assert sem["label"] == "v1s" and sem["masks"].dtype == torch.int64
    binary = B.AVSBenchDataset(root, "s4", "test", None, mode="binary", uids=[row["uid"]])[0]
    assert binary["masks"].dtype == torch.uint8
    # the sounding object's pixels: its class index in semantic mode, 1 in binary mode
    y0, y1, x0, x1 = object_rect(0, 1, 48, 32)
    cls = int(sem["masks"][1, y0, x0])
    assert cls > 0 and int(binary["masks"][1, y0, x0]) == 1
    assert set(torch.unique(sem["masks"][1]).tolist()) == {0, cls}


def test_metadata_file_or_folder_and_its_errors(tmp_path, labels_dir):
    real = labels_dir / "gavs_avs_v3" / "metadata.csv"
    rows = pick_rows(real)
    folder = tmp_path / "release"
    folder.mkdir()
    rows.to_csv(folder / "metadata.csv", index=False)
    other = tmp_path / "elsewhere.csv"  # a .csv file is read as such, not as a folder
    rows.iloc[:2].to_csv(other, index=False)
    assert list(B.load_metadata(folder)["uid"]) == list(rows["uid"])
    assert list(B.load_metadata(other)["uid"]) == list(rows["uid"][:2])

    bad = rows.iloc[:3].copy()
    bad.loc[bad.index[1], "label"] = "v9"
    bad.to_csv(other, index=False)
    with pytest.raises(SourceError) as e:
        B.load_metadata(other)
    assert str(e.value) == f"{other}: unknown label value(s) ['v9']; expected ['v1s', 'v1m', 'v2']"

    a, b = rows["uid"].iloc[0], rows["uid"].iloc[1]
    dup = rows.iloc[[0, 0, 1, 1]].copy()  # two uids twice each: the first one is named
    dup.to_csv(other, index=False)
    with pytest.raises(SourceError) as e:
        B.load_metadata(other)
    assert str(e.value) == f"{other}: uid {a!r} appears more than once" and a != b
