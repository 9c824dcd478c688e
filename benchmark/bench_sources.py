"""Throughput of the source readers on large synthetic trees in the real formats.

Builds (in a temporary folder) an LVIS v1 JSON + COCO folder, an Open Images V7 segmentation
release and a VGGSound csv + audio folder at a realistic fraction of the real sizes, with the real
photographs hard-linked as images, then times each reader. Prints one JSON line per figure.

    python benchmark/bench_sources.py [--scale 1.0] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from avsynth.manifest import load_manifest  # noqa: E402
from avsynth.sources.lvis import read_lvis  # noqa: E402
from avsynth.sources.openimages import read_openimages  # noqa: E402
from avsynth.sources.records import SkipCounter  # noqa: E402
from avsynth.sources.vggsound import read_vggsound  # noqa: E402


def emit(**kw) -> None:
    """One JSON line; the 1-minute load average says how busy the machine was."""
    print(json.dumps({**kw, "load_1min": round(os.getloadavg()[0], 1)}), flush=True)


def manifest_file(tmp: Path, lvis_names: list[str], n: int) -> Path:
    import yaml

    cats = [
        {"name": f"c{i}", "lvis": [lvis_names[i * 7]], "openimages": [f"Class {i}"],
         "vggsound": [f"sound {i}"]}
        for i in range(n)
    ]  # fmt: skip
    path = tmp / "manifest.yaml"
    path.write_text(yaml.safe_dump({"name": "bench", "categories": cats}))
    return path


def build_lvis(tmp: Path, photo: Path, names: list[str], n_img: int, n_ann: int, rng) -> Path:
    w, h = Image.open(photo).size
    root = tmp / "coco" / "train2017"
    root.mkdir(parents=True)
    images = []
    for i in range(1, n_img + 1):
        os.link(photo, root / f"{i:012d}.jpg")
        images.append({"id": i, "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg",
                       "width": w, "height": h, "license": 1, "neg_category_ids": [],
                       "not_exhaustive_category_ids": [3] if i % 10 == 0 else []})  # fmt: skip
    cats = [{"id": i + 1, "name": n, "synset": n, "frequency": "f"} for i, n in enumerate(names)]
    anns = []
    for a in range(1, n_ann + 1):
        x, y = rng.uniform(0, w - 60), rng.uniform(0, h - 60)
        poly = [round(v, 2) for v in (x, y, x + 50, y, x + 50, y + 40, x + 20, y + 55, x, y + 40)]
        anns.append({"id": a, "image_id": rng.randint(1, n_img), "category_id": rng.randint(1, len(names)),
                     "segmentation": [poly], "bbox": [x, y, 50, 55], "area": 2400.0})  # fmt: skip
    path = tmp / "lvis.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats,
                                "licenses": [{"id": 1, "name": "CC", "url": ""}]}))  # fmt: skip
    return path


def build_vggsound(tmp: Path, n_rows: int, n_files: int, n_labels: int, rng) -> tuple[Path, Path]:
    audio = tmp / "audio"
    audio.mkdir()
    rows = []
    for i in range(n_rows):
        ytid = f"{i:011d}"
        rows.append((ytid, 30, f"sound {i % n_labels}", "train" if i % 10 else "test"))
        if i < n_files:
            (audio / f"{ytid}_000030.wav").touch()
    path = tmp / "vggsound.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path, audio


def build_openimages(tmp: Path, photo: Path, n_img: int, n_rows: int, n_classes: int, rng) -> Path:
    root = tmp / "oi"
    (root / "train").mkdir(parents=True)
    (root / "train-masks").mkdir()
    with open(root / "oidv7-class-descriptions-boxable.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["LabelName", "DisplayName"])
        for c in range(n_classes):
            w.writerow([f"/m/0{c:05x}", f"Class {c}"])
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(n_img)]
    for i in ids:
        os.link(photo, root / "train" / f"{i}.jpg")
    arr = np.zeros((120, 160), np.uint8)
    arr[30:90, 40:120] = 255
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    png = buf.getvalue()
    zips = {
        k: zipfile.ZipFile(root / "train-masks" / f"train-masks-{k}.zip", "w")
        for k in "0123456789abcdef"
    }
    with open(root / "train-annotations-object-segmentation.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax",
                    "BoxYMin", "BoxYMax", "PredictedIoU", "Clicks"])  # fmt: skip
        for r in range(n_rows):
            img = ids[r % n_img]
            mid = f"/m/0{rng.randrange(n_classes):05x}"
            name = f"{img}_{mid[3:]}_{r:08x}.png"
            zips[img[0]].writestr(name, png)
            w.writerow([name, img, mid, f"{r:08x}", 0.25, 0.75, 0.25, 0.75, 0.8, ""])
    for z in zips.values():
        z.close()
    return root


def timed(fn):
    """(result, wall seconds, CPU seconds of this process)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = ap.parse_args()
    rng = random.Random(0)
    photo = args.shared / "data" / "real" / "images" / "dog.jpg"
    names = [
        r["name"] for r in csv.DictReader(open(args.shared / "data/labels/lvis_v1_categories.csv"))
    ]
    s = args.scale
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        manifest = load_manifest(manifest_file(tmp, names, 46))

        n_img, n_ann = int(20_000 * s), int(200_000 * s)
        lvis_json = build_lvis(tmp, photo, names, n_img, n_ann, rng)
        for verify in (False, True):
            out, sec, cpu = timed(
                lambda: read_lvis(
                    lvis_json, tmp / "coco", manifest, SkipCounter(), verify_images=verify
                )
            )
            emit(figure="read_lvis", images=n_img, annotations=n_ann, categories=1203,
                 selected_instances=len(out), verify_images=verify, seconds=round(sec, 2), cpu_seconds=round(cpu, 2),
                 annotations_per_s=round(n_ann / sec))  # fmt: skip

        n_rows, n_files = int(200_000 * s), int(150_000 * s)
        vcsv, vdir = build_vggsound(tmp, n_rows, n_files, 309, rng)
        idx, sec, cpu = timed(lambda: read_vggsound(vcsv, vdir, manifest, SkipCounter()))
        emit(figure="read_vggsound", rows=n_rows, files=n_files, selected=idx.rows_selected,
             clips=len(idx.clips), seconds=round(sec, 2), cpu_seconds=round(cpu, 2), rows_per_s=round(n_rows / sec))  # fmt: skip

        oi_img, oi_rows = int(10_000 * s), int(100_000 * s)
        oi_root = build_openimages(tmp, photo, oi_img, oi_rows, 350, rng)
        om = load_manifest(manifest_file(tmp, names, 46))
        for measure in (False, True):
            out, sec, cpu = timed(
                lambda: read_openimages(oi_root, "train", om, SkipCounter(), measure_masks=measure)
            )
            emit(figure="read_openimages", rows=oi_rows, images=oi_img, classes=350,
                 selected_instances=len(out), measure_masks=measure, seconds=round(sec, 2), cpu_seconds=round(cpu, 2),
                 rows_per_s=round(oi_rows / sec))  # fmt: skip


if __name__ == "__main__":
    main()
