"""The demo corpus's sound-source-localisation sets, in the real VGG-SS and Flickr-SoundNet layouts.

Written under ``CORPUS/localization/`` (next to the other demo formats, which stay untouched):

* ``vggss/``: ``frames/{ytid}_{sec:06d}.jpg`` (224 x 224, the "middle frame"), ``audio/{id}.wav``
  (10 s, 16 kHz mono), ``vggss.json`` (``{file, class, bbox: [[xmin, ymin, xmax, ymax]]}``,
  normalised, the box of the sounding object) and ``vggss_test.csv`` (one id a row). As in the
  real release, one entry carries a second box with a corrupt coordinate (-2.8823037615171176e16),
  and a few listed clips have no local files (gone from YouTube);
* ``flickr/``: ``frames/{id}.jpg`` (256 x 256), ``audio/{id}.wav``, ``Annotations/{id}.xml`` (2-3
  annotator boxes of the sounding object on the 256 grid, jittered, ``<bbox>`` = a first child
  then ``xmin, ymin, xmax, ymax``) and ``flickr_test.csv`` (``id,label``); one listed id has no
  files.

Each image shows the sounding object of a corpus category plus 1-2 objects of other categories,
drawn with the corpus's own per-category object and sound styles, so a model trained on shards
built from the same corpus can be tested zero-shot, and only a model that listens can pick the
right object. Every file is a pure function of (corpus seed, categories, size);
``localization.json`` is written last and marks the set complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from avsynth.demo import procedural as proc
from avsynth.demo.corpus import DemoCorpus
from avsynth.demo.layout import DemoError
from avsynth.io import atomic_write_text

LOCALIZATION_DIR = "localization"
LOCALIZATION_FORMAT = "avsynth-demo-localization/1"
#: The corrupt coordinate of the real vggss.json (12 entries carry it).
CORRUPT = -2.8823037615171176e16
_KIND = 11  # job_rng kind of these items (the main corpus uses 1-6)


@dataclass(frozen=True)
class LocalizationDemoSize:
    """How many localisation samples per category, and their media sizes."""

    per_category: int = 2
    missing: int = 3  # listed VGG-SS clips without local files
    vggss_side: int = 224
    flickr_side: int = 256
    seconds: float = 10.0
    radius_frac: tuple[float, float] = (0.24, 0.38)


def localization_root(corpus: DemoCorpus) -> Path:
    return Path(corpus.root) / LOCALIZATION_DIR


def _rng(seed: int, dataset: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _KIND, dataset, index])


def _scene(rng, side: int, cat: int, n: int, size: LocalizationDemoSize):
    """A square scene: the sounding category ``cat`` plus 1-2 distractors; its visible mask's box."""
    others = [c for c in range(n) if c != cat]
    k = min(len(others), int(rng.integers(1, 3)))
    cats = [cat] + [int(c) for c in rng.choice(others, size=k, replace=False)] if k else [cat]
    styles = [proc.object_style(i) for i in range(n)]
    scene = proc.plan_scene(rng, side, side, cats, styles, radius_frac=size.radius_frac)
    out = proc.render_scene(scene, styles)
    vis = next(o.visible for o in out.objects if o.category == cat)
    ys, xs = np.nonzero(vis)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return out.image, box


def _write_media(folder: Path, name: str, image: np.ndarray, audio: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    (folder / "frames" / f"{name}.jpg").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    sf.write(buf, proc.to_pcm16(audio), proc.SAMPLE_RATE, format="WAV", subtype="PCM_16")
    (folder / "audio" / f"{name}.wav").write_bytes(buf.getvalue())


def _flickr_xml(name: str, boxes: list[tuple[int, int, int, int]]) -> str:
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = f"{name}.jpg"
    for k, b in enumerate(boxes):
        obj = ET.SubElement(root, "object")
        bb = ET.SubElement(obj, "bbox")
        ET.SubElement(bb, "annotator").text = str(k + 1)
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), b):
            ET.SubElement(bb, tag).text = str(v)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_localization_demo(out: str | Path, categories: list[str], seed: int = 0,
                            size: LocalizationDemoSize | None = None) -> dict:
    """Write both localisation sets into ``out`` (a new or empty directory); returns the record."""
    out = Path(out)
    size = size or LocalizationDemoSize()
    if out.exists() and any(out.iterdir()):
        raise DemoError(f"{out}: exists and is not empty; choose a new directory")
    n = len(categories)
    if n < 2:
        raise DemoError("the localisation demo needs at least 2 categories (a sounding one and a distractor)")
    vgg, fl = out / "vggss", out / "flickr"
    for d in (vgg / "frames", vgg / "audio", fl / "frames", fl / "audio", fl / "Annotations"):
        d.mkdir(parents=True, exist_ok=True)
    entries, vgg_ids, fl_rows = [], [], []
    index = 0
    for r in range(size.per_category):
        for cat in range(n):
            # VGG-SS: a YouTube-like id and start second; normalised box on the frame
            rng = _rng(seed, 0, index)
            ytid = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
                                      size=11))
            name = f"{ytid}_{int(rng.integers(0, 300)):06d}"
            image, (x0, y0, x1, y1) = _scene(rng, size.vggss_side, cat, n, size)
            s = size.vggss_side
            boxes = [[round(x0 / s, 6), round(y0 / s, 6), round(x1 / s, 6), round(y1 / s, 6)]]
            if index == 1:  # as in the real file: a second box with a corrupt coordinate
                boxes.append([boxes[0][0], boxes[0][1], CORRUPT, boxes[0][3]])
            audio = proc.synth_sound(proc.sound_style(cat, n), size.seconds, rng)
            _write_media(vgg, name, image, audio)
            entries.append({"file": name, "class": categories[cat], "bbox": boxes})
            vgg_ids.append(name)
            # Flickr-SoundNet: numeric id, 256 x 256 image, 2-3 jittered annotator boxes
            rng = _rng(seed, 1, index)
            fid = str(10_000_000_000 + int(rng.integers(0, 9_000_000_000)))
            image, (x0, y0, x1, y1) = _scene(rng, size.flickr_side, cat, n, size)
            g = size.flickr_side
            ann = []
            for _ in range(int(rng.integers(2, 4))):
                j = rng.integers(-6, 7, size=4)
                ann.append((max(0, x0 + int(j[0])), max(0, y0 + int(j[1])), min(g, x1 + int(j[2])),
                            min(g, y1 + int(j[3]))))
            audio = proc.synth_sound(proc.sound_style(cat, n), size.seconds, rng)
            _write_media(fl, fid, image, audio)
            (fl / "Annotations" / f"{fid}.xml").write_text(_flickr_xml(fid, ann), encoding="utf-8")
            fl_rows.append((fid, cat))
            index += 1
    for m in range(size.missing):  # listed and annotated, but no local files (link rot)
        rng = _rng(seed, 2, m)
        name = f"gone{m:07d}_{int(rng.integers(0, 300)):06d}"
        entries.append({"file": name, "class": categories[m % n], "bbox": [[0.1, 0.1, 0.6, 0.7]]})
        vgg_ids.append(name)
    fl_rows.append((str(9_999_999_999), 0))  # listed, nothing local
    (vgg / "vggss.json").write_text(json.dumps(entries) + "\n", encoding="utf-8")
    (vgg / "vggss_test.csv").write_text("".join(f"{i}\n" for i in vgg_ids), encoding="utf-8")
    with open(fl / "flickr_test.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(fl_rows)
    record = {"format": LOCALIZATION_FORMAT, "seed": seed, "categories": list(categories), "size": asdict(size),
              "counts": {"vggss": {"listed": len(vgg_ids), "with_files": index, "missing": size.missing,
                                   "corrupt_entries": 1 if index > 1 else 0},
                         "flickr": {"listed": len(fl_rows), "with_files": index, "missing": 1}},
              "paths": {"vggss": "vggss", "flickr": "flickr"}, "complete": True}
    atomic_write_text(out / "localization.json", json.dumps(record, indent=2) + "\n")
    return record


def ensure_localization_demo(corpus: DemoCorpus, size: LocalizationDemoSize | None = None) -> Path:
    """``CORPUS/localization`` (written on first use, atomically: a temporary sibling renamed into
    place), for the corpus's categories and seed; an existing complete set is reused (if ``size``
    is given, only when it was written at that size). Returns its path."""
    root = localization_root(corpus)
    try:
        record = json.loads((root / "localization.json").read_text(encoding="utf-8"))
        if record.get("complete") and (size is None or record.get("size") == json.loads(json.dumps(asdict(size)))):
            return root
    except (OSError, json.JSONDecodeError):
        pass
    if root.exists():
        shutil.rmtree(root)
    tmp = Path(tempfile.mkdtemp(prefix=".localization.", dir=corpus.root))
    try:
        write_localization_demo(tmp, list(corpus.categories), seed=corpus.seed, size=size)
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / "localization.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


__all__ = ["CORRUPT", "LOCALIZATION_DIR", "LocalizationDemoSize", "ensure_localization_demo",
           "localization_root", "write_localization_demo"]
