"""sources/avs_synthetic on a small release written here (20 x 10 images, box masks, tone WAVs):
which rows are kept, every counted skip and its example, row order, audio rules, the pool file and
its errors, header detection. Expected values follow from each file's construction."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avsynth.errors import SourceError
from avsynth.sources import avs_synthetic as A
from avsynth.sources.records import MaskRef, SkipCounter

SET = [f"q{i:02d}" for i in range(19, -1, -1)]  # 20 pool names, listed in reverse
HEADER = ["inst_id", "img_id", "class_name", "class_id", "split", "audio_name", "source"]


def mask(path: Path, box=(2, 1, 12, 6), size=(20, 10)):
    arr = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    arr[y0:y1, x0:x1] = 255
    Image.fromarray(arr).save(path)


def release(root: Path, rows, pool=None, header=HEADER) -> Path:
    for sub in ("images", "masks", "audios"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    with open(root / A.ANNOTATIONS, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    with open(root / A.POOL_FILE, "wb") as fh:
        pickle.dump({} if pool is None else pool, fh)
    return root


def wav(path: Path, frames=1600):
    sf.write(path, np.full(frames, 0.1), 16_000)


@pytest.fixture
def tree(tmp_path) -> Path:
    rows = [
        ["i1", "b", "dog", "3", "train", "", "lvis"],  # train without audio: drawn from the pool
        ["i2", "a", "dog", "3", "validate", "s1", "oi"],
        ["i3", "a", "cat", "4", "test", "s2.WAV", "oi"],  # a .wav suffix in any case is kept
        ["i0", "a", "cat", "4.0", "Test", "s1", "oi"],
        ["i4", "c", "dog", "3", "train", "gone", "lvis"],  # train: a missing audio file is not needed
        ["i5", "a", "dog", "3", "holdout", "s1", "oi"],  # unknown split
        ["i6", "a", "dog", "3.5", "test", "s1", "oi"],  # class id not an integer
        ["", "a", "dog", "3", "test", "s1", "oi"], ["i7", "", "dog", "3", "test", "s1", "oi"],
        ["i8", "a", "", "3", "test", "s1", "oi"],
        ["i9", "a", "dog", "3", "test", "gone", "oi"],  # evaluation row: audio missing
        ["i10", "a", "dog", "3", "test", "nan", "oi"],  # evaluation row without audio
        ["i11", "a", "dog", "3", "test", "s0", "oi"],  # audio with no frames
        ["i12", "x", "dog", "3", "test", "s1", "oi"],  # image missing
        ["i13", "bad", "dog", "3", "test", "s1", "oi"],  # image unreadable
        ["i14", "a", "dog", "3", "test", "s1", "oi"],  # mask missing
        ["i15", "a", "dog", "3", "test", "s1", "oi"],  # mask unreadable
        ["i16", "a", "dog", "3", "test", "s1", "oi"],  # mask empty
        ["i17", "a", "dog", "3", "test", "s1"],  # too short
        ["i18", "a", "dog", "3", "test", "s1", "oi", "extra"],  # one more field is fine
        [" ", " "],  # no content: ignored
        ["i19", "a", "dog", "3", "test", "none", "oi"],
    ]
    root = release(tmp_path / "avs", rows, pool={3: ["p2", "p1 ", " ", "pgone", "p1"], "4": "p2", 5.0: {"p3", "p1", *SET}})
    for image_id in ("a", "b", "c"):
        Image.new("RGB", (20, 10)).save(root / "images" / f"{image_id}.jpg")
    (root / "images" / "bad.jpg").write_bytes(b"broken")
    for inst in ("i0", "i1", "i2", "i3", "i4", "i11", "i18"):
        mask(root / "masks" / f"{inst}.png")
    (root / "masks" / "i15.png").write_bytes(b"broken")
    mask(root / "masks" / "i16.png", box=(0, 0, 0, 0))
    for name in ("s1.wav", "s2.WAV", "p1.wav", "p2.wav", "p3.wav", *(f"{n}.wav" for n in SET)):
        wav(root / "audios" / name)
    wav(root / "audios" / "s0.wav", 0)
    return root


def test_rows_skips_and_order(tree):
    rel = A.read_release(str(tree))
    assert rel.root == tree
    assert [(r.split, r.instance.image_id, r.instance.annotation_id) for r in rel.rows] == [
        ("train", "b", "i1"), ("train", "c", "i4"), ("validation", "a", "i2"),
        ("test", "a", "i0"), ("test", "a", "i18"), ("test", "a", "i3")]
    i1, i4, i2, i0, _, i3 = rel.rows
    assert (i1.audio_name, i1.audio_path, i4.audio_name, i4.audio_path) == (None, None, None, None)
    assert (i2.audio_name, i2.audio_path) == ("s1", tree / "audios" / "s1.wav")
    assert (i3.audio_name, i3.audio_path) == ("s2.WAV", tree / "audios" / "s2.WAV")
    assert (i0.category, i0.category_id, i0.source_dataset) == ("cat", 4, "oi")
    inst = i2.instance
    assert (inst.source, inst.category, inst.source_label, inst.license) == ("avs-synthetic", "dog", "dog", A.LICENSE)
    assert (inst.image_path, inst.width, inst.height, inst.mask) == (
        tree / "images" / "a.jpg", 20, 10, MaskRef(png=tree / "masks" / "i2.png"))
    assert (inst.bbox, inst.area) == ((2.0, 1.0, 10.0, 5.0), 50.0)  # measured from the mask
    assert rel.categories == {3: "dog", 4: "cat"}
    assert rel.audio_path("x") == tree / "audios" / "x.wav" and rel.audio_path("y.Wav") == tree / "audios" / "y.Wav"
    assert rel.columns == {"split": "split", "instance_id": "inst_id", "image_id": "img_id", "class_name": "class_name",
                           "class_id": "class_id", "source": "source", "audio": "audio_name"}
    # lists keep their order, sets are sorted (a set's own order varies between runs); names stripped
    assert rel.audio_pool == {3: ["p2", "p1", "p1"], 4: ["p2"], 5: sorted(["p1", "p3", *SET])}
    w = "annotations.csv"
    assert rel.skips.as_dict() == {
        A.SKIP_AUDIO_MISSING: {"count": 1, "examples": ["gone"]},
        A.SKIP_AUDIO_UNREADABLE: {"count": 1, "examples": [str(tree / "audios" / "s0.wav")]},
        A.SKIP_IMAGE_MISSING: {"count": 1, "examples": [str(tree / "images" / "x.jpg")]},
        A.SKIP_IMAGE_UNREADABLE: {"count": 1, "examples": [str(tree / "images" / "bad.jpg")]},
        A.SKIP_MALFORMED: {"count": 5, "examples": [f"{w}:8", f"{w}:9", f"{w}:10", f"{w}:11", f"{w}:20"]},
        A.SKIP_MASK_EMPTY: {"count": 1, "examples": [str(tree / "masks" / "i16.png")]},
        A.SKIP_MASK_MISSING: {"count": 1, "examples": ["i14.png"]},
        A.SKIP_MASK_UNREADABLE: {"count": 1, "examples": [str(tree / "masks" / "i15.png")]},
        A.SKIP_NO_AUDIO: {"count": 2, "examples": [f"{w}:13", f"{w}:23"]},
        A.SKIP_POOL_MISSING: {"count": 1, "examples": ["pgone"]},
        A.SKIP_SPLIT: {"count": 1, "examples": [f"{w}:7 ('holdout')"]},
    }
    quick = A.read_release(tree, SkipCounter(), check_audio=False)  # no header probe: s0 kept
    assert "i11" in {r.instance.annotation_id for r in quick.rows}


def test_one_frame_is_audio_and_a_release_without_source_column(tmp_path):
    root = release(tmp_path / "r", [["i1", "a", "dog", "3", "test", "s"]], header=HEADER[:6])
    Image.new("RGB", (20, 10)).save(root / "images" / "a.jpg")
    mask(root / "masks" / "i1.png")
    wav(root / "audios" / "s.wav", 1)
    rel = A.read_release(root)
    assert [r.source_dataset for r in rel.rows] == [""]  # no source column: empty, not None
    assert "source" not in rel.columns


def test_headers_pool_and_errors(tmp_path):
    assert A._norm(" Inst ID ") == "inst_id" and A._norm("class-Name") == "class_name"
    assert A.detect_columns(Path("a.csv"), ["Split", "Inst-ID", "image", "Category", "cat id", "wav"]) == {
        "split": 0, "instance_id": 1, "image_id": 2, "class_name": 3, "class_id": 4, "audio": 5}
    with pytest.raises(SourceError) as e:
        A.detect_columns(Path("a.csv"), ["split", "inst_id"])
    assert str(e.value) == (
        "a.csv: cannot find the fields ['image_id', 'class_name', 'class_id', 'audio'] among the headers "
        "['split', 'inst_id'] (accepted: image_id: one of img_id, image_id, image, img, image_name, img_name; "
        "class_name: one of class_name, cls_name, category, category_name, class, label; class_id: one of "
        "class_id, cls_id, category_id, cat_id, label_id, class_idx; audio: one of audio, audio_name, audio_id, "
        "audio_file, audio_path, wav)")
    assert [A._as_int(v) for v in (3, "3", " 3.0 ", "-2", True, "3.5", "inf", "x", None)] == [
        3, 3, 3, -2, None, None, None, None, None]
    p = tmp_path / "pool.pkl"

    def err(data: bytes) -> str:
        p.write_bytes(data)
        with pytest.raises(SourceError) as e:
            A.read_audio_pool(p)
        return str(e.value)

    assert err(b"") == f"{p}: not a valid pickle: EOFError: Ran out of input"
    assert err(b"\x80\x04\x95junk") .startswith(f"{p}: not a valid pickle: ")
    assert err(pickle.dumps(["a"])) == f"{p}: expected a dict class id -> audio names, found list"
    assert err(pickle.dumps({"x": ["a"]})) == f"{p}: class id 'x' is not an integer"
    assert err(pickle.dumps({1: 5})) == f"{p}: class 1: expected a list of audio names"
    assert err(pickle.dumps({1: ["a", 2]})) == f"{p}: class 1: expected a list of audio names"
    with pytest.raises(SourceError) as e:
        A.read_release(tmp_path / "none")
    assert str(e.value) == f"{tmp_path / 'none'}: AVS-Synthetic release directory not found"
