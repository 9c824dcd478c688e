"""Open Images V7 segmentation reader: hand-made release in the real layout, real photographs."""

from __future__ import annotations

import zipfile

import pytest

from avsynth.errors import SourceError
from avsynth.manifest import load_manifest
from avsynth.sources import openimages as O
from avsynth.sources.records import SkipCounter
from tests.fixtures import OIMask, photo, write_manifest, write_oi_classes, write_oi_release

DOG, TRUCK, CAT = "/m/0bt9lr", "/m/07r04", "/m/01yrx"
CLASSES = {DOG: "Dog", TRUCK: "Truck", CAT: "Cat", "/m/05r5c": "Piano"}
IMG_A, IMG_B, IMG_C = "0a1b2c3d4e5f6071", "f00dfeedbeef0001", "0fffffffffffffff"


@pytest.fixture
def manifest(tmp_path):
    return load_manifest(
        write_manifest(
            tmp_path / "m.yaml",
            [
                {"name": "dog", "openimages": ["Dog"], "vggsound": ["dog barking"]},
                {"name": "truck", "openimages": ["Truck"], "vggsound": ["driving buses"]},
                {"name": "lion", "openimages": ["Lion"], "vggsound": ["lions roaring"]},
            ],
        )
    )


MASKS = [
    OIMask(IMG_A, DOG, "aaaa0001", (0.25, 0.75, 0.5, 1.0)),
    OIMask(IMG_A, CAT, "aaaa0002", (0.0, 0.5, 0.0, 0.5)),  # class not in the manifest
    OIMask(IMG_B, TRUCK, "bbbb0001", (0.1, 0.9, 0.2, 0.8), mask_size=(1800, 1200)),
    OIMask(IMG_C, DOG, "cccc0001", (0.0, 0.5, 0.0, 1.0)),
]


def _release(tmp_path, real_dir, zipped=True, class_header=True):
    photos = {IMG_A: photo(real_dir, "dog.jpg"), IMG_B: photo(real_dir, "truck.jpg"),
              IMG_C: photo(real_dir, "dogs.jpg")}  # fmt: skip
    return write_oi_release(tmp_path / "oi", "validation", photos, MASKS, CLASSES,
                            zipped=zipped, class_header=class_header)  # fmt: skip


@pytest.mark.parametrize("zipped", [True, False])
def test_reads_selected_instances(tmp_path, real_dir, manifest, zipped):
    root = _release(tmp_path, real_dir, zipped=zipped)
    skips = SkipCounter()
    out = O.read_openimages(root, "validation", manifest, skips)
    assert [(i.image_id, i.category, i.source_label) for i in out] == [
        (IMG_A, "dog", "Dog"), (IMG_C, "dog", "Dog"), (IMG_B, "truck", "Truck"),
    ]  # fmt: skip
    a = out[0]
    assert a.source == "openimages" and (a.width, a.height) == (800, 534)
    assert a.annotation_id == MASKS[0].mask_name[:-4]
    assert a.image_path == root / "validation" / f"{IMG_A}.jpg"
    assert a.bbox == pytest.approx((200.0, 267.0, 400.0, 267.0))
    # mask 160x120 covering x 40..120, y 60..120 -> 80*60 mask px, scaled by (800/160)*(534/120)
    assert a.area == pytest.approx(80 * 60 * 5.0 * 534 / 120)
    if zipped:
        assert a.mask.png == root / "validation-masks" / "validation-masks-0.zip"
        assert a.mask.png_member == MASKS[0].mask_name
        assert out[2].mask.png.name == "validation-masks-f.zip"
    else:
        assert a.mask.png == root / "validation-masks" / MASKS[0].mask_name
        assert a.mask.png_member is None
    assert "CC BY" in a.license
    assert dict(skips.counts) == {O.SKIP_LABEL_ABSENT: 1}


def test_class_file_without_header(tmp_path, real_dir, manifest):
    root = _release(tmp_path, real_dir, class_header=False)
    assert O.read_class_descriptions(root / O.CLASS_FILE)[DOG] == "Dog"
    assert len(O.read_openimages(root, "validation", manifest, SkipCounter())) == 3


def test_unzipped_in_subfolders(tmp_path, real_dir, manifest):
    root = _release(tmp_path, real_dir, zipped=False)
    sub = root / "validation-masks" / "validation-masks-0"
    sub.mkdir()
    for m in MASKS[:2]:
        (root / "validation-masks" / m.mask_name).rename(sub / m.mask_name)
    out = O.read_openimages(root, "validation", manifest, SkipCounter())
    assert out[0].mask.png == sub / MASKS[0].mask_name


def test_missing_and_corrupt_files_are_counted(tmp_path, real_dir, manifest):
    root = _release(tmp_path, real_dir, zipped=False)
    (root / "validation" / f"{IMG_C}.jpg").unlink()
    (root / "validation" / f"{IMG_B}.jpg").write_bytes(b"not a jpeg at all")
    (root / "validation-masks" / MASKS[0].mask_name).write_bytes(b"\x89PNG broken")
    skips = SkipCounter()
    assert O.read_openimages(root, "validation", manifest, skips) == []
    assert skips.counts[O.SKIP_IMAGE_MISSING] == 1
    assert skips.counts[O.SKIP_IMAGE_UNREADABLE] == 1
    assert skips.counts[O.SKIP_MASK_UNREADABLE] == 1
    assert skips.examples[O.SKIP_IMAGE_MISSING] == [str(root / "validation" / f"{IMG_C}.jpg")]


def test_missing_zip_member_and_empty_mask(tmp_path, real_dir, manifest):
    root = _release(tmp_path, real_dir, zipped=True)
    zpath = root / "validation-masks" / "validation-masks-f.zip"
    with zipfile.ZipFile(zpath, "w"):
        pass  # the f-zip lost its members
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(buf, format="PNG")
    with zipfile.ZipFile(root / "validation-masks" / "validation-masks-0.zip", "w") as zf:
        zf.writestr(MASKS[0].mask_name, buf.getvalue())
        zf.writestr(MASKS[3].mask_name, buf.getvalue())
    skips = SkipCounter()
    assert O.read_openimages(root, "validation", manifest, skips) == []
    assert skips.counts[O.SKIP_MASK_MISSING] == 1 and skips.counts[O.SKIP_MASK_EMPTY] == 2


def test_measure_masks_off_uses_box_area(tmp_path, real_dir, manifest):
    root = _release(tmp_path, real_dir)
    out = O.read_openimages(root, "validation", manifest, SkipCounter(), measure_masks=False)
    assert out[0].area == pytest.approx(400.0 * 267.0)


def test_bad_rows_are_counted(tmp_path, real_dir, manifest):
    root = _release(tmp_path, real_dir)
    csv_path = root / "validation-annotations-object-segmentation.csv"
    lines = csv_path.read_text().splitlines()
    lines += [
        f"x.png,{IMG_A},{DOG},b1,abc,0.5,0.1,0.2,0.9,",  # non-numeric coordinate
        f"y.png,{IMG_A},{DOG},b2,0.6,0.5,0.1,0.2,0.9,",  # xmin > xmax
        f"z.png,{IMG_A},{DOG},b3",  # too few fields
    ]
    csv_path.write_text("\n".join(lines) + "\n")
    skips = SkipCounter()
    assert len(O.read_openimages(root, "validation", manifest, skips)) == 3
    assert skips.counts[O.SKIP_MALFORMED] == 2 and skips.counts[O.SKIP_BOX] == 1


def test_missing_columns_are_listed(tmp_path, real_dir, manifest):
    root = _release(tmp_path, real_dir)
    csv_path = root / "validation-annotations-object-segmentation.csv"
    text = csv_path.read_text().replace("BoxXMin", "XMin", 1).replace("MaskPath", "Mask", 1)
    csv_path.write_text(text)
    with pytest.raises(SourceError, match=r"missing columns \['MaskPath', 'BoxXMin'\]") as info:
        O.read_openimages(root, "validation", manifest, SkipCounter())
    assert "validation-annotations-object-segmentation.csv" in str(info.value)


def test_missing_root_csv_and_folders(tmp_path, real_dir, manifest):
    with pytest.raises(SourceError, match="Open Images root directory not found"):
        O.read_openimages(tmp_path / "none", "train", manifest, SkipCounter())
    root = _release(tmp_path, real_dir)
    with pytest.raises(
        SourceError, match="train-annotations-object-segmentation.csv: .* not found"
    ):
        O.read_openimages(root, "train", manifest, SkipCounter())
    for f in (root / "validation-masks").iterdir():
        f.unlink()
    with pytest.raises(SourceError, match="validation-masks: no Open Images masks"):
        O.read_openimages(root, "validation", manifest, SkipCounter())


def test_malformed_class_file(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("LabelName,DisplayName\n/m/0bt9lr,Dog,extra\n")
    with pytest.raises(SourceError, match=r"c.csv: line 2: expected 'MID,DisplayName'"):
        O.read_class_descriptions(p)
    p.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(SourceError, match="c.csv: .*NUL"):
        O.read_class_descriptions(p)
    p.write_text("")
    with pytest.raises(SourceError, match="c.csv: .*empty"):
        O.read_class_descriptions(p)
    write_oi_classes(p, {})
    with pytest.raises(SourceError, match="no classes"):
        O.read_class_descriptions(p)


def test_corrupt_zip_is_a_clear_error(tmp_path, real_dir, manifest):
    root = _release(tmp_path, real_dir)
    (root / "validation-masks" / "validation-masks-0.zip").write_bytes(b"PK garbage")
    with pytest.raises(SourceError, match="validation-masks-0.zip: unreadable mask zip"):
        O.read_openimages(root, "validation", manifest, SkipCounter())
