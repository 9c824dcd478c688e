"""A tiny, real shard directory for the card / stats / hub / FiftyOne tests.

Rows are generated (not mocked): a JPEG with a coloured ellipse on a noisy background, the
ellipse's mask as a 1-bit PNG, and a FLAC tone whose loudness varies per row. Shards go through
the real writer (``write_shard``) and ``manifest.json`` follows the build-record contract, so
``verify_dir`` accepts the directory. The card is written as the build writes it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from avsynth.media.audio import encode_audio
from avsynth.media.mask import encode_png, mask_stats
from avsynth.shards.card import write_card
from avsynth.shards.schema import POOL_SCHEMA, ROW_SCHEMA, media
from avsynth.shards.writer import write_shard

CATEGORIES = ("dog", "cat", "guitar")
SR = 16_000
SECONDS = 0.5


def _image_and_mask(rng: np.random.Generator, w: int, h: int, color) -> tuple[bytes, np.ndarray]:
    bg = rng.integers(0, 120, size=(h, w, 3), dtype=np.uint8)
    img = Image.fromarray(bg, mode="RGB")
    x0, y0 = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
    x1, y1 = int(rng.integers(w // 2, w)), int(rng.integers(h // 2, h))
    m = Image.new("L", (w, h), 0)
    ImageDraw.Draw(m).ellipse((x0, y0, x1, y1), fill=255)
    ImageDraw.Draw(img).ellipse((x0, y0, x1, y1), fill=color)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), np.asarray(m) > 0


def _tone(freq: float, amplitude: float) -> bytes:
    t = np.arange(int(SR * SECONDS)) / SR
    return encode_audio(amplitude * np.sin(2 * np.pi * freq * t), SR, "flac")


def make_shard_dir(
    root: Path,
    rows: dict[str, int] | None = None,
    shards: dict[str, int] | None = None,
    categories: tuple[str, ...] = CATEGORIES,
    seed: int = 0,
) -> Path:
    """Write a shard directory under ``root`` and return it. ``rows``/``shards`` per split."""
    rows = rows or {"train": 6, "validation": 3, "test": 3}
    shards = shards or {"train": 2, "validation": 1, "test": 1}
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    colors = [(230, 60, 60), (60, 200, 60), (60, 90, 230), (220, 200, 40)]
    record: dict = {
        "format": "avsynth-shards/1",
        "tool": {"name": "avsynth", "version": "0.1.0"},
        "arguments": {"categories": ",".join(categories), "seed": seed, "clip_seconds": SECONDS},
        "seed": seed,
        "sources": {"demo": {"fingerprint": "0" * 16}},
        "categories": [{"name": c, "category_id": i} for i, c in enumerate(categories)],
        "splits": {},
        "shortfall": {"train": {}, "validation": {categories[0]: 2}, "test": {}},
        "skipped": {"missing audio file": {"count": 2, "examples": ["abc_000010", "def_000020"]}},
        "shards": [],
        "audio_pool": [],
        "clip_seconds": SECONDS,
        "audio_format": "flac",
        "mask_mode": "instance",
    }
    pool_rows: list[dict] = []
    counter = 0
    for split, n in rows.items():
        per_cat: dict[str, int] = {}
        split_rows: list[dict] = []
        for k in range(n):
            cid = k % len(categories)
            cat = categories[cid]
            w, h = int(rng.integers(56, 80)), int(rng.integers(40, 64))
            jpeg, mask = _image_and_mask(rng, w, h, colors[cid % len(colors)])
            area, bbox = mask_stats(mask)
            amp = float(0.05 + 0.9 * rng.random())
            audio_id = f"{split[:2]}{counter:04d}_000010"
            audio = _tone(220.0 * (cid + 1), amp)
            split_rows.append(
                {
                    "id": f"{split}-{counter:06d}",
                    "split": split,
                    "category": cat,
                    "category_id": cid,
                    "image": media(jpeg, f"{counter}.jpg"),
                    "mask": media(encode_png(mask), f"{counter}.png"),
                    "audio": media(audio, f"{audio_id}.flac"),
                    "width": w,
                    "height": h,
                    "mask_area": area,
                    "bbox": list(bbox),
                    "image_source": "lvis" if k % 2 == 0 else "openimages",
                    "image_id": f"img{counter:05d}",
                    "annotation_id": f"ann{counter:05d}",
                    "audio_source": "vggsound",
                    "audio_id": audio_id,
                    "audio_label": f"{cat} sound",
                    "audio_offset_s": 1.5,
                    "audio_seconds": SECONDS,
                    "license": "test data",
                }
            )
            if split == "train":
                pool_rows.append(
                    {
                        "category": cat,
                        "category_id": cid,
                        "audio_id": audio_id,
                        "audio_label": f"{cat} sound",
                        "audio": media(audio, f"{audio_id}.flac"),
                        "audio_offset_s": 1.5,
                        "audio_seconds": SECONDS,
                    }
                )
            per_cat[cat] = per_cat.get(cat, 0) + 1
            counter += 1
        nshards = shards.get(split, 1)
        chunk = -(-n // nshards) if n else 0
        for i in range(nshards):
            part = split_rows[i * chunk : (i + 1) * chunk]
            path = root / "data" / f"{split}-{i:05d}-of-{nshards:05d}.parquet"
            rec = write_shard(part, path, schema=ROW_SCHEMA)
            entry = {"split": split, "index": i, "num_shards": nshards, **rec.as_dict(root)}
            record["shards"].append(entry)
        record["splits"][split] = {"rows": n, "num_shards": nshards, "per_category": dict(sorted(per_cat.items()))}
    if pool_rows:
        rec = write_shard(pool_rows, root / "audio_pool" / "train-00000-of-00001.parquet", schema=POOL_SCHEMA)
        record["audio_pool"].append(rec.as_dict(root))
    write_card(root, record)  # as the build does: the card, then the record
    (root / "manifest.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return root


def load_record(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))
