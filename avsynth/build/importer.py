"""Convert the official AVS-Synthetic release into avsynth shards (same schema and layout).

The release's own split assignment is kept, and so is its fixed validation/test audio: each
evaluation row keeps the clip the release names. Train rows keep their named clip when they have
one, else draw one from the release's pool for their class (``category_for_vggsound_audios.pkl``)
in a seeded order; the whole pool is written as the train audio pool for re-pairing at load time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from avsynth.build.rows import WorkerOptions
from avsynth.build.guard import out_lock
from avsynth.build.import_checks import (SKIP_POOL_EVAL_CLIP, check_class_ids, eval_clips,
                                         remove_leaks)
from avsynth.build.runner import build_record, check_out_dir, finish, run_plan
from avsynth.build.sources import file_fingerprint
from avsynth.errors import BuildError
from avsynth.plan import Plan, PlanOptions, PoolSpec, RowSpec, plan_from_rows, seeded_offset, stable_hash
from avsynth.shards.record import BuildRecord
from avsynth.shards.schema import FORMAT, SPLITS
from avsynth.sources.avs_synthetic import ANNOTATIONS, POOL_FILE, SOURCE, read_release
from avsynth.sources.records import AudioClip, SkipCounter


@dataclass
class ImportOptions:
    root: Path
    out: Path
    seed: int = 0
    clip_seconds: float | None = None  # None: keep each clip whole
    audio_format: str = "flac"
    rows_per_shard: int = 1000
    workers: int = 1
    engine: str = "local"
    ray_address: str | None = None
    resume: bool = False


@dataclass
class ImportResult:
    out: Path
    record: BuildRecord
    shards_written: int
    shards_kept: int


def _window(path: Path, name: str, seed: int, clip_seconds: float | None,
            durations: dict[Path, float]) -> tuple[float, float]:
    if path not in durations:
        info = sf.info(str(path))
        durations[path] = info.frames / float(info.samplerate)
    duration = durations[path]
    if not clip_seconds or clip_seconds >= duration:
        return 0.0, round(duration, 3)
    return seeded_offset(name, seed, clip_seconds, clip_s=duration), float(clip_seconds)


def make_import_plan(release, opts: ImportOptions, skips: SkipCounter) -> Plan:
    cats = release.categories  # class id -> name
    durations: dict[Path, float] = {}
    held_out = eval_clips(release.rows)
    pool_order = {}
    for cid, names in release.audio_pool.items():
        for n in sorted(set(names) & held_out):
            skips.skip(SKIP_POOL_EVAL_CLIP, n)
        pool_order[cid] = sorted((n for n in names if n not in held_out),
                                 key=lambda n: (stable_hash("pool", opts.seed, n), n))

    def clip(name: str, label: str, split: str) -> AudioClip:
        return AudioClip(SOURCE, name, label, "train" if split == "train" else "test",
                         release.audio_path(name))

    rows: dict[str, list[RowSpec]] = {s: [] for s in SPLITS}
    drawn = defaultdict(int)
    for r in release.rows:
        name = r.audio_name
        if name is None:
            names = pool_order.get(r.category_id, [])
            if not names:
                skips.skip("avs-synthetic: train row without audio (empty pool)", r.instance.annotation_id)
                continue
            name = names[drawn[r.category_id] % len(names)]
            drawn[r.category_id] += 1
        c = clip(name, r.category, r.split)
        offset, seconds = _window(c.path, name, opts.seed, opts.clip_seconds, durations)
        rows[r.split].append(RowSpec(
            id=f"{SOURCE}-{r.instance.annotation_id}", split=r.split, category=r.category,
            category_id=r.category_id, instances=(r.instance,), clip=c,
            audio_offset_s=offset, audio_seconds=seconds,
        ))
    for split in SPLITS:
        rows[split].sort(key=lambda x: (stable_hash("row", opts.seed, x.id), x.id))
    train_cats = {r.category_id for r in rows["train"]}
    pool = []
    for cid in sorted(train_cats):
        for name in pool_order.get(cid, []):
            c = clip(name, cats[cid], "train")
            offset, seconds = _window(c.path, name, opts.seed, opts.clip_seconds, durations)
            pool.append(PoolSpec(cats[cid], cid, c, offset, seconds))
    popts = PlanOptions(seed=opts.seed, sizes={s: len(rows[s]) for s in SPLITS},
                        clip_seconds=opts.clip_seconds or 0.0, rows_per_shard=opts.rows_per_shard)
    categories = [{"name": n, "category_id": i} for i, n in cats.items()]
    return plan_from_rows(rows, pool, categories, popts)


def import_avs_synthetic(opts: ImportOptions, *, progress: bool = True) -> ImportResult:
    """Read the release at ``opts.root`` and write shards to ``opts.out``."""
    if opts.audio_format not in ("flac", "wav"):
        raise BuildError(f"--audio-format must be flac or wav, not {opts.audio_format!r}")
    root, out = Path(opts.root), Path(opts.out)
    skips = SkipCounter()
    release = read_release(root, skips)
    if not release.rows:
        raise BuildError(f"{root / ANNOTATIONS}: no usable rows (skipped: {skips.as_dict()})")
    check_class_ids(release.rows, str(root / ANNOTATIONS))
    release.rows = remove_leaks(release.rows, skips)
    fingerprints = {"avs-synthetic": [file_fingerprint(root / ANNOTATIONS),
                                      file_fingerprint(root / POOL_FILE)]}
    arguments = {"import": "avs-synthetic", "root": str(root), "seed": opts.seed,
                 "clip_seconds": opts.clip_seconds, "audio_format": opts.audio_format,
                 "rows_per_shard": opts.rows_per_shard, "mask_mode": "instance",
                 "columns": release.columns}
    identity = {"format": FORMAT, "arguments": {k: v for k, v in arguments.items() if k != "root"},
                "sources": fingerprints}
    check_out_dir(out, opts.resume, identity)
    plan = make_import_plan(release, opts, skips)
    with out_lock(out):
        check_out_dir(out, opts.resume, identity)
        results, written = run_plan(
            plan, out, identity, WorkerOptions(audio_format=opts.audio_format),
            resume=opts.resume, engine=opts.engine, workers=opts.workers,
            ray_address=opts.ray_address, progress=progress,
        )
        record = build_record(plan, results, out=out, arguments=arguments,
                              fingerprints=fingerprints, skips=skips)
        finish(out, record)
    return ImportResult(out, record, written, len(plan.shards) - written)
