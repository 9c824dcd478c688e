"""Build-time cost of the issue-12 checks, in ms per row (one JSON line per figure).

On planned train rows of the demo corpus (test scale unless --demo-dir names another), in-process,
one core, CPU time (``time.process_time``), best of --repeat passes:

- audio: the old path (read the window, encode) vs the checked path (decode the clip, check length
  and level, cut, encode); and the fallback that moves a silent window (librosa.effects.split),
  timed on the same clips with their first 8 s zeroed;
- masks: rasterise vs checked rasterise (RLE counts parsed, PNG mode/aspect, polygon range);
- the media fingerprint of --resume (stat of every file the plan reads), per row;
- the shard checksum of train/bench (sha256 of each shard once per process), per MB.

    python benchmark/bench_checks.py [--rows 300] [--repeat 3] [--demo-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        a = time.process_time()
        fn()
        times.append(time.process_time() - a)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--demo-dir", type=Path, default=None)
    args = ap.parse_args()

    from avsynth.build import SourcePaths, load_sources
    from avsynth.build.guard import media_files
    from avsynth.demo import DemoCorpus, write_demo
    from avsynth.io import sha256_file
    from avsynth.manifest import select_categories
    from avsynth.media.audio import encode_audio, load_clip, load_window, window_samples
    from avsynth.media.checks import choose_window
    from avsynth.media.image import read_image
    from avsynth.media.mask import rasterize, rasterize_checked
    from avsynth.plan import PlanOptions, make_plan

    with tempfile.TemporaryDirectory() as tmp:
        root = args.demo_dir
        demo = DemoCorpus.load(root) if root and (root / "demo.json").exists() else write_demo(
            root or Path(tmp) / "demo", seed=0, scale="test")
        manifest = select_categories("46")
        src = load_sources(SourcePaths(
            lvis_json=[Path(demo.lvis_train_json), Path(demo.lvis_val_json)],
            coco_root=Path(demo.coco_root), openimages_root=Path(demo.openimages_root),
            vggsound_csv=Path(demo.vggsound_csv), vggsound_audio=Path(demo.vggsound_audio)),
            manifest)
        plan = make_plan(src.instances, src.clips, manifest,
                         PlanOptions(sizes={"train": args.rows, "validation": 0, "test": 0}))
        specs = plan.rows["train"][: args.rows]
        n = len(specs)
        sizes = {}
        for r in specs:
            inst = r.instances[0]
            if inst.image_path not in sizes:
                img = read_image(inst.image_path)
                sizes[inst.image_path] = (img.width, img.height)

        def audio_old():
            for r in specs:
                w = load_window(r.clip.path, r.audio_offset_s, r.audio_seconds)
                encode_audio(w, 16000, "flac")

        def audio_checked():
            for r in specs:
                wave, sr = load_clip(r.clip.path)
                win = choose_window(wave, sr, r.audio_offset_s, r.audio_seconds, key="k")
                encode_audio(window_samples(wave, sr, win.offset_s, r.audio_seconds), 16000, "flac")

        choose_window(np.ones(16000 * 10, np.float32) * 0.1 * (np.arange(160000) % 2 * 2 - 1),
                      16000, 0.0, 3.0, key="warm")  # librosa's first call (JIT, imports)
        quiet = []
        for r in specs[:50]:
            wave, sr = load_clip(r.clip.path)
            wave = wave.copy()
            wave[: 8 * sr] = 0.0
            quiet.append((wave, sr, r))

        def audio_moved():
            for wave, sr, r in quiet:
                choose_window(wave, sr, 0.0, r.audio_seconds, key="k")

        def mask_old():
            for r in specs:
                inst = r.instances[0]
                rasterize(inst.mask, *sizes[inst.image_path])

        def mask_checked():
            for r in specs:
                inst = r.instances[0]
                rasterize_checked(inst.mask, *sizes[inst.image_path], "x")

        t = {k: best(f, args.repeat) for k, f in [
            ("audio_old", audio_old), ("audio_checked", audio_checked),
            ("mask_old", mask_old), ("mask_checked", mask_checked)]}
        t_moved = best(audio_moved, args.repeat) / len(quiet)
        t_media = best(lambda: media_files(plan), args.repeat) / sum(
            len(s.items) for s in plan.shards)
        big = Path(tmp) / "shard.bin"
        big.write_bytes(np.random.default_rng(0).bytes(64 << 20))
        t_sha = best(lambda: sha256_file(big), args.repeat) / 64

        emit(figure="rows", value=n)
        emit(figure="audio_ms_per_row_before", value=round(t["audio_old"] / n * 1e3, 3))
        emit(figure="audio_ms_per_row_checked", value=round(t["audio_checked"] / n * 1e3, 3))
        emit(figure="audio_check_ms_per_row", value=round((t["audio_checked"] - t["audio_old"]) / n * 1e3, 3))
        emit(figure="silent_window_move_ms_per_row", value=round(t_moved * 1e3, 3))
        emit(figure="mask_ms_per_row_before", value=round(t["mask_old"] / n * 1e3, 3))
        emit(figure="mask_ms_per_row_checked", value=round(t["mask_checked"] / n * 1e3, 3))
        emit(figure="mask_check_ms_per_row", value=round((t["mask_checked"] - t["mask_old"]) / n * 1e3, 3))
        emit(figure="media_fingerprint_ms_per_row", value=round(t_media * 1e3, 4))
        emit(figure="shard_checksum_ms_per_mb", value=round(t_sha * 1e3, 3))


if __name__ == "__main__":
    main()
