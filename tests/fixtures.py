"""Builders of small hand-made source trees in the REAL formats (LVIS v1 JSON + COCO folders,
Open Images V7 segmentation release, VGGSound csv + clips, AVS-Synthetic release).

Images are the real photographs in ``shared/data/real/images``; audio is the real VGGSound clip.
Each builder writes exactly what the real release has, nothing more.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REAL_CLIP = "vggsound/FwVYUHKoLtQ_000034.wav"  # "playing violin, fiddle"
REAL_CLIP_LABEL = "playing violin, fiddle"

COCO_LICENSES = [
    {"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1,
     "name": "Attribution-NonCommercial-ShareAlike License"},
    {"url": "http://creativecommons.org/licenses/by/2.0/", "id": 4, "name": "Attribution License"},
]  # fmt: skip


def photo(real_dir: Path, name: str = "dog.jpg") -> Path:
    return Path(real_dir) / "images" / name


def photo_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def write_manifest(path: Path, categories: list[dict], name: str = "test") -> Path:
    """A category manifest YAML (entries: name, lvis, openimages, vggsound)."""
    path.write_text(yaml.safe_dump({"name": name, "categories": categories}), encoding="utf-8")
    return path


# ---- LVIS v1 + COCO images ---------------------------------------------------------------------


def coco_image(
    images_root: Path,
    image_id: int,
    src: Path,
    folder: str = "train2017",
    *,
    not_exhaustive: tuple[int, ...] = (),
    license_id: int = 4,
    copy: bool = True,
) -> dict:
    """Place ``src`` as COCO's ``{folder}/{id:012d}.jpg`` and return its LVIS v1 image record."""
    name = f"{image_id:012d}.jpg"
    if copy:
        (images_root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, images_root / folder / name)
    w, h = photo_size(src)
    return {
        "id": image_id,
        "coco_url": f"http://images.cocodataset.org/{folder}/{name}",
        "flickr_url": f"http://farm1.staticflickr.com/1/{image_id}_x.jpg",
        "width": w,
        "height": h,
        "license": license_id,
        "date_captured": "2013-11-14 16:28:13",
        "neg_category_ids": [],
        "not_exhaustive_category_ids": list(not_exhaustive),
    }


def lvis_category(cat_id: int, name: str, frequency: str = "f") -> dict:
    return {
        "id": cat_id, "name": name, "synset": f"{name}.n.01", "synonyms": [name],
        "def": f"a {name}", "frequency": frequency, "image_count": 1, "instance_count": 1,
    }  # fmt: skip


def box_polygon(x: float, y: float, w: float, h: float) -> list[float]:
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def lvis_annotation(ann_id: int, image_id: int, category_id: int, box, segmentation=None) -> dict:
    x, y, w, h = box
    seg = [box_polygon(*box)] if segmentation is None else segmentation
    return {
        "id": ann_id, "image_id": image_id, "category_id": category_id,
        "segmentation": seg, "bbox": [x, y, w, h], "area": float(w * h),
    }  # fmt: skip


def write_lvis_json(path: Path, images: list, annotations: list, categories: list) -> Path:
    doc = {
        "info": {"description": "LVIS v1 (hand-made test file)", "version": "1.0"},
        "licenses": COCO_LICENSES,
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# ---- Open Images V7 segmentation -----------------------------------------------------------------


@dataclass(frozen=True)
class OIMask:
    """One row of ``{split}-annotations-object-segmentation.csv`` and its mask PNG."""

    image_id: str  # 16 hex chars
    mid: str
    box_id: str  # 8 hex chars
    box: tuple[float, float, float, float]  # normalised xmin, xmax, ymin, ymax
    mask_size: tuple[int, int] = (160, 120)  # PNG (w, h); Open Images masks are not image-sized

    @property
    def mask_name(self) -> str:
        return f"{self.image_id}_{self.mid.replace('/', '')}_{self.box_id}.png"


def oi_mask_png(m: OIMask) -> bytes:
    """A binary mask PNG (0/255, mode L) filling the box, at the mask's own resolution."""
    w, h = m.mask_size
    arr = np.zeros((h, w), np.uint8)
    x0, x1, y0, y1 = m.box
    arr[
        int(y0 * h) : max(int(y1 * h), int(y0 * h) + 1),
        int(x0 * w) : max(int(x1 * w), int(x0 * w) + 1),
    ] = 255
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def write_oi_classes(path: Path, classes: dict[str, str], header: bool = True) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if header:
            w.writerow(["LabelName", "DisplayName"])
        for mid, name in classes.items():
            w.writerow([mid, name])
    return path


def write_oi_release(
    root: Path,
    split: str,
    photos: dict[str, Path],
    masks: list[OIMask],
    classes: dict[str, str],
    *,
    zipped: bool = True,
    class_header: bool = True,
) -> Path:
    """Write an Open Images V7 segmentation tree for ``split`` below ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    write_oi_classes(root / "oidv7-class-descriptions-boxable.csv", classes, class_header)
    (root / split).mkdir(exist_ok=True)
    for image_id, src in photos.items():
        shutil.copyfile(src, root / split / f"{image_id}.jpg")
    mask_dir = root / f"{split}-masks"
    mask_dir.mkdir(exist_ok=True)
    with open(root / f"{split}-annotations-object-segmentation.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax",
                    "BoxYMin", "BoxYMax", "PredictedIoU", "Clicks"])  # fmt: skip
        for m in masks:
            x0, x1, y0, y1 = m.box
            clicks = f"{x0 + 0.01:.5f} {y0 + 0.01:.5f} 1;{x1 - 0.01:.5f} {y1 - 0.01:.5f} 1"
            w.writerow([m.mask_name, m.image_id, m.mid, m.box_id,
                        f"{x0:.6f}", f"{x1:.6f}", f"{y0:.6f}", f"{y1:.6f}", "0.86", clicks])  # fmt: skip
    by_key: dict[str, list[OIMask]] = {}
    for m in masks:
        by_key.setdefault(m.image_id[0], []).append(m)
    for key in "0123456789abcdef":
        if zipped:
            with zipfile.ZipFile(mask_dir / f"{split}-masks-{key}.zip", "w") as zf:
                for m in by_key.get(key, []):
                    zf.writestr(m.mask_name, oi_mask_png(m))
        else:
            for m in by_key.get(key, []):
                (mask_dir / m.mask_name).write_bytes(oi_mask_png(m))
    return root


# ---- VGGSound ------------------------------------------------------------------------------------


def write_vggsound_csv(path: Path, rows: list[tuple[str, int, str, str]]) -> Path:
    """``vggsound.csv``: no header, ``ytid,start_seconds,label,split``, labels quoted if needed."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return path


def place_clip(real_dir: Path, audio_dir: Path, ytid: str, start: int, ext: str = ".wav") -> Path:
    """Put the real VGGSound clip at ``{audio_dir}/{ytid}_{start:06d}{ext}``."""
    audio_dir.mkdir(parents=True, exist_ok=True)
    dest = audio_dir / f"{ytid}_{start:06d}{ext}"
    shutil.copyfile(Path(real_dir) / REAL_CLIP, dest)
    return dest


# ---- AVS-Synthetic release -----------------------------------------------------------------------

AVS_HEADER = (
    "inst_id", "img_id", "height", "width", "class_name", "class_id", "source", "split", "audio_name",
)  # fmt: skip


def box_mask_png(path: Path, size: tuple[int, int], box: tuple[int, int, int, int]) -> Path:
    """A 0/255 PNG of ``size`` (w, h) with the xywh ``box`` set."""
    w, h = size
    arr = np.zeros((h, w), np.uint8)
    x, y, bw, bh = box
    arr[y : y + bh, x : x + bw] = 255
    Image.fromarray(arr, mode="L").save(path)
    return path


def write_avs_release(
    root: Path,
    real_dir: Path,
    rows: list[dict],
    pool: dict[int, list[str]],
    *,
    header: tuple[str, ...] = AVS_HEADER,
) -> Path:
    """An AVS-Synthetic release. ``rows``: dicts with inst_id, img_id, photo (file name in
    real/images), class_name, class_id, source, split, audio_name, box (xywh, for the mask).
    Every audio name in rows and pool gets the real clip as ``audios/{name}.wav``.
    """
    for sub in ("images", "masks", "audios"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    with open(root / "annotations.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            src = photo(real_dir, r["photo"])
            size = photo_size(src)
            shutil.copyfile(src, root / "images" / f"{r['img_id']}.jpg")
            box_mask_png(root / "masks" / f"{r['inst_id']}.png", size, r["box"])
            values = {**r, "height": size[1], "width": size[0]}
            w.writerow([values.get(_AVS_KEYS.get(h, h), "") for h in header])
    names = {r["audio_name"] for r in rows if r.get("audio_name")}
    names |= {n for ns in pool.values() for n in ns}
    for n in sorted(names):
        shutil.copyfile(Path(real_dir) / REAL_CLIP, root / "audios" / f"{n}.wav")
    with open(root / "category_for_vggsound_audios.pkl", "wb") as fh:
        pickle.dump(pool, fh)
    return root


# header alias -> row-dict key, for writing releases with other column spellings
_AVS_KEYS = {
    "instance_id": "inst_id", "ins_id": "inst_id", "image_id": "img_id", "category": "class_name",
    "category_id": "class_id", "dataset": "source", "audio": "audio_name", "audio_id": "audio_name",
}  # fmt: skip
