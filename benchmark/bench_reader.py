"""Reader throughput: decoded (image, mask, audio) samples per second.

Writes a synthetic shard directory with realistic media sizes (640x480 JPEG photos-like images,
1-bit PNG masks, 3 s 16 kHz FLAC clips, a train audio pool), then measures:

- raw row-group reads (no decoding) in rows/s and MB/s;
- ``TripletIterableDataset`` through a torch DataLoader with 0 (in-process), 1 and 2 workers,
  with and without same-category audio re-pairing;
- ``TripletDataset`` (map-style) sequential access.

Prints one JSON line per figure. Usage: ``python benchmark/bench_reader.py [--rows 600]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from avsynth.media.audio import encode_audio
from avsynth.media.image import encode_jpeg
from avsynth.media.mask import encode_png, mask_stats
from avsynth.shards.reader import ShardReader, TripletDataset, TripletIterableDataset
from avsynth.shards.schema import POOL_SCHEMA, ROW_SCHEMA
from avsynth.shards.writer import write_shard

W, H, SR, SECONDS = 640, 480, 16000, 3.0
CATEGORIES = [f"cat{k}" for k in range(10)]


def _image(rng: np.random.Generator) -> bytes:
    """A smooth random field plus mild noise: JPEG size close to a real photo (~50-80 KB)."""
    coarse = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(coarse, "RGB").resize((W, H), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-3, 4, (H, W, 3))
    return encode_jpeg(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB"))


def _mask(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    cx, cy, r = rng.integers(100, W - 100), rng.integers(100, H - 100), rng.integers(30, 90)
    return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r


def _audio(rng: np.random.Generator) -> bytes:
    t = np.arange(int(SECONDS * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(t.size)
    return encode_audio(wave, SR, "flac")


def write_dataset(root: Path, rows: int, shards: int, pool_per_category: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    images = [_image(rng) for _ in range(50)]
    clips = [_audio(rng) for _ in range(50)]
    per = -(-rows // shards)
    for s in range(shards):
        batch = []
        for i in range(s * per, min(rows, (s + 1) * per)):
            m = _mask(rng)
            area, bbox = mask_stats(m)
            cat = CATEGORIES[i % len(CATEGORIES)]
            batch.append({
                "id": f"r{i}", "split": "train", "category": cat, "category_id": i % len(CATEGORIES),
                "image": {"bytes": images[i % 50], "path": None}, "mask": {"bytes": encode_png(m), "path": None},
                "audio": {"bytes": clips[i % 50], "path": None}, "width": W, "height": H,
                "mask_area": area, "bbox": list(bbox), "image_source": "bench", "image_id": str(i),
                "annotation_id": str(i), "audio_source": "bench", "audio_id": f"a{i}", "audio_label": cat,
                "audio_offset_s": 0.0, "audio_seconds": SECONDS, "license": "",
            })
        write_shard(batch, root / f"data/train-{s:05d}-of-{shards:05d}.parquet", schema=ROW_SCHEMA)
    pool = [
        {"category": c, "category_id": k, "audio_id": f"p{k}-{j}", "audio_label": c,
         "audio": {"bytes": clips[(k * 7 + j) % 50], "path": None}, "audio_offset_s": 0.0, "audio_seconds": SECONDS}
        for k, c in enumerate(CATEGORIES) for j in range(pool_per_category)
    ]
    write_shard(pool, root / "audio_pool/train-00000-of-00001.parquet", schema=POOL_SCHEMA)


def _cpu() -> float:
    """CPU seconds of this process plus its finished children (DataLoader workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _emit(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"benchmark": "reader", "figure": name, "value": round(value, 1), "unit": unit, **extra}), flush=True)


def _collate(batch):
    return batch


def bench_loader(root: Path, workers: int, repair: bool, rows: int) -> tuple[float, float]:
    """(samples per wall second, CPU ms per sample incl. workers) for one pass over the split."""
    ds = TripletIterableDataset(root, "train", seed=0, shuffle_buffer=256, repair_audio=repair)
    loader = DataLoader(ds, batch_size=16, num_workers=workers, collate_fn=_collate)
    t0, c0 = time.perf_counter(), _cpu()
    n = sum(len(b) for b in loader)
    del loader  # workers exit and are reaped, so their CPU time is counted
    dt, dc = time.perf_counter() - t0, _cpu() - c0
    assert n == rows, (n, rows)
    return n / dt, 1000.0 * dc / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--shards", type=int, default=6)
    ap.add_argument("--dir", type=Path, default=None, help="keep the synthetic dataset here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ctx = tempfile.TemporaryDirectory() if args.dir is None else None
    root = Path(ctx.name) if ctx else args.dir
    t0 = time.perf_counter()
    write_dataset(root, args.rows, args.shards, pool_per_category=40)
    size = sum(p.stat().st_size for p in (root / "data").glob("*.parquet"))
    env = {"cpus": os.cpu_count(), "python": platform.python_version(), "load_1min": round(os.getloadavg()[0], 1)}
    _emit("write_synthetic_dataset", args.rows / (time.perf_counter() - t0), "rows/s", bytes_per_row=size // args.rows, **env)

    reader = ShardReader(root, "train")
    t0 = time.perf_counter()
    n = sum(t.num_rows for t in reader.iter_batches())
    dt = time.perf_counter() - t0
    _emit("raw_row_group_read", n / dt, "rows/s", mb_per_s=round(size / dt / 1e6, 1))

    ds = TripletDataset(root, "train")
    t0, c0 = time.perf_counter(), _cpu()
    for i in range(len(ds)):
        ds[i]
    dt, dc = time.perf_counter() - t0, _cpu() - c0
    _emit("map_style_sequential_decode", len(ds) / dt, "samples/s", workers=0, cpu_ms_per_sample=round(1000 * dc / len(ds), 2))

    for repair in (False, True):
        for workers in (0, 1, 2):
            rate, cpu_ms = bench_loader(root, workers, repair, args.rows)
            _emit("iterable_decode", rate, "samples/s", workers=workers, repair_audio=repair, cpu_ms_per_sample=round(cpu_ms, 2))
    if ctx:
        ctx.cleanup()


if __name__ == "__main__":
    main()
