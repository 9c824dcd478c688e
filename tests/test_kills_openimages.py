"""sources/openimages on a small release written here (20 x 10 JPEGs, masks zipped and unzipped):
row and box rules with their counted skips and examples, the mask store, the class file, the
verified negatives of the image-level label files, and the one-line errors. Expected values follow
from each file's construction."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avsynth.errors import SourceError
from avsynth.manifest import load_manifest
from avsynth.sources import openimages as O
from avsynth.sources.records import SkipCounter
from tests.fixtures import write_manifest

DOG, CAT, OWL = "/m/0bt9lr", "/m/01yrx", "/m/09d5_"
HEADER = ["MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax",
          "PredictedIoU", "Clicks"]


@pytest.fixture
def manifest(tmp_path):
    return load_manifest(write_manifest(tmp_path / "m.yaml", [
        {"name": "doggo", "openimages": ["Dog"], "vggsound": ["dog barking"]},
        {"name": "owl", "openimages": [OWL], "vggsound": ["owl hooting"]},  # given as a MID
        {"name": "lion", "openimages": ["Lion"], "vggsound": ["lions roaring"]}]))


def png(box=(0, 0, 10, 5), size=(20, 10)) -> bytes:
    arr = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    arr[y0:y1, x0:x1] = 255
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def release(root: Path, rows: list[list[str]], images=("0aaa", "1bbb"), split="validation") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / O.CLASS_FILE).write_text(f"LabelName,DisplayName\n{DOG},Dog\n{CAT},Cat\n{OWL},Owl\n")
    (root / split).mkdir(exist_ok=True)
    for image_id in images:
        Image.new("RGB", (20, 10)).save(root / split / f"{image_id}.jpg")
    with open(root / f"{split}-annotations-object-segmentation.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    return root


def row(mask, image_id, mid=DOG, box=("0.25", "0.75", "0.0", "1.0")):
    return [mask, image_id, mid, "b", *box, "0.9", ""]


def test_rows_boxes_masks_and_skips(tmp_path, manifest):
    rows = [row("0aaa_dog_1.png", "0aaa"),  # zipped (in the root), measured: 10 x 5 of 20 x 10
            row("0aaa_owl_1.png", "0aaa", OWL, ("0.0", "1.0", "0.0", "1.000001")),  # edges inclusive (+1e-6)
            row("1bbb_dog_1.png", "1bbb"),  # unzipped, in a sub-folder of validation-masks/
            row("1bbb_dog_1.png", "1bbb"),  # duplicate
            row("0aaa_cat_1.png", "0aaa", CAT),  # not in the manifest
            ["0aaa_dog_2.png", "0aaa", DOG],  # three fields
            row("0aaa_dog_3.png", " ", DOG),  # no image id
            row("0aaa_dog_4.png", "0aaa", DOG, ("0.5", "0.5", "0", "1")),  # empty width
            row("0aaa_dog_5.png", "0aaa", DOG, ("0", "1", "0.5", "0.5")),  # empty height
            row("0aaa_dog_6.png", "0aaa", DOG, ("0", "1.5", "0", "1")),
            row("0aaa_dog_7.png", "0aaa", DOG, ("0", "1", "0", "1.5")),
            row("0aaa_dog_8.png", "0aaa", DOG, ("0", "1", "x", "1")),
            row("0aaa_dog_9.png", "0aaa", DOG, ("0", "1", "0", "nan")),
            row("2ccc_dog_1.png", "2ccc"),  # image missing
            row("0aaa_dog_10.png", "0aaa"),  # mask missing
            row("0aaa_dog_11.png", "0aaa"),  # mask unreadable
            row("0aaa_dog_12.png", "0aaa"),  # mask empty
            row("1bbb_dog_13", "1bbb")]  # a mask name without .png: the annotation id is the name
    root = release(tmp_path / "oi", rows)
    with zipfile.ZipFile(root / "validation-masks-0.zip", "w") as zf:
        zf.writestr("deep/dir/0aaa_dog_1.png", png())
        zf.writestr("0aaa_owl_1.png", png((0, 0, 20, 10)))
        zf.writestr("0aaa_dog_11.png", b"not a png")
        zf.writestr("0aaa_dog_12.png", png((0, 0, 0, 0)))
        zf.writestr("notes.txt", b"x")
    (root / "validation-masks" / "part-1").mkdir(parents=True)
    (root / "validation-masks" / "part-1" / "1bbb_dog_1.png").write_bytes(png((0, 0, 5, 10), (10, 5)))
    (root / "validation-masks" / "1bbb_dog_13").write_bytes(png())  # found by name, not only *.png
    (root / "validation-masks" / "1bbb_dog_13.png").mkdir()  # a folder named like a mask is not one
    skips = SkipCounter(max_examples=10)
    got = O.read_openimages(root, "validation", manifest, skips)
    assert [(i.image_id, i.annotation_id, i.category, i.source_label) for i in got] == [
        ("0aaa", "0aaa_dog_1", "doggo", "Dog"), ("0aaa", "0aaa_owl_1", "owl", "Owl"),
        ("1bbb", "1bbb_dog_1", "doggo", "Dog")]
    a, owl, b = got
    assert a.mask.png == root / "validation-masks-0.zip" and a.mask.png_member == "deep/dir/0aaa_dog_1.png"
    assert (a.width, a.height, a.bbox, a.area) == (20, 10, (5.0, 0.0, 10.0, 10.0), 50.0)  # area: the mask's
    assert owl.bbox == (0.0, 0.0, 20.0, pytest.approx(10.00001)) and owl.area == 200.0
    assert b.mask.png == root / "validation-masks" / "part-1" / "1bbb_dog_1.png" and b.mask.png_member is None
    assert b.area == 25 * 4.0  # a 10 x 5 mask, columns 0-4 set: 25 pixels, each 2 x 2 image pixels
    assert a.license == O.LICENSE and a.source == "openimages" and a.image_path == root / "validation" / "0aaa.jpg"
    name = "validation-annotations-object-segmentation.csv"
    assert skips.as_dict() == {
        O.SKIP_BOX: {"count": 4, "examples": ["line 9 (0aaa_dog_4.png)", "line 10 (0aaa_dog_5.png)",
                                              "line 11 (0aaa_dog_6.png)", "line 12 (0aaa_dog_7.png)"]},
        O.SKIP_DUPLICATE: {"count": 1, "examples": [f"{name}:5"]},
        O.SKIP_IMAGE_MISSING: {"count": 1, "examples": [str(root / "validation" / "2ccc.jpg")]},
        O.SKIP_LABEL_ABSENT: {"count": 1, "examples": ["Lion"]},
        O.SKIP_MALFORMED: {"count": 4, "examples": [f"{name}:7", "line 8 (0aaa_dog_3.png)",
                                                    "line 13 (0aaa_dog_8.png)", "line 14 (0aaa_dog_9.png)"]},
        O.SKIP_MASK_EMPTY: {"count": 1, "examples": ["0aaa_dog_12.png"]},
        O.SKIP_MASK_MISSING: {"count": 2, "examples": ["0aaa_dog_10.png", "1bbb_dog_13"]},
        O.SKIP_MASK_UNREADABLE: {"count": 1, "examples": ["0aaa_dog_11.png"]},
    }
    fast = SkipCounter()
    got = O.read_openimages(root, "validation", manifest, fast, measure_masks=False)
    assert [i.annotation_id for i in got] == ["0aaa_dog_1", "0aaa_dog_11", "0aaa_dog_12", "0aaa_owl_1", "1bbb_dog_1"]
    assert got[0].area == 100.0  # the box's area: 10 x 10


def test_errors_name_the_file(tmp_path, manifest):
    def err(*args) -> str:
        with pytest.raises(SourceError) as e:
            O.read_openimages(*args, manifest, SkipCounter())
        return str(e.value)

    assert err(tmp_path / "none", "validation") == f"{tmp_path / 'none'}: Open Images root directory not found"
    root = release(tmp_path / "oi", [row("0aaa_dog_1.png", "0aaa")])
    assert err(root, "train") == f"{root / 'train-annotations-object-segmentation.csv'}: Open Images segmentation annotations not found"
    (root / "train-annotations-object-segmentation.csv").write_text("MaskPath,ImageID\n")
    msg = err(root, "train")
    assert msg.startswith(f"{root / 'train-annotations-object-segmentation.csv'}: missing columns ['LabelName', ")
    assert msg.endswith(f"(header has ['MaskPath', 'ImageID']); expected {HEADER}")
    (root / "train-annotations-object-segmentation.csv").write_text(",".join(HEADER + [f"x{i}" for i in range(5)]) + "\n")
    assert err(root, "train") == f"{root / 'train'}: Open Images train image folder not found"
    (root / "train").mkdir()
    assert err(root, "train") == (f"{root / 'train-masks'}: no Open Images masks: expected train-masks-{{0..f}}.zip "
                                  "or unzipped PNGs")
    (root / "train-annotations-object-segmentation.csv").write_text("")
    assert err(root, "train").endswith("Open Images segmentation annotations is empty")
    (root / "validation-masks").mkdir()
    (root / "validation-masks" / "validation-masks-0.zip").write_bytes(b"not a zip")
    assert err(root, "validation") == (f"{root / 'validation-masks' / 'validation-masks-0.zip'}: unreadable mask zip: "
                                       "File is not a zip file")


def test_class_descriptions(tmp_path):
    p = tmp_path / O.CLASS_FILE
    p.write_text(f"\n{DOG},Dog\n ,\n{CAT}, Cat \n")  # no header; blank rows skipped anywhere
    assert O.read_class_descriptions(p) == {DOG: "Dog", CAT: "Cat"}
    for text, line in ((f"LabelName,DisplayName\n{DOG},\n", 2), (f"{DOG},Dog\nnot-a-mid,X\n", 2),
                       (f"{DOG},Dog,extra\n", 1)):
        p.write_text(text)
        with pytest.raises(SourceError, match=rf": line {line}: expected 'MID,DisplayName' \(e\.g\. /m/0bt9lr,Dog\), got "):
            O.read_class_descriptions(p)
    p.write_text("LabelName,DisplayName\n")
    with pytest.raises(SourceError) as e:
        O.read_class_descriptions(p)
    assert str(e.value) == f"{p}: no classes found"
    with pytest.raises(SourceError) as e:
        O.read_class_descriptions(tmp_path / "gone.csv")
    assert str(e.value) == f"{tmp_path / 'gone.csv'}: Open Images class descriptions not found"


def labels_file(path: Path, rows: list[list[str]], header=("ImageID", "Source", "LabelName", "Confidence")) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_verified_negatives(tmp_path, manifest):
    root = release(tmp_path / "oi", [], images=("0aaa", "1bbb", "2ccc"), split="train")
    (root / "train" / "2ccc.jpg").write_bytes(b"broken")
    p = labels_file(root / "train-annotations-human-imagelabels-boxable.csv", [
        ["1bbb", "verification", DOG, "0"], ["1bbb", "verification", OWL, "0.0"],
        ["0aaa", "verification", DOG, "0"], ["0aaa", "verification", OWL, "1"],  # present: not a negative
        ["0aaa", "verification", CAT, "0"],  # not in the manifest
        [], ["0aaa", "verification", DOG],  # too short
        ["0aaa", "verification", OWL, "maybe"],
        ["3ddd", "verification", DOG, "0"],  # no image file
        ["2ccc", "verification", DOG, "0"],  # unreadable image
        ["4eee", "verification", CAT, "x"]])  # an unselected class is not parsed
    skips = SkipCounter()
    got = O.read_openimages_negatives(p, root, manifest, skips)
    assert [(r.image_id, r.negatives, r.not_exhaustive) for r in got] == [
        ("0aaa", ("doggo",), ()), ("1bbb", ("doggo", "owl"), ())]
    r = got[1]
    assert (r.source, r.image_path, r.width, r.height, r.license) == (
        "openimages", root / "train" / "1bbb.jpg", 20, 10, O.LICENSE)
    assert skips.as_dict() == {
        O.SKIP_LABEL_IMAGE: {"count": 2, "examples": [str(root / "train" / "2ccc.jpg"), str(root / "train" / "3ddd.jpg")]},
        O.SKIP_LABEL_ROW: {"count": 2, "examples": [f"{p.name}:8", f"{p.name}:9"]}}
    q = labels_file(root / "validation-annotations-human-imagelabels.csv", [["0aaa", "v", DOG, "0"]],
                    header=("Confidence", "LabelName", "Source", "ImageID", "Extra"))
    with open(q, "w", newline="") as fh:
        csv.writer(fh).writerows([["Confidence", "LabelName", "Source", "ImageID", "Extra"], ["0", DOG, "v", "0aaa", "e"]])
    s = SkipCounter()
    assert O.read_openimages_negatives(q, root, manifest, s) == []  # columns by name; no validation/ folder
    assert s.as_dict() == {O.SKIP_LABEL_IMAGE: {"count": 1, "examples": [str(root / "validation" / "0aaa.jpg")]}}

    def err(path) -> str:
        with pytest.raises(SourceError) as e:
            O.read_openimages_negatives(path, root, manifest, SkipCounter())
        return str(e.value)

    bad = labels_file(root / "labels.csv", [])
    assert err(bad) == f"{bad}: expected {{train,validation,test}}-annotations-human-imagelabels[-boxable].csv"
    short = labels_file(root / "test-annotations-human-imagelabels.csv", [], header=("ImageID", "Source"))
    assert err(short) == f"{short}: missing columns ['LabelName', 'Confidence'] (header has ['ImageID', 'Source'])"
    empty = root / "test-annotations-human-imagelabels-boxable.csv"
    empty.write_text("")
    assert err(empty) == f"{empty}: Open Images image-level labels is empty"


def test_blank_lines_boundaries_corrupt_members_and_long_headers(tmp_path, manifest):
    root = release(tmp_path / "oi", [])
    with open(root / "validation-annotations-object-segmentation.csv", "w", newline="") as fh:
        fh.write(",".join(HEADER) + "\n")
        fh.write(",".join(row("0aaa_dog_1.png", "0aaa", DOG, ("0.0", "1.000001", "0", "1"))) + "\n")  # x edge
        fh.write("\n")  # a blank line does not end the file
        fh.write(",".join(row("1bbb_dog_1.png", "1bbb")) + "\n")
        fh.write(",".join(row("0aaa_dog_2.png", "0aaa")) + "\n")
    import zipfile as zf_

    with zf_.ZipFile(root / "validation-masks-0.zip", "w", compression=zf_.ZIP_STORED) as zf:
        zf.writestr("0aaa_dog_1.png", png())
        zf.writestr("0aaa_dog_2.png", png())
    with zf_.ZipFile(root / "validation-masks-1.zip", "w") as zf:
        zf.writestr("1bbb_dog_1.png", png())
    data = bytearray((root / "validation-masks-0.zip").read_bytes())
    second = data.find(b"0aaa_dog_2.png") + len("0aaa_dog_2.png") + 40  # inside the stored PNG bytes
    data[second] ^= 0xFF  # its CRC no longer matches: the member cannot be read
    (root / "validation-masks-0.zip").write_bytes(bytes(data))
    skips = SkipCounter()
    got = O.read_openimages(root, "validation", manifest, skips)
    assert [i.annotation_id for i in got] == ["0aaa_dog_1", "1bbb_dog_1"]
    assert got[0].bbox[2] == pytest.approx(20.00002)
    assert skips.as_dict()[O.SKIP_MASK_UNREADABLE] == {"count": 1, "examples": ["0aaa_dog_2.png"]}
    long = [f"c{i}" for i in range(14)]
    (root / "validation-annotations-object-segmentation.csv").write_text(",".join(long) + "\n")
    with pytest.raises(SourceError, match=rf"\(header has {long[:12]!r}\)".replace("[", r"\[").replace("]", r"\]")):
        O.read_openimages(root, "validation", manifest, SkipCounter())
    labels = labels_file(root / "validation-annotations-human-imagelabels.csv", [], header=tuple(long))
    with pytest.raises(SourceError) as e:
        O.read_openimages_negatives(labels, root, manifest, SkipCounter())
    assert str(e.value).endswith(f"(header has {long[:8]})")
