"""Read LVIS v1 annotation files into ``ImageInstance`` records (reads only, writes nothing).

Parsing goes through the official ``lvis`` API. What LVIS v1 looks like (DESIGN §3): ``categories``
(id, name, synset, synonyms, frequency), ``images`` (id, coco_url, width, height, license,
neg_category_ids, not_exhaustive_category_ids; no file_name: the file is COCO's
``train2017/`` or ``val2017/`` image named in ``coco_url``) and ``annotations`` (id, image_id,
category_id, polygon segmentation, bbox xywh, area).

Bad single items become counted skips; an unreadable or structurally wrong file is a SourceError.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlparse

from lvis import LVIS
from pycocotools import mask as mask_utils

from avsynth.errors import SourceError
from avsynth.manifest import Category, Manifest
from avsynth.sources._files import DirIndex, image_size
from avsynth.sources.records import ImageInstance, ImageLabels, MaskRef, Polygon, SkipCounter

SOURCE = "lvis"
ANNOTATION_LICENSE = "LVIS v1 annotations: CC BY 4.0"
DEFAULT_IMAGE_LICENSE = "COCO image: Flickr terms of use (see the COCO licence list)"
_REQUIRED = {
    "images": ("id",),
    "annotations": ("id", "image_id", "category_id"),
    "categories": ("id", "name"),
}

# Skip reasons (stable strings: they are recorded in the build manifest).
SKIP_NOT_EXHAUSTIVE = "lvis: category not exhaustively annotated in image"
SKIP_IMAGE_MISSING = "lvis: image file missing"
SKIP_IMAGE_UNREADABLE = "lvis: image file unreadable"
SKIP_IMAGE_SIZE = "lvis: image size differs from annotation"
SKIP_IMAGE_NO_URL = "lvis: image record lacks coco_url/file_name or width/height"
SKIP_IMAGE_UNKNOWN = "lvis: annotation refers to an unknown image"
SKIP_POLYGON = "lvis: empty or invalid segmentation"
SKIP_BBOX = "lvis: invalid bbox"
SKIP_DUPLICATE = "lvis: duplicate annotation id"
SKIP_LABEL_ABSENT = "lvis: manifest label not in annotation file"


class _CheckedLVIS(LVIS):
    """The ``lvis`` API with the loaded JSON validated before it indexes it.

    Without this a malformed file surfaces as a raw KeyError / JSONDecodeError / AssertionError.
    """

    def _load_json(self, path):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as err:
            raise SourceError(
                path, f"malformed JSON at line {err.lineno} column {err.colno}: {err.msg}"
            ) from None
        except UnicodeDecodeError as err:
            raise SourceError(path, f"not a UTF-8 JSON file (byte {err.start})") from None
        except OSError as err:
            raise SourceError(path, f"cannot read LVIS JSON: {err.strerror or err}") from None
        validate_lvis_json(data, Path(path))
        return data


def validate_lvis_json(data, path: Path) -> None:
    """Raise SourceError unless ``data`` has the structure the lvis API indexes."""
    if not isinstance(data, dict):
        raise SourceError(path, f"LVIS JSON must be an object, found {type(data).__name__}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise SourceError(
            path,
            f"not an LVIS annotation file: missing top-level keys {missing} "
            f"(found {sorted(data)[:10]})",
        )
    for key, needed in _REQUIRED.items():
        items = data[key]
        if not isinstance(items, list):
            raise SourceError(path, f"'{key}' must be a list, found {type(items).__name__}")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise SourceError(path, f"'{key}'[{i}] must be an object")
            lacking = [k for k in needed if k not in item]
            if lacking:
                raise SourceError(path, f"'{key}'[{i}] lacks required keys {lacking}")
            bad = [k for k in needed if not isinstance(item[k], (int, str))]
            if bad:
                raise SourceError(path, f"'{key}'[{i}]: {bad} must be integers or strings")


def load_lvis(json_path: Path) -> LVIS:
    """Load one LVIS JSON through the lvis API, with clear errors for missing/malformed files."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise SourceError(json_path, "LVIS annotation JSON not found")
    return _CheckedLVIS(str(json_path))


def image_relpath(img: dict) -> str | None:
    """The image's path below the COCO images root: ``train2017/000000391895.jpg``.

    Derived from ``coco_url`` (LVIS v1 has no file_name); a COCO-style ``file_name`` is used when
    there is no URL.
    """
    url = img.get("coco_url")
    if isinstance(url, str) and url.strip():
        parts = [p for p in urlparse(url.strip()).path.split("/") if p]
        if len(parts) >= 2:
            return f"{parts[-2]}/{parts[-1]}"
        if parts:
            return parts[-1]
    name = img.get("file_name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return None


def _finite(values) -> bool:
    return all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )


def parse_segmentation(seg, height: int, width: int) -> MaskRef | None:
    """A MaskRef from an LVIS/COCO segmentation, or None if it is empty or malformed.

    Polygons: each a flat list of at least 3 (x, y) points of finite numbers. Parts with fewer than
    3 points are degenerate and dropped; a non-numeric or odd-length part invalidates the instance.
    COCO RLE dicts (compressed or not) are accepted too.
    """
    if isinstance(seg, dict):
        try:
            if isinstance(seg.get("counts"), list):
                seg = mask_utils.frPyObjects(seg, height, width)
            counts = seg["counts"]
            counts = counts.decode("ascii") if isinstance(counts, bytes) else counts
            h, w = (int(v) for v in seg["size"])
        except (KeyError, TypeError, ValueError):
            return None
        if not isinstance(counts, str) or not counts or h <= 0 or w <= 0:
            return None
        return MaskRef(rle=((h, w), counts))
    if not isinstance(seg, list) or not seg:
        return None
    polys: list[Polygon] = []
    for part in seg:
        if not isinstance(part, list) or len(part) % 2 or not _finite(part):
            return None
        if len(part) >= 6:
            polys.append(tuple(float(v) for v in part))
    return MaskRef(polygons=tuple(polys)) if polys else None


def _bbox(ann: dict) -> tuple[float, float, float, float] | None:
    box = ann.get("bbox")
    if not isinstance(box, list) or len(box) != 4 or not _finite(box):
        return None
    x, y, w, h = (float(v) for v in box)
    return (x, y, w, h) if w > 0 and h > 0 else None


def _area(ann: dict, mask: MaskRef, height: int, width: int) -> float:
    area = ann.get("area")
    if _finite([area]) and area > 0:
        return float(area)
    if mask.polygons is not None:
        rles = mask_utils.frPyObjects([list(p) for p in mask.polygons], height, width)
        return float(mask_utils.area(mask_utils.merge(rles)))
    (h, w), counts = mask.rle
    return float(mask_utils.area({"size": [h, w], "counts": counts.encode("ascii")}))


def _license_names(dataset: dict) -> dict[int, str]:
    out = {}
    for lic in dataset.get("licenses") or []:
        if isinstance(lic, dict) and isinstance(lic.get("id"), int) and lic.get("name"):
            url = f" ({lic['url']})" if lic.get("url") else ""
            out[lic["id"]] = f"{lic['name']}{url}"
    return out


class _ImageChecker:
    """Resolves image files below the COCO root; lists each folder once, probes each header once."""

    def __init__(self, images_root: Path, verify: bool):
        self.root = Path(images_root)
        self.verify = verify
        self._dirs: dict[Path, DirIndex] = {}
        self._verdict: dict[Path, str | None] = {}

    def check(self, relpath: str, width: int, height: int) -> tuple[Path, str | None]:
        """The image path and None, or the path and a skip reason."""
        path = self.root / relpath
        if path in self._verdict:
            return path, self._verdict[path]
        index = self._dirs.setdefault(path.parent, DirIndex(path.parent))
        reason = None
        if path.name not in index:
            reason = SKIP_IMAGE_MISSING
        elif self.verify:
            size = image_size(path)
            if size is None:
                reason = SKIP_IMAGE_UNREADABLE
            elif size != (width, height):
                reason = SKIP_IMAGE_SIZE
        self._verdict[path] = reason
        return path, reason


def _pixels(value) -> int | None:
    """A positive integral image dimension (640 or 640.0), else None."""
    if _finite([value]) and value > 0 and float(value).is_integer():
        return int(value)
    return None


def _as_list(json_paths: Path | str | Iterable[Path | str]) -> list[Path]:
    if isinstance(json_paths, (str, Path)):
        return [Path(json_paths)]
    return [Path(p) for p in json_paths]


def read_lvis(
    json_paths: Path | list[Path],
    images_root: Path,
    manifest: Manifest,
    skips: SkipCounter,
    *,
    verify_images: bool = True,
    image_labels: list[ImageLabels] | None = None,
) -> list[ImageInstance]:
    """Instances of the manifest's LVIS categories, sorted by (image id, annotation id).

    ``json_paths``: one or more LVIS JSON files (e.g. lvis_v1_train.json and lvis_v1_val.json);
    ``images_root``: the COCO images folder holding ``train2017/`` and ``val2017/``.
    ``verify_images`` reads each used image's header once (a corrupt file or one whose size
    differs from the JSON is skipped). Missing files and bad records are counted in ``skips``.
    ``image_labels``: when a list is given, one :class:`ImageLabels` per image that lists a
    manifest category in ``neg_category_ids`` or ``not_exhaustive_category_ids`` is appended to it
    (sorted by image id; images whose file is missing are counted skips).
    """
    images_root = Path(images_root)
    if not images_root.is_dir():
        raise SourceError(images_root, "COCO images root (with train2017/, val2017/) not found")
    wanted = manifest.by_source_label(SOURCE)
    checker = _ImageChecker(images_root, verify_images)
    found: dict[tuple[int, int], ImageInstance] = {}
    present: set[str] = set()
    for json_path in _as_list(json_paths):
        api = load_lvis(json_path)
        present |= _collect(api, wanted, checker, skips, found)
        if image_labels is not None:
            image_labels.extend(_image_labels(api, wanted, checker, skips))
    for label in sorted(set(wanted) - present):
        skips.skip(SKIP_LABEL_ABSENT, label)
    return [found[k] for k in sorted(found, key=_id_key)]


def _id_key(key: tuple) -> tuple:
    return tuple((0, v, "") if isinstance(v, int) else (1, 0, str(v)) for v in key)


def _collect(
    api: LVIS,
    wanted: dict[str, Category],
    checker: _ImageChecker,
    skips: SkipCounter,
    found: dict[tuple, ImageInstance],
) -> set[str]:
    """Add the file's selected instances to ``found``; return the category names it defines."""
    selected: dict[object, tuple[Category, str]] = {}
    for cat in api.cats.values():
        if cat["name"] in wanted:
            selected[cat["id"]] = (wanted[cat["name"]], cat["name"])
    names = {cat["name"] for cat in api.cats.values()}
    if not selected:
        return names
    licenses = _license_names(api.dataset)
    for ann in api.dataset["annotations"]:
        if ann["category_id"] not in selected:
            continue
        ann_id = ann["id"]
        category, label = selected[ann["category_id"]]
        example = f"image {ann['image_id']} annotation {ann_id}"
        img = api.imgs.get(ann["image_id"])
        if img is None:
            skips.skip(SKIP_IMAGE_UNKNOWN, example)
            continue
        not_exhaustive = img.get("not_exhaustive_category_ids")
        if isinstance(not_exhaustive, list) and ann["category_id"] in not_exhaustive:
            skips.skip(SKIP_NOT_EXHAUSTIVE, f"{example} ({label})")
            continue
        inst = _instance(ann, img, category, label, checker, licenses, skips, example)
        if inst is None:
            continue
        key = (img["id"], ann_id)
        if key in found:
            skips.skip(SKIP_DUPLICATE, example)
            continue
        found[key] = inst
    return names


def _instance(ann, img, category, label, checker, licenses, skips, example) -> ImageInstance | None:
    rel = image_relpath(img)
    width, height = _pixels(img.get("width")), _pixels(img.get("height"))
    if rel is None or width is None or height is None:
        skips.skip(SKIP_IMAGE_NO_URL, example)
        return None
    path, reason = checker.check(rel, width, height)
    if reason is not None:
        skips.skip(reason, str(path))
        return None
    mask = parse_segmentation(ann.get("segmentation"), height, width)
    if mask is None:
        skips.skip(SKIP_POLYGON, example)
        return None
    bbox = _bbox(ann)
    if bbox is None:
        skips.skip(SKIP_BBOX, example)
        return None
    image_license = licenses.get(img.get("license"), DEFAULT_IMAGE_LICENSE)
    return ImageInstance(
        source=SOURCE,
        image_id=str(img["id"]),
        annotation_id=str(ann["id"]),
        category=category.name,
        source_label=label,
        image_path=path,
        width=width,
        height=height,
        mask=mask,
        bbox=bbox,
        area=_area(ann, mask, height, width),
        license=f"image: {image_license}; {ANNOTATION_LICENSE}",
    )


SKIP_LABELS_IMAGE = "lvis: image with verified labels unusable"


def _image_labels(api: LVIS, wanted: dict[str, Category], checker: _ImageChecker,
                  skips: SkipCounter) -> list[ImageLabels]:
    """The verified negatives and not-exhaustive categories of each image, as manifest names."""
    by_id: dict[object, str] = {}
    for cat in api.cats.values():
        if cat["name"] in wanted:
            by_id[cat["id"]] = wanted[cat["name"]].name
    if not by_id:
        return []
    licenses = _license_names(api.dataset)
    out = []
    for img in api.dataset["images"]:
        def names(key: str) -> tuple[str, ...]:
            ids = img.get(key)
            ids = ids if isinstance(ids, list) else []
            return tuple(sorted({by_id[i] for i in ids if isinstance(i, (int, str)) and i in by_id}))

        neg, not_exh = names("neg_category_ids"), names("not_exhaustive_category_ids")
        if not neg and not not_exh:
            continue
        rel = image_relpath(img)
        width, height = _pixels(img.get("width")), _pixels(img.get("height"))
        if rel is None or width is None or height is None:
            skips.skip(SKIP_LABELS_IMAGE, f"image {img['id']}: no coco_url/file_name or size")
            continue
        path, reason = checker.check(rel, width, height)
        if reason is not None:
            skips.skip(SKIP_LABELS_IMAGE, f"{path}: {reason}")
            continue
        image_license = licenses.get(img.get("license"), DEFAULT_IMAGE_LICENSE)
        out.append(ImageLabels(SOURCE, str(img["id"]), path, width, height, neg, not_exh,
                               f"image: {image_license}; {ANNOTATION_LICENSE}"))
    out.sort(key=lambda r: _id_key((r.image_id,)))
    return out
