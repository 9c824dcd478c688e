"""Builders of small AVSBench trees in the real layouts, for tests and benchmarks.

``pick_rows`` takes real rows of the real ``metadata.csv``; ``write_semantic_tree`` lays them out
as the semantic release (``{label}/{uid}/frames/{i}.jpg``, ``labels_rgb/{i}.png``, ``audio.wav``)
with synthetic content that encodes what a loader must recover:

* frame i of a video is a flat colour whose red channel is ``frame_red(i)``;
* the mask of frame i holds, for the k-th object of ``a_obj``, a rectangle in that object's
  palette colour (``object_rect(k, i)``, shifted by i pixels so frame order is visible); the first
  annotated frame of every video also holds a 2 x 2 patch of a colour outside the palette at
  ``UNKNOWN_AT`` (foreground in binary mode, background in semantic mode);
* the audio holds the constant ``second_level(s)`` during second s (float WAV).

``write_object_tree`` does the same for the old object release (S4 / MS3 layouts).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image

LABEL_FRAMES = {"v1s": 5, "v1m": 5, "v2": 10}
UNKNOWN_COLOUR = (1, 2, 3)
UNKNOWN_AT = (0, 0)  # (y, x) of the unknown-colour patch


def palette(palette_csv: Path) -> dict[str, tuple[int, tuple[int, int, int]]]:
    """name -> (class index, RGB colour) of the AVSS palette csv."""
    with open(palette_csv, newline="") as fh:
        return {r["name"]: (int(r["idx"]), (int(r["r"]), int(r["g"]), int(r["b"])))
                for r in csv.DictReader(fh)}


def frame_red(i: int) -> int:
    return 20 + 40 * i if i < 6 else 15 + 20 * i


def second_level(s: int) -> float:
    return 0.05 * (s + 1)


def object_rect(k: int, i: int, w: int, h: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of object k in frame i (frames are at least 32 x 32)."""
    y0 = 4 + 12 * (k % 2)
    x0 = 4 + 14 * (k // 2) + i
    return y0, min(h, y0 + 10), x0, min(w, x0 + 12)


def objects_of(a_obj: str) -> list[str]:
    return [o for o in a_obj.split("_") if o]


def pick_rows(metadata_csv: Path, per_group: int = 1, multi_object: bool = True) -> pd.DataFrame:
    """The first ``per_group`` real rows of every (label, split), plus (optionally) the first
    v1m and v2 rows whose a_obj names several objects."""
    df = pd.read_csv(metadata_csv, dtype=str, keep_default_na=False)
    parts = [g.head(per_group) for _, g in df.groupby(["label", "split"], sort=True)]
    if multi_object:
        for label in ("v1m", "v2"):
            multi = df[(df["label"] == label) & df["a_obj"].str.contains("_")]
            parts.append(multi.head(1))
    return pd.concat(parts).drop_duplicates("uid").reset_index(drop=True)


def _annotated(label: str, split: str) -> list[bool]:
    n = LABEL_FRAMES[label]
    return [i == 0 or not (label == "v1s" and split == "train") for i in range(n)]


def _mask_image(objs: list[str], pal: dict, i: int, w: int, h: int, unknown: bool) -> np.ndarray:
    m = np.zeros((h, w, 3), dtype=np.uint8)
    for k, name in enumerate(objs):
        _, colour = pal.get(name, pal["man"])
        y0, y1, x0, x1 = object_rect(k, i, w, h)
        m[y0:y1, x0:x1] = colour
    if unknown:
        y, x = UNKNOWN_AT
        m[y : y + 2, x : x + 2] = UNKNOWN_COLOUR
    return m


def write_audio(path: Path, seconds: int, sample_rate: int = 16000, channels: int = 1) -> None:
    wave = np.concatenate([np.full(sample_rate, second_level(s), dtype=np.float32)
                           for s in range(seconds)])
    if channels > 1:
        wave = np.stack([wave] * channels, axis=1)
    sf.write(str(path), wave, sample_rate, subtype="FLOAT")


def write_semantic_tree(root: Path, rows: pd.DataFrame, palette_csv: Path,
                        size_wh: tuple[int, int] = (48, 32),
                        odd_audio: str | None = None) -> Path:
    """Write ``root/metadata.csv`` (the given real rows) and every video's files.

    ``odd_audio`` names one uid whose audio is written as 44.1 kHz stereo (to test resampling).
    """
    root.mkdir(parents=True, exist_ok=True)
    rows.to_csv(root / "metadata.csv", index=False)
    pal = palette(palette_csv)
    w, h = size_wh
    for row in rows.to_dict("records"):
        base = root / row["label"] / row["uid"]
        (base / "frames").mkdir(parents=True, exist_ok=True)
        (base / "labels_rgb").mkdir(parents=True, exist_ok=True)
        ann = _annotated(row["label"], row["split"])
        objs = objects_of(row["a_obj"])
        for i, a in enumerate(ann):
            frame = np.zeros((h, w, 3), dtype=np.uint8)
            frame[..., 0] = frame_red(i)
            frame[..., 1] = 100
            Image.fromarray(frame).save(base / "frames" / f"{i}.jpg", quality=95)
            if a:
                Image.fromarray(_mask_image(objs, pal, i, w, h, unknown=(i == 0))).save(
                    base / "labels_rgb" / f"{i}.png")
        odd = row["uid"] == odd_audio
        write_audio(base / "audio.wav", len(ann), 44100 if odd else 16000, 2 if odd else 1)
    return root


def write_object_tree(root: Path, subset: str, videos: list[tuple[str, str, str]],
                      size_wh: tuple[int, int] = (224, 224)) -> Path:
    """Old object release: ``videos`` = (name, category, split); frames/masks numbered 1..5."""
    w, h = size_wh
    top = root / ("Single-source" if subset == "s4" else "Multi-sources")
    data = top / f"{subset}_data"
    top.mkdir(parents=True, exist_ok=True)
    with open(top / f"{subset}_meta_data.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        if subset == "s4":
            wr.writerow(["name", "start", "category", "split"])
            wr.writerows([(n, 0, c, s) for n, c, s in videos])
        else:
            wr.writerow(["video_id", "split"])
            wr.writerows([(n, s) for n, _, s in videos])
    for name, cat, split in videos:
        if subset == "s4":
            fdir = data / "visual_frames" / split / cat / name
            mdir = data / "gt_masks" / split / cat / name
            adir = data / "audio_wav" / split / cat
        else:
            fdir = data / "visual_frames" / name
            mdir = data / "gt_masks" / split / name
            adir = data / "audio_wav" / split
        for d in (fdir, mdir, adir):
            d.mkdir(parents=True, exist_ok=True)
        for i in range(1, 6):
            frame = np.zeros((h, w, 3), dtype=np.uint8)
            frame[..., 0] = frame_red(i - 1)
            fname = f"{name}.mp4_{i}.png" if subset == "ms3" else f"{name}_{i}.png"
            Image.fromarray(frame).save(fdir / fname)
            if subset == "ms3" or split != "train" or i == 1:
                m = np.zeros((h, w), dtype=np.uint8)
                y0, y1, x0, x1 = object_rect(0, i - 1, w, h)
                m[y0:y1, x0:x1] = 255
                Image.fromarray(m).convert("1").save(mdir / f"{name}_{i}.png")
        write_audio(adir / f"{name}.wav", 5)
    return root
