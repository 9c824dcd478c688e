"""sources/lvis on hand-made LVIS v1 files and small COCO images written here: record fields,
every counted skip and its example, licences, ordering, verified labels, segmentation / bbox /
area / size rules and the one-line errors. Areas computed by pycocotools (the reference
rasteriser) are stated in the comments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from avsynth.errors import SourceError
from avsynth.manifest import load_manifest
from avsynth.sources import lvis as L
from avsynth.sources.records import MaskRef, SkipCounter
from tests.fixtures import write_manifest

DOG, CAT, OWL, COW = 1, 2, 3, 4
LICENSES = [{"id": 1, "name": "Attribution License", "url": "http://creativecommons.org/licenses/by/2.0/"},
            {"id": 2, "name": "No URL licence"}, {"id": "3", "name": "string id"}, {"id": 5, "name": ""}, "junk"]


@pytest.fixture
def manifest(tmp_path):
    return load_manifest(write_manifest(tmp_path / "m.yaml", [
        {"name": "doggo", "lvis": ["dog"], "vggsound": ["dog barking"]},
        {"name": "cat", "lvis": ["cat"], "vggsound": ["cat meowing"]},
        {"name": "owl", "lvis": ["owl"], "vggsound": ["owl hooting"]},
        {"name": "lion", "lvis": ["lion"], "vggsound": ["lions roaring"]}]))


def image(root: Path, image_id: int, size=(40, 30), folder="train2017", license=1, **extra) -> dict:
    name = f"{image_id:012d}.jpg"
    (root / folder).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(root / folder / name)
    return {"id": image_id, "coco_url": f"http://images.cocodataset.org/{folder}/{name}", "width": size[0],
            "height": size[1], "license": license, "neg_category_ids": [], "not_exhaustive_category_ids": [],
            **extra}


def ann(ann_id, image_id, cat, box=(1, 2, 10, 5), **extra) -> dict:
    x, y, w, h = box
    return {"id": ann_id, "image_id": image_id, "category_id": cat, "bbox": [x, y, w, h], "area": float(w * h),
            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]], **extra}


def cats():
    return [{"id": i, "name": n} for i, n in ((DOG, "dog"), (CAT, "cat"), (OWL, "owl"), (COW, "cow"))]


def write(path: Path, images, anns, categories=None, licenses=LICENSES) -> Path:
    path.write_text(json.dumps({"licenses": licenses, "images": images, "annotations": anns,
                                "categories": cats() if categories is None else categories}))
    return path


def test_instances_fields_order_licences_and_skips(tmp_path, manifest):
    root = tmp_path / "coco"
    imgs = [image(root, 10), image(root, 9, license=2), image(root, 11, license=99),
            image(root, 12, not_exhaustive_category_ids=[CAT]),
            image(root, 13, size=(40, 31)),  # the JSON says 40 x 30: size differs
            {"id": 14, "coco_url": "", "width": 40, "height": 30},  # no URL, no file_name
            {"id": 15, "file_name": "val2017/000000000015.jpg", "width": 40.0, "height": 30},  # missing file
            {"id": 16, "coco_url": "http://x/train2017/000000000016.jpg", "width": 40.5, "height": 30}]
    imgs[4]["height"] = 30
    (root / "train2017" / "000000000017.jpg").write_bytes(b"not a jpeg")
    imgs.append({"id": 17, "coco_url": "http://x/train2017/000000000017.jpg", "width": 40, "height": 30})
    anns = [ann(5, 10, DOG), ann(3, 10, CAT, box=(0, 0, 4, 4)), ann(7, 9, DOG), ann(8, 11, OWL),
            ann(2, 12, CAT), ann(4, 12, DOG, area=0), ann(20, 13, DOG), ann(21, 14, DOG), ann(22, 15, DOG), ann(29, 15, DOG),
            ann(23, 16, DOG), ann(24, 17, DOG), ann(25, 99, DOG), ann(26, 10, COW),
            ann(27, 10, DOG, bbox=[1, 1, 0, 3]), ann(28, 10, DOG, segmentation=[[1, 2, 3]])]
    path = write(tmp_path / "lvis.json", imgs, anns)
    skips = SkipCounter(max_examples=10)
    got = L.read_lvis(str(path), str(root), manifest, skips)
    assert [(i.image_id, i.annotation_id, i.category, i.source_label) for i in got] == [
        ("9", "7", "doggo", "dog"), ("10", "3", "cat", "cat"), ("10", "5", "doggo", "dog"),
        ("11", "8", "owl", "owl"), ("12", "4", "doggo", "dog")]  # by (image id, annotation id), numerically
    first = got[2]
    assert (first.source, first.image_path, first.width, first.height) == (
        "lvis", root / "train2017" / "000000000010.jpg", 40, 30)
    assert first.bbox == (1.0, 2.0, 10.0, 5.0) and first.area == 50.0
    assert first.mask == MaskRef(polygons=((1.0, 2.0, 11.0, 2.0, 11.0, 7.0, 1.0, 7.0),))
    assert first.license == ("image: Attribution License (http://creativecommons.org/licenses/by/2.0/); "
                             "LVIS v1 annotations: CC BY 4.0")
    assert got[0].license == "image: No URL licence; LVIS v1 annotations: CC BY 4.0"
    assert got[3].license == f"image: {L.DEFAULT_IMAGE_LICENSE}; LVIS v1 annotations: CC BY 4.0"
    assert got[4].area == 50.0  # area 0 in the file: computed from the 10 x 5 polygon (pycocotools: 50)
    assert skips.as_dict() == {
        L.SKIP_BBOX: {"count": 1, "examples": ["image 10 annotation 27"]},
        L.SKIP_POLYGON: {"count": 1, "examples": ["image 10 annotation 28"]},
        L.SKIP_IMAGE_UNKNOWN: {"count": 1, "examples": ["image 99 annotation 25"]},
        L.SKIP_IMAGE_NO_URL: {"count": 2, "examples": ["image 14 annotation 21", "image 16 annotation 23"]},
        L.SKIP_IMAGE_MISSING: {"count": 2, "examples": [str(root / "val2017" / "000000000015.jpg")] * 2},
        L.SKIP_IMAGE_SIZE: {"count": 1, "examples": [str(root / "train2017" / "000000000013.jpg")]},
        L.SKIP_IMAGE_UNREADABLE: {"count": 1, "examples": [str(root / "train2017" / "000000000017.jpg")]},
        L.SKIP_NOT_EXHAUSTIVE: {"count": 1, "examples": ["image 12 annotation 2 (cat)"]},
        L.SKIP_LABEL_ABSENT: {"count": 1, "examples": ["lion"]},
    }
    unchecked = L.read_lvis([path], root, manifest, SkipCounter(), verify_images=False)
    assert {i.image_id for i in unchecked} == {"9", "10", "11", "12", "13", "17"}  # headers not read


def test_two_files_duplicates_and_string_ids(tmp_path, manifest):
    root = tmp_path / "coco"
    a = write(tmp_path / "a.json", [image(root, 2)], [ann(1, 2, DOG)])
    b = write(tmp_path / "b.json", [image(root, 2), image(root, 10)], [ann(1, 2, DOG), ann(3, 10, DOG)])
    skips = SkipCounter()
    got = L.read_lvis([a, b], root, manifest, skips)
    assert [(i.image_id, i.annotation_id) for i in got] == [("2", "1"), ("10", "3")]
    assert skips.as_dict()[L.SKIP_DUPLICATE] == {"count": 1, "examples": ["image 2 annotation 1"]}
    assert L._id_key((10, "a")) < L._id_key(("9", 1)) and L._id_key((9, 1)) < L._id_key((10, 0))
    c = write(tmp_path / "c.json", [image(root, 3)], [ann(4, 3, DOG)], categories=[{"id": DOG, "name": "dog"}])
    d_imgs = [image(root, 5), {**image(root, 6), "id": "zeta"}, {**image(root, 7), "id": "alpha"}]
    d = write(tmp_path / "d.json", d_imgs, [ann(6, "zeta", CAT), ann(5, 5, CAT), ann(7, "alpha", CAT)],
              categories=[{"id": CAT, "name": "cat"}])
    s2 = SkipCounter()
    got = L.read_lvis([c, d], root, manifest, s2)
    # names defined by either file count as present; int ids first (numerically), then strings
    assert s2.examples[L.SKIP_LABEL_ABSENT] == ["lion", "owl"]
    assert [(i.image_id, i.annotation_id) for i in got] == [("3", "4"), ("5", "5"), ("alpha", "7"), ("zeta", "6")]
    none = write(tmp_path / "none.json", [image(root, 2)], [ann(1, 2, COW)], categories=[{"id": COW, "name": "cow"}])
    s = SkipCounter()
    assert L.read_lvis(none, root, manifest, s) == []
    assert s.counts[L.SKIP_LABEL_ABSENT] == 4  # no manifest label defined in that file


def test_verified_labels(tmp_path, manifest):
    root = tmp_path / "coco"
    imgs = [image(root, 30, neg_category_ids=[OWL, COW, CAT], not_exhaustive_category_ids=[DOG]),
            image(root, 4, license=2, neg_category_ids=[DOG, "x", None, 1.5]),
            image(root, 5),  # nothing verified: no record
            {"id": 12, "coco_url": "http://x/train2017/000000000012.jpg", "width": 40, "neg_category_ids": [DOG]},
            image(root, 13, license=99, neg_category_ids=[CAT]),
            image(root, 6, neg_category_ids=[COW]),  # only categories outside the manifest
            {"id": 7, "width": 40, "height": 30, "neg_category_ids": [DOG]},
            {"id": 8, "coco_url": "http://x/train2017/000000000008.jpg", "width": 40, "height": 30,
             "not_exhaustive_category_ids": [CAT]},
            {"id": 9, "coco_url": "http://x/train2017/000000000009.jpg", "width": 40, "height": 30,
             "neg_category_ids": "not a list", "not_exhaustive_category_ids": [OWL]}]
    image(root, 9)
    path = write(tmp_path / "l.json", imgs, [])
    labels: list = []
    skips = SkipCounter()
    L.read_lvis(path, root, manifest, skips, image_labels=labels)
    # sorted by image id as a string (the record's id): "30" < "4" < "9" (instances sort numerically)
    assert [(r.image_id, r.negatives, r.not_exhaustive) for r in labels] == [
        ("13", ("cat",), ()), ("30", ("cat", "owl"), ("doggo",)), ("4", ("doggo",), ()), ("9", (), ("owl",))]
    assert labels.pop(0).license == f"image: {L.DEFAULT_IMAGE_LICENSE}; LVIS v1 annotations: CC BY 4.0"
    r = labels[0]
    assert (r.source, r.image_path, r.width, r.height) == ("lvis", root / "train2017" / "000000000030.jpg", 40, 30)
    assert r.license == ("image: Attribution License (http://creativecommons.org/licenses/by/2.0/); "
                         "LVIS v1 annotations: CC BY 4.0")
    assert labels[1].license == "image: No URL licence; LVIS v1 annotations: CC BY 4.0"
    assert skips.as_dict()[L.SKIP_LABELS_IMAGE] == {"count": 3, "examples": [
        "image 12: no coco_url/file_name or size", "image 7: no coco_url/file_name or size",  # file order
        f"{root / 'train2017' / '000000000008.jpg'}: {L.SKIP_IMAGE_MISSING}"]}
    other: list = []
    only_cow = write(tmp_path / "c.json", imgs, [], categories=[{"id": COW, "name": "cow"}])
    L.read_lvis(only_cow, root, manifest, SkipCounter(), image_labels=other)
    assert other == []


def test_image_relpath_pixels_bbox_area():
    rel = L.image_relpath
    assert rel({"coco_url": " http://images.cocodataset.org/val2017/000000000139.jpg "}) == "val2017/000000000139.jpg"
    assert rel({"coco_url": "http://h/a/b/c/x.jpg"}) == "c/x.jpg"
    assert rel({"coco_url": "http://host/x.jpg"}) == "x.jpg"
    assert rel({"coco_url": "http://host/", "file_name": " train2017/y.jpg "}) == "train2017/y.jpg"
    assert rel({"coco_url": "   ", "file_name": "z.jpg"}) == "z.jpg"
    assert rel({"coco_url": 5, "file_name": "  "}) is None and rel({}) is None and rel({"file_name": 3}) is None
    px = L._pixels
    assert (px(640), px(640.0), px(1)) == (640, 640, 1) and type(px(640.0)) is int
    assert [px(v) for v in (0, -3, 640.5, True, "640", None, float("inf"))] == [None] * 7
    assert L._bbox({"bbox": [1, 2, 3, 4]}) == (1.0, 2.0, 3.0, 4.0)
    assert L._bbox({"bbox": [1, 2, 0.5, 0.25]}) == (1.0, 2.0, 0.5, 0.25)  # sub-pixel boxes are boxes
    for bad in ([1, 2, 0, 4], [1, 2, 3, 0], [1, 2, -3, 4], [1, 2, 3], [1, 2, 3, 4, 5], [1, 2, True, 4],
                [1, 2, float("nan"), 4], (1, 2, 3, 4), None):
        assert L._bbox({"bbox": bad}) is None, bad
    tri = MaskRef(polygons=((1.0, 1.0, 4.0, 1.0, 4.0, 3.0),))  # pycocotools: 3 pixels
    for area in (None, 0, -2, float("nan"), True, "9"):
        assert L._area({"area": area}, tri, 8, 12) == 3.0, area
    assert L._area({"area": 7}, tri, 8, 12) == 7.0
    assert L._area({"area": 0.5}, tri, 8, 12) == 0.5  # any positive stated area is kept
    rle = L.parse_segmentation({"size": [3, 4], "counts": [2, 5, 5]}, 3, 4)  # 5 of 12 pixels set
    assert L._area({}, rle, 3, 4) == 5.0
    two = MaskRef(polygons=((0.0, 0.0, 10.0, 0.0, 10.0, 5.0, 0.0, 5.0), (1.0, 1.0, 4.0, 1.0, 4.0, 3.0)))
    assert L._area({}, two, 8, 12) == 50.0  # merged: the triangle lies inside the rectangle


def test_parse_segmentation():
    ps = L.parse_segmentation
    assert ps([[0, 0, 4, 0, 4, 4], [1, 1, 2, 2]], 8, 8) == MaskRef(polygons=((0.0, 0.0, 4.0, 0.0, 4.0, 4.0),))
    assert ps([[1, 1, 2, 2]], 8, 8) is None  # every part degenerate
    for bad in ([[0, 0, 4, 0, 4]], [[0, 0, 4, 0, 4, "4"]], [[0, 0, 4, 0, True, 4]], [(0, 0, 4, 0, 4, 4)], [], "x", None):
        assert ps(bad, 8, 8) is None, bad
    unc = ps({"size": [3, 4], "counts": [2, 5, 5]}, 3, 4)
    assert unc.rle[0] == (3, 4) and isinstance(unc.rle[1], str) and unc.rle[1]
    assert ps({"size": [3, 4], "counts": b"abc"}, 3, 4) == MaskRef(rle=((3, 4), "abc"))
    assert ps({"size": ["3", 4.0], "counts": "abc"}, 3, 4) == MaskRef(rle=((3, 4), "abc"))
    assert ps({"size": [1, 1], "counts": "01"}, 1, 1) == MaskRef(rle=((1, 1), "01"))  # a 1 x 1 mask
    assert ps({"size": [3, 0], "counts": "a"}, 3, 4) is None
    for bad in ({"counts": "abc"}, {"size": [3, 4]}, {"size": [0, 4], "counts": "a"}, {"size": [3, -1], "counts": "a"},
                {"size": [3, 4], "counts": ""}, {"size": [3, 4], "counts": 5}, {"size": [3], "counts": "a"},
                {"size": ["x", 4], "counts": "a"}, {"size": None, "counts": "a"}):
        assert ps(bad, 3, 4) is None, bad


def test_json_errors(tmp_path, manifest):
    root = tmp_path / "coco"
    root.mkdir()

    def err(path) -> str:
        with pytest.raises(SourceError) as e:
            L.read_lvis(path, root, manifest, SkipCounter())
        return str(e.value)

    p = tmp_path / "l.json"
    assert err(p) == f"{p}: LVIS annotation JSON not found"
    p.write_text('{"images": [,]}')
    assert err(p) == f"{p}: malformed JSON at line 1 column 13: Expecting value"
    p.write_bytes(b'{"a": "\xff"}')
    assert err(p) == f"{p}: not a UTF-8 JSON file (byte 7)"
    if Path("/proc/self/mem").is_file():  # a regular file whose read fails (EIO), root or not
        assert err(Path("/proc/self/mem")) == "/proc/self/mem: cannot read LVIS JSON: Input/output error"
    cases = {
        "[]": "LVIS JSON must be an object, found list",
        '{"images": [], "b": 1}': "not an LVIS annotation file: missing top-level keys ['annotations', "
                                  "'categories'] (found ['b', 'images'])",
        '{"images": {}, "annotations": [], "categories": []}': "'images' must be a list, found dict",
        '{"images": [], "annotations": [1], "categories": []}': "'annotations'[0] must be an object",
        '{"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}, {"id": 2}]}':
            "'categories'[1] lacks required keys ['name']",
        '{"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": [1], "category_id": null}], "categories": []}':
            "'annotations'[0]: ['image_id', 'category_id'] must be integers or strings",
    }
    for text, want in cases.items():
        p.write_text(text)
        assert err(p) == f"{p}: {want}", text
    many = {f"k{i:02d}": 1 for i in range(12)}
    p.write_text(json.dumps(many))
    assert err(p).endswith("(found ['k00', 'k01', 'k02', 'k03', 'k04', 'k05', 'k06', 'k07', 'k08', 'k09'])")
    with pytest.raises(SourceError) as e:
        L.read_lvis(p, tmp_path / "nothere", manifest, SkipCounter())
    assert str(e.value) == f"{tmp_path / 'nothere'}: COCO images root (with train2017/, val2017/) not found"
