"""Read Open Images V7 instance segmentations into ``ImageInstance`` records (reads only).

Layout below ``root`` (the official release, DESIGN §3)::

    oidv7-class-descriptions-boxable.csv          MID,DisplayName (with or without a header row)
    {split}-annotations-object-segmentation.csv   MaskPath,ImageID,LabelName,BoxID,BoxXMin,
                                                  BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks
    {split}-masks/{split}-masks-{0..f}.zip        mask PNGs, zipped by the first hex char of ImageID
    {split}-masks/[...]/*.png                     ...or the same PNGs unzipped
    {split}/{ImageID}.jpg                         images

Box coordinates are normalised to [0, 1]; records carry absolute xywh pixels. A mask PNG need not
have the image's resolution: the area is measured in the mask and scaled to the image.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from pathlib import Path

from avsynth.errors import SourceError
from avsynth.manifest import Category, Manifest
from avsynth.sources._files import DirIndex, csv_rows, decode_mask, image_size, mask_box_area
from avsynth.sources.records import ImageInstance, ImageLabels, MaskRef, SkipCounter

SOURCE = "openimages"
CLASS_FILE = "oidv7-class-descriptions-boxable.csv"
LICENSE = "image: CC BY 2.0 (as listed by Open Images); Open Images V7 annotations: CC BY 4.0"
COLUMNS = (
    "MaskPath", "ImageID", "LabelName", "BoxID",
    "BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax", "PredictedIoU", "Clicks",
)  # fmt: skip
_MID = re.compile(r"^/[mg]/[0-9a-z_]+$")

SKIP_MALFORMED = "openimages: malformed annotation row"
SKIP_BOX = "openimages: invalid box coordinates"
SKIP_IMAGE_MISSING = "openimages: image file missing"
SKIP_IMAGE_UNREADABLE = "openimages: image file unreadable"
SKIP_MASK_MISSING = "openimages: mask PNG missing"
SKIP_MASK_UNREADABLE = "openimages: mask PNG unreadable"
SKIP_MASK_EMPTY = "openimages: mask PNG is empty"
SKIP_LABEL_ABSENT = "openimages: manifest label not in class descriptions"
SKIP_DUPLICATE = "openimages: duplicate mask"


def read_class_descriptions(path: Path) -> dict[str, str]:
    """MID -> display name from ``oidv7-class-descriptions-boxable.csv``.

    The V7 file starts with a ``LabelName,DisplayName`` header; older releases have none. A first
    row whose first field is not a MID (``/m/...`` or ``/g/...``) is taken as a header.
    """
    out: dict[str, str] = {}
    for line, fields in csv_rows(path, "Open Images class descriptions"):
        if not fields or not any(f.strip() for f in fields):
            continue
        mid = fields[0].strip()
        if line == 1 and not _MID.match(mid):
            continue  # header row
        if len(fields) != 2 or not _MID.match(mid) or not fields[1].strip():
            raise SourceError(
                path, f"line {line}: expected 'MID,DisplayName' (e.g. /m/0bt9lr,Dog), got {fields}"
            )
        out[mid] = fields[1].strip()
    if not out:
        raise SourceError(path, "no classes found")
    return out


class MaskStore:
    """Finds mask PNGs: the 16 per-split zips, or the unzipped PNGs (listed once).

    Zips are looked for in ``{root}/{split}-masks/`` and ``{root}/``; PNGs in
    ``{root}/{split}-masks/`` and its immediate sub-folders (e.g. ``train-masks-0/`` as unzipped).
    """

    def __init__(self, root: Path, split: str):
        self.root = Path(root)
        self.split = split
        self.mask_dir = self.root / f"{split}-masks"
        self.zips: dict[str, Path] = {}
        self.pngs: dict[str, Path] = {}
        self._members: dict[str, dict[str, str]] = {}
        self._open: dict[Path, zipfile.ZipFile] = {}
        pattern = re.compile(rf"^{re.escape(split)}-masks-([0-9a-f])\.zip$")
        for directory in (self.root, self.mask_dir):
            for name in sorted(DirIndex(directory).names):
                m = pattern.match(name)
                if m:
                    self.zips.setdefault(m.group(1), directory / name)
        self._scan_pngs()
        if not self.zips and not self.pngs:
            raise SourceError(
                self.mask_dir,
                f"no Open Images masks: expected {split}-masks-{{0..f}}.zip or unzipped PNGs",
            )

    def _scan_pngs(self) -> None:
        try:
            entries = sorted(os.scandir(self.mask_dir), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.is_file() and entry.name.endswith(".png"):
                self.pngs.setdefault(entry.name, Path(entry.path))
            elif entry.is_dir():
                for name in sorted(DirIndex(Path(entry.path)).names):
                    if name.endswith(".png"):
                        self.pngs.setdefault(name, Path(entry.path) / name)

    def _zip_members(self, key: str) -> dict[str, str]:
        if key not in self._members:
            members: dict[str, str] = {}
            path = self.zips.get(key)
            if path is not None:
                try:
                    with zipfile.ZipFile(path) as zf:
                        for name in zf.namelist():
                            if name.endswith(".png"):
                                members.setdefault(name.rsplit("/", 1)[-1], name)
                except (OSError, zipfile.BadZipFile) as err:
                    raise SourceError(path, f"unreadable mask zip: {err}") from None
            self._members[key] = members
        return self._members[key]

    def find(self, mask_name: str, image_id: str) -> MaskRef | None:
        if mask_name in self.pngs:
            return MaskRef(png=self.pngs[mask_name])
        key = image_id[:1].lower()
        member = self._zip_members(key).get(mask_name)
        return None if member is None else MaskRef(png=self.zips[key], png_member=member)

    def read(self, ref: MaskRef) -> bytes | Path | None:
        """The PNG's path, or its bytes when zipped (None if the zip member cannot be read)."""
        if ref.png_member is None:
            return ref.png
        try:
            zf = self._open.get(ref.png)
            if zf is None:
                zf = self._open[ref.png] = zipfile.ZipFile(ref.png)
            return zf.read(ref.png_member)
        except (OSError, zipfile.BadZipFile, KeyError):
            return None

    def close(self) -> None:
        for zf in self._open.values():
            zf.close()
        self._open.clear()


def _floats(values: list[str]) -> list[float] | None:
    try:
        out = [float(v) for v in values]
    except ValueError:
        return None
    return out if all(math.isfinite(v) for v in out) else None


def read_openimages(
    root: Path,
    split: str,
    manifest: Manifest,
    skips: SkipCounter,
    *,
    measure_masks: bool = True,
) -> list[ImageInstance]:
    """Instances of the manifest's Open Images classes in ``split``, sorted by (ImageID, mask).

    Image sizes come from the JPEG headers (read once per selected image). With ``measure_masks``
    each selected mask PNG is decoded once to measure its area (scaled to the image) and to skip
    unreadable or empty masks; otherwise the area is the box area.
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(root, "Open Images root directory not found")
    classes = read_class_descriptions(root / CLASS_FILE)
    wanted = manifest.by_source_label(SOURCE)
    by_name = {name: mid for mid, name in classes.items()}
    selected: dict[str, tuple[Category, str]] = {}
    for label, category in wanted.items():
        mid = label if label in classes else by_name.get(label)
        if mid is None:
            skips.skip(SKIP_LABEL_ABSENT, label)
        else:
            selected[mid] = (category, classes[mid])
    csv_path = root / f"{split}-annotations-object-segmentation.csv"
    rows = csv_rows(csv_path, "Open Images segmentation annotations")
    col = _columns(csv_path, next(rows, (0, []))[1])
    images_dir = root / split
    if not images_dir.is_dir():
        raise SourceError(images_dir, f"Open Images {split} image folder not found")
    masks = MaskStore(root, split)
    reader = _RowReader(images_dir, masks, measure_masks, skips)
    try:
        found = _read_rows(rows, col, csv_path, selected, reader, skips)
    finally:
        masks.close()
    return [found[k] for k in sorted(found)]


def _read_rows(
    rows, col, csv_path, selected, reader, skips
) -> dict[tuple[str, str], ImageInstance]:
    found: dict[tuple[str, str], ImageInstance] = {}
    for line, fields in rows:
        if not fields:
            continue
        if len(fields) != len(col) or fields[col["LabelName"]] not in selected:
            if len(fields) != len(col):
                skips.skip(SKIP_MALFORMED, f"{csv_path.name}:{line}")
            continue
        category, label = selected[fields[col["LabelName"]]]
        inst = reader.instance({k: fields[i] for k, i in col.items()}, category, label, line)
        if inst is None:
            continue
        key = (inst.image_id, inst.annotation_id)
        if key in found:
            skips.skip(SKIP_DUPLICATE, f"{csv_path.name}:{line}")
            continue
        found[key] = inst
    return found


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    names = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise SourceError(
            path, f"missing columns {missing} (header has {names[:12]}); expected {list(COLUMNS)}"
        )
    return {name: i for i, name in enumerate(names)}


class _RowReader:
    """Turns selected CSV rows into instances; probes each image header once."""

    def __init__(self, images_dir: Path, masks: MaskStore, measure: bool, skips: SkipCounter):
        self.images = DirIndex(images_dir)
        self.masks = masks
        self.measure = measure
        self.skips = skips
        self._sizes: dict[str, tuple[int, int] | str] = {}

    def _image(self, image_id: str) -> tuple[Path, tuple[int, int] | str]:
        path = self.images.directory / f"{image_id}.jpg"
        if image_id not in self._sizes:
            if path.name not in self.images:
                self._sizes[image_id] = SKIP_IMAGE_MISSING
            else:
                self._sizes[image_id] = image_size(path) or SKIP_IMAGE_UNREADABLE
        return path, self._sizes[image_id]

    def instance(self, row: dict, category: Category, label: str, line: int):
        image_id, mask_name = row["ImageID"].strip(), row["MaskPath"].strip()
        where = f"line {line} ({mask_name})"
        box = _floats([row[k] for k in ("BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax")])
        if not image_id or not mask_name or box is None:
            self.skips.skip(SKIP_MALFORMED, where)
            return None
        x0, x1, y0, y1 = box
        if not (0.0 <= x0 < x1 <= 1.0 + 1e-6 and 0.0 <= y0 < y1 <= 1.0 + 1e-6):
            self.skips.skip(SKIP_BOX, where)
            return None
        path, size = self._image(image_id)
        if isinstance(size, str):
            self.skips.skip(size, str(path))
            return None
        ref = self.masks.find(mask_name, image_id)
        if ref is None:
            self.skips.skip(SKIP_MASK_MISSING, mask_name)
            return None
        w, h = size
        bbox = (x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h)
        area = bbox[2] * bbox[3]
        if self.measure:
            data = self.masks.read(ref)
            mask = None if data is None else decode_mask(data)
            if mask is None:
                self.skips.skip(SKIP_MASK_UNREADABLE, mask_name)
                return None
            measured = mask_box_area(mask, w, h)
            if measured is None:
                self.skips.skip(SKIP_MASK_EMPTY, mask_name)
                return None
            area = measured[1]
        return ImageInstance(
            source=SOURCE,
            image_id=image_id,
            annotation_id=mask_name[:-4] if mask_name.endswith(".png") else mask_name,
            category=category.name,
            source_label=label,
            image_path=path,
            width=w,
            height=h,
            mask=ref,
            bbox=bbox,
            area=area,
            license=LICENSE,
        )


# ---------------------------------------------------------------------------------------------
# Human-verified image-level labels: the verified negatives

IMAGE_LABEL_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence")
SKIP_LABEL_ROW = "openimages: malformed image-level label row"
SKIP_LABEL_IMAGE = "openimages: image with a verified negative label missing or unreadable"
_LABEL_FILE = re.compile(r"^(?P<split>train|validation|test)-annotations-human-imagelabels(-boxable)?\.csv$")


def read_openimages_negatives(
    labels_csv: Path, root: Path, manifest: Manifest, skips: SkipCounter
) -> list[ImageLabels]:
    """Verified-absent manifest categories per image from a human-verified image-level label file.

    ``labels_csv`` is ``{split}-annotations-human-imagelabels[-boxable].csv`` (``ImageID, Source,
    LabelName, Confidence``); every row of that file was checked by a person, and ``Confidence``
    0 means the class was verified **absent**. Only those rows are read: a class that is simply
    not listed is unknown, never a negative. Images are ``root/{split}/{ImageID}.jpg``.
    """
    labels_csv, root = Path(labels_csv), Path(root)
    m = _LABEL_FILE.match(labels_csv.name)
    if m is None:
        raise SourceError(labels_csv, "expected {train,validation,test}-annotations-human-imagelabels[-boxable].csv")
    classes = read_class_descriptions(root / CLASS_FILE)
    by_name = {name: mid for mid, name in classes.items()}
    selected: dict[str, str] = {}
    for label, category in manifest.by_source_label(SOURCE).items():
        mid = label if label in classes else by_name.get(label)
        if mid is not None:
            selected[mid] = category.name
    rows = csv_rows(labels_csv, "Open Images image-level labels")
    header = [h.strip() for h in next(rows, (0, []))[1]]
    missing = [c for c in IMAGE_LABEL_COLUMNS if c not in header]
    if missing:
        raise SourceError(labels_csv, f"missing columns {missing} (header has {header[:8]})")
    col = {name: i for i, name in enumerate(header)}
    negatives: dict[str, set[str]] = {}
    for line, fields in rows:
        if not fields:
            continue
        if len(fields) != len(header):
            skips.skip(SKIP_LABEL_ROW, f"{labels_csv.name}:{line}")
            continue
        mid, conf = fields[col["LabelName"]].strip(), fields[col["Confidence"]].strip()
        if mid not in selected:
            continue
        try:
            verified_absent = float(conf) == 0.0
        except ValueError:
            skips.skip(SKIP_LABEL_ROW, f"{labels_csv.name}:{line}")
            continue
        if verified_absent:
            negatives.setdefault(fields[col["ImageID"]].strip(), set()).add(selected[mid])
    images = DirIndex(root / m["split"]) if (root / m["split"]).is_dir() else None
    out = []
    for image_id in sorted(negatives):
        path = root / m["split"] / f"{image_id}.jpg"
        size = image_size(path) if images is not None and path.name in images else None
        if size is None:
            skips.skip(SKIP_LABEL_IMAGE, str(path))
            continue
        out.append(ImageLabels(SOURCE, image_id, path, size[0], size[1], tuple(sorted(negatives[image_id])),
                               (), LICENSE))
    return out
