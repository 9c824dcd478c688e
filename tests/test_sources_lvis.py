"""LVIS v1 reader: real-format JSON through the lvis API, real photographs as COCO images."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsynth.errors import SourceError
from avsynth.manifest import load_manifest
from avsynth.sources import lvis as L
from avsynth.sources.records import SkipCounter
from tests.fixtures import (
    coco_image,
    lvis_annotation,
    lvis_category,
    photo,
    write_lvis_json,
    write_manifest,
)

DOG, TRUCK, CAT, PIANO = 3, 7, 9, 11


@pytest.fixture
def manifest(tmp_path):
    return load_manifest(
        write_manifest(
            tmp_path / "m.yaml",
            [
                {"name": "dog", "lvis": ["dog"], "vggsound": ["dog barking"]},
                {"name": "truck", "lvis": ["truck"], "vggsound": ["driving buses"]},
                {"name": "piano", "lvis": ["piano"], "vggsound": ["playing piano"]},
                {"name": "lion", "lvis": ["lion"], "vggsound": ["lions roaring"]},
            ],
        )
    )


@pytest.fixture
def corpus(tmp_path, real_dir):
    """COCO root with train2017 + val2017 and an LVIS train and val JSON."""
    root = tmp_path / "coco"
    cats = [
        lvis_category(i, n)
        for i, n in [(DOG, "dog"), (TRUCK, "truck"), (CAT, "cat"), (PIANO, "piano")]
    ]
    imgs_train = [
        coco_image(root, 391895, photo(real_dir, "dog.jpg"), not_exhaustive=(PIANO,)),
        coco_image(root, 522418, photo(real_dir, "truck.jpg")),
    ]
    anns_train = [
        lvis_annotation(12, 391895, DOG, (100, 50, 300, 400)),
        lvis_annotation(5, 391895, DOG, (10, 10, 50, 40)),
        lvis_annotation(6, 391895, CAT, (10, 10, 50, 40)),  # not in the manifest
        lvis_annotation(7, 391895, PIANO, (20, 20, 50, 40)),  # not exhaustive here: skipped
        lvis_annotation(8, 522418, TRUCK, (200, 300, 900, 500)),
    ]
    imgs_val = [coco_image(root, 139, photo(real_dir, "dogs.jpg"), folder="val2017", license_id=1)]
    anns_val = [
        lvis_annotation(3, 139, DOG, (1, 2, 30, 40)),
        lvis_annotation(4, 139, PIANO, (5, 5, 9, 9)),
    ]
    train = write_lvis_json(tmp_path / "lvis_v1_train.json", imgs_train, anns_train, cats)
    val = write_lvis_json(tmp_path / "lvis_v1_val.json", imgs_val, anns_val, cats)
    return root, train, val


def test_reads_selected_instances_sorted(corpus, manifest):
    root, train, val = corpus
    skips = SkipCounter()
    out = L.read_lvis([train, val], root, manifest, skips)
    assert [(i.image_id, i.annotation_id, i.category) for i in out] == [
        ("139", "3", "dog"), ("139", "4", "piano"),
        ("391895", "5", "dog"), ("391895", "12", "dog"), ("522418", "8", "truck"),
    ]  # fmt: skip
    first = out[2]
    assert first.source == "lvis" and first.source_label == "dog"
    assert first.image_path == root / "train2017" / "000000391895.jpg"
    assert (first.width, first.height) == (800, 534)
    assert first.bbox == (10.0, 10.0, 50.0, 40.0) and first.area == 2000.0
    assert first.mask.polygons == ((10.0, 10.0, 60.0, 10.0, 60.0, 50.0, 10.0, 50.0),)
    assert "Attribution License" in first.license and "LVIS" in first.license
    assert out[0].image_path == root / "val2017" / "000000000139.jpg"
    assert "NonCommercial" in out[0].license
    assert skips.counts[L.SKIP_NOT_EXHAUSTIVE] == 1
    assert skips.examples[L.SKIP_LABEL_ABSENT] == ["lion"]  # absent from both files: once
    assert skips.total == 2


def test_single_path_and_deterministic(corpus, manifest):
    root, train, _ = corpus
    a = L.read_lvis(train, root, manifest, SkipCounter())
    b = L.read_lvis([train], root, manifest, SkipCounter())
    assert a == b and len(a) == 3


def test_image_relpath_from_coco_url():
    img = {"coco_url": "http://images.cocodataset.org/train2017/000000391895.jpg"}
    assert L.image_relpath(img) == "train2017/000000391895.jpg"
    assert L.image_relpath({"file_name": "val2017/000000000139.jpg"}) == "val2017/000000000139.jpg"
    assert L.image_relpath({"id": 1}) is None


def _one_image_json(tmp_path, real_dir, anns, **img_kw):
    root = tmp_path / "coco"
    img = coco_image(root, 1, photo(real_dir, "dog.jpg"), **img_kw)
    path = write_lvis_json(tmp_path / "x.json", [img], anns, [lvis_category(DOG, "dog")])
    return root, path


def test_missing_image_file_is_counted(tmp_path, real_dir, manifest):
    root, path = _one_image_json(tmp_path, real_dir, [lvis_annotation(1, 1, DOG, (1, 1, 5, 5))])
    (root / "train2017" / "000000000001.jpg").unlink()
    skips = SkipCounter()
    assert L.read_lvis(path, root, manifest, skips) == []
    assert skips.counts[L.SKIP_IMAGE_MISSING] == 1
    assert skips.examples[L.SKIP_IMAGE_MISSING] == [str(root / "train2017" / "000000000001.jpg")]


def test_corrupt_image_is_counted(tmp_path, real_dir, manifest):
    root, path = _one_image_json(tmp_path, real_dir, [lvis_annotation(1, 1, DOG, (1, 1, 5, 5))])
    (root / "train2017" / "000000000001.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    skips = SkipCounter()
    assert L.read_lvis(path, root, manifest, skips) == []
    assert skips.counts[L.SKIP_IMAGE_UNREADABLE] == 1


def test_image_size_mismatch_is_counted(tmp_path, real_dir, manifest):
    root = tmp_path / "coco"
    img = coco_image(root, 1, photo(real_dir, "dog.jpg"))
    img["width"] = 640
    path = write_lvis_json(tmp_path / "x.json", [img], [lvis_annotation(1, 1, DOG, (1, 1, 5, 5))],
                           [lvis_category(DOG, "dog")])  # fmt: skip
    skips = SkipCounter()
    assert L.read_lvis(path, root, manifest, skips) == []
    assert skips.counts[L.SKIP_IMAGE_SIZE] == 1


@pytest.mark.parametrize(
    "seg",
    [[], [[1.0, 2.0, 3.0]], [[1, 2, 3, 4, "x", 6]], [[1, 2, 3, 4, 5]], "polygon", [[1, 1, 2, 2]]],
)
def test_invalid_polygons_are_counted(tmp_path, real_dir, manifest, seg):
    ann = lvis_annotation(1, 1, DOG, (1, 1, 5, 5), segmentation=seg)
    root, path = _one_image_json(tmp_path, real_dir, [ann])
    skips = SkipCounter()
    assert L.read_lvis(path, root, manifest, skips) == []
    assert skips.counts[L.SKIP_POLYGON] == 1


def test_degenerate_part_dropped_valid_part_kept(tmp_path, real_dir, manifest):
    seg = [[1, 1, 2, 2], [0, 0, 10, 0, 10, 10]]
    ann = lvis_annotation(1, 1, DOG, (0, 0, 10, 10), segmentation=seg)
    ann.pop("area")  # computed from the polygon when the source lacks it
    root, path = _one_image_json(tmp_path, real_dir, [ann])
    (inst,) = L.read_lvis(path, root, manifest, SkipCounter())
    assert inst.mask.polygons == ((0.0, 0.0, 10.0, 0.0, 10.0, 10.0),)
    assert 40 <= inst.area <= 70  # pycocotools' rasterised triangle area


def test_invalid_bbox_is_counted(tmp_path, real_dir, manifest):
    ann = lvis_annotation(1, 1, DOG, (1, 1, 5, 5))
    ann["bbox"] = [1, 1, 0, 5]
    root, path = _one_image_json(tmp_path, real_dir, [ann])
    skips = SkipCounter()
    assert L.read_lvis(path, root, manifest, skips) == []
    assert skips.counts[L.SKIP_BBOX] == 1


def test_unknown_image_and_no_url_are_counted(tmp_path, real_dir, manifest):
    root = tmp_path / "coco"
    img = coco_image(root, 1, photo(real_dir, "dog.jpg"))
    del img["coco_url"]
    img2 = coco_image(root, 2, photo(real_dir, "dog.jpg"), not_exhaustive=())
    img2["width"] = "wide"
    img3 = coco_image(root, 3, photo(real_dir, "dog.jpg"))
    img3["width"], img3["not_exhaustive_category_ids"] = 800.0, None  # tolerated
    anns = [lvis_annotation(a, i, DOG, (1, 1, 5, 5)) for a, i in [(1, 1), (2, 99), (3, 2), (4, 3)]]
    path = write_lvis_json(
        tmp_path / "x.json", [img, img2, img3], anns, [lvis_category(DOG, "dog")]
    )
    skips = SkipCounter()
    assert [i.image_id for i in L.read_lvis(path, root, manifest, skips)] == ["3"]
    assert skips.counts[L.SKIP_IMAGE_NO_URL] == 2 and skips.counts[L.SKIP_IMAGE_UNKNOWN] == 1


def test_rle_segmentation_is_accepted(tmp_path, real_dir, manifest):
    seg = {"size": [534, 800], "counts": [100, 20, 300]}
    root, path = _one_image_json(
        tmp_path, real_dir, [lvis_annotation(1, 1, DOG, (0, 0, 5, 5), seg)]
    )
    (inst,) = L.read_lvis(path, root, manifest, SkipCounter())
    assert inst.mask.rle[0] == (534, 800) and isinstance(inst.mask.rle[1], str)


def test_missing_json_names_it(tmp_path, manifest):
    (tmp_path / "coco").mkdir()
    with pytest.raises(SourceError, match="lvis_v1_train.json.*not found"):
        L.read_lvis(tmp_path / "lvis_v1_train.json", tmp_path / "coco", manifest, SkipCounter())


def test_missing_images_root(tmp_path, corpus, manifest):
    _, train, _ = corpus
    with pytest.raises(SourceError, match="nowhere.*COCO images root"):
        L.read_lvis(train, tmp_path / "nowhere", manifest, SkipCounter())


@pytest.mark.parametrize(
    "content, problem",
    [
        ('{"images": [', "malformed JSON at line 1"),
        ("[1, 2]", "must be an object"),
        ('{"images": [], "annotations": []}', r"missing top-level keys \['categories'\]"),
        ('{"images": {}, "annotations": [], "categories": []}', "'images' must be a list"),
        ('{"images": [{"width": 3}], "annotations": [], "categories": []}', r"lacks required keys \['id'\]"),
        ('{"images": [], "annotations": [{"id": [1], "image_id": 1, "category_id": 1}], "categories": []}',
         "must be integers or strings"),
    ],
)  # fmt: skip
def test_malformed_json_names_file_and_problem(tmp_path, manifest, content, problem):
    (tmp_path / "coco").mkdir()
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SourceError, match=problem) as info:
        L.read_lvis(path, tmp_path / "coco", manifest, SkipCounter())
    assert "bad.json" in str(info.value)


def test_binary_json_is_a_clear_error(tmp_path, manifest):
    (tmp_path / "coco").mkdir()
    path = tmp_path / "bad.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(SourceError, match="bad.json"):
        L.read_lvis(path, tmp_path / "coco", manifest, SkipCounter())


def test_duplicate_annotation_across_files_is_counted(tmp_path, real_dir, manifest):
    root, path = _one_image_json(tmp_path, real_dir, [lvis_annotation(1, 1, DOG, (1, 1, 5, 5))])
    copy = tmp_path / "copy.json"
    copy.write_text(Path(path).read_text())
    skips = SkipCounter()
    assert len(L.read_lvis([path, copy], root, manifest, skips)) == 1
    assert skips.counts[L.SKIP_DUPLICATE] == 1
