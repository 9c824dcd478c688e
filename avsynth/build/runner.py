"""The build: run a plan on an engine and write a shard directory; resume after a crash; progress.

Layout written (DESIGN §4)::

    OUT/data/{split}-{i:05d}-of-{n:05d}.parquet      the triplets
    OUT/audio_pool/train-{i:05d}-of-{n:05d}.parquet  every train clip per category (re-pairing)
    OUT/README.md                                    the dataset card
    OUT/manifest.json                                the build record (written last)
    OUT/.avsynth/plan.json                           what this directory is being built from
    OUT/.avsynth/shards/{name}.json                  one record per finished shard (rows, sha256, skips)

Crash safety: every file is written to a temporary name and renamed into place; a shard's record is
written after its file; ``resume`` keeps every shard whose file and record agree (sha256), and for
a file without a record (a crash between the two renames) regenerates the shard in memory and keeps
the file only if the bytes match. A finished shard is never rewritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from avsynth import __version__
from avsynth.build.guard import (STATE_DIR, changed_media, media_digest, media_files, out_lock,
                                 write_media)
from avsynth.build.rows import ShardResult, WorkerOptions, write_spec
from avsynth.build.sources import SourcePaths, load_sources
from avsynth.errors import BuildError
from avsynth.io import TMP_PREFIX, atomic_write_json, sha256_file
from avsynth.manifest import Manifest, select_categories
from avsynth.plan import (DEFAULT_SIZES, Plan, PlanOptions, ShardSpec, canonical_sources_per_row, make_plan,
                          parse_sources_per_row)
from avsynth.shards.record import BuildRecord, ShardEntry, write_record
from avsynth.shards.schema import DATA_DIR, FORMAT, POOL_DIR, SPLITS
from avsynth.sources.records import SkipCounter



@dataclass
class BuildOptions:
    out: Path
    categories: str | None = "46"
    sources: SourcePaths = field(default_factory=SourcePaths)
    sizes: dict = field(default_factory=lambda: dict(DEFAULT_SIZES))
    seed: int = 0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    engine: str = "local"
    ray_address: str | None = None
    clip_seconds: float = 3.0
    audio_format: str = "flac"
    mask_mode: str = "instance"
    min_mask_area: float = 0.0
    max_per_category: int | None = None
    rows_per_shard: int = 1000
    resume: bool = False
    pad_short_audio: bool = False
    demo_cache: Path | None = None
    sources_per_row: int | str = 1  # K > 1: K categories per row, their clips mixed (avsynth.build.mixing);
    # "1,2" / "1:3,2:1": each image draws its K, seeded and weighted (avsynth.plan.parse_sources_per_row)
    negatives: float = 0.0  # fraction of off-screen rows (verified negatives only)
    mix_keep_silent: bool = False  # K > 1 rows only on images that keep a usable category silent
    semantic: bool = False  # add the semantic_mask column
    semantic_classes: str = "manifest"  # "manifest" | "avsbench"

    @property
    def extended(self) -> bool:
        return self.max_sources > 1 or self.negatives > 0 or self.semantic

    @property
    def max_sources(self) -> int:
        """The largest K of ``sources_per_row`` (validated by :func:`build`)."""
        return max(k for k, _ in parse_sources_per_row(self.sources_per_row))


@dataclass
class BuildResult:
    out: Path
    record: BuildRecord
    used_demo: bool
    shards_written: int
    shards_kept: int


# ---------------------------------------------------------------------------------------------
# One shard task, and resume


def run_shard(spec: ShardSpec, out: str, opts: WorkerOptions, state_dir: str) -> ShardResult:
    """Write one shard (atomically) and then its record. Pure in its arguments."""
    final = Path(out) / spec.relpath
    final.parent.mkdir(parents=True, exist_ok=True)
    result = write_spec(spec, opts, final)
    result.rows_done = len(spec.items)
    atomic_write_json(Path(state_dir) / "shards" / _record_name(spec.relpath), asdict(result))
    return result


def regenerate_digest(spec: ShardSpec, opts: WorkerOptions, scratch: Path) -> ShardResult:
    """Produce a shard into ``scratch`` only to learn its bytes' digest (for orphaned files)."""
    tmp = scratch / Path(spec.relpath).name
    result = write_spec(spec, opts, tmp)
    tmp.unlink()
    return result


def _record_name(relpath: str) -> str:
    return relpath.replace("/", "__").replace(".parquet", ".json")


# ---------------------------------------------------------------------------------------------
# The build


def validate_options(opts: BuildOptions) -> None:
    """Every numeric and named option, before anything is read or written (one-line errors)."""
    from avsynth.engines import ENGINES

    if not (0 < opts.clip_seconds <= 10):  # also false for NaN
        raise BuildError("--clip-seconds must be in (0, 10] (VGGSound clips are 10 s)")
    if opts.engine not in ENGINES:
        raise BuildError(f"--engine must be one of {', '.join(ENGINES)}, not {opts.engine!r}")
    if opts.workers < 1:
        raise BuildError(f"--workers must be 0 (all cores) or a positive count, not {opts.workers}")
    for split, n in opts.sizes.items():
        if int(n) < 0:
            raise BuildError(f"the number of {split} rows must be 0 or more, not {n}")
    if opts.max_per_category is not None and opts.max_per_category < 1:
        raise BuildError(f"--max-per-category must be at least 1, not {opts.max_per_category}")


def _plan_arguments(opts: BuildOptions, manifest: Manifest) -> dict:
    """The arguments that determine the output (not workers, engine, resume or paths of out)."""
    return {
        "categories": manifest.names,
        "manifest": manifest.name,
        "sizes": {s: int(opts.sizes.get(s, 0)) for s in SPLITS},
        "seed": opts.seed,
        "clip_seconds": opts.clip_seconds,
        "audio_format": opts.audio_format,
        "mask_mode": opts.mask_mode,
        "min_mask_area": opts.min_mask_area,
        "max_per_category": opts.max_per_category,
        "rows_per_shard": opts.rows_per_shard,
        "pad_short_audio": opts.pad_short_audio,
        **_extended_arguments(opts),
    }


def _extended_arguments(opts: BuildOptions) -> dict:
    """The options of multi-source / negative / semantic builds (absent with the defaults, so a
    default build's record and resume identity are those of before these options existed)."""
    if not opts.extended:
        return {}
    out = {"sources_per_row": canonical_sources_per_row(opts.sources_per_row), "negatives": opts.negatives, "semantic": opts.semantic}
    if opts.semantic:
        out["semantic_classes"] = opts.semantic_classes
    if opts.mix_keep_silent:  # absent when off: records of earlier builds stay as they were
        out["mix_keep_silent"] = True
    return out


def check_out_dir(out: Path, resume: bool, identity: dict, media: dict | None = None) -> None:
    """Refuse an output directory that this build cannot use, with what to do instead.

    A directory holding only ``.avsynth/`` without ``plan.json`` (a build killed while starting)
    counts as empty: a plain build or ``--resume`` starts it afresh.
    """
    state = out / STATE_DIR / "plan.json"
    fresh = not out.exists() or _only_unplanned_state(out)
    if resume:
        if not state.exists():
            if not fresh:
                raise BuildError(
                    f"{out}: --resume given but this directory was not started by avsynth build "
                    f"(no {STATE_DIR}/plan.json)"
                )
            return
        try:
            previous = json.loads(state.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise BuildError(f"{state}: cannot read the previous build's plan: {err}") from None
        if previous != identity:
            changed = sorted(
                k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k)
            )
            named = changed_media(out, media) if media is not None and "media" in changed else ""
            raise BuildError(
                f"{out}: --resume with different inputs or options than the interrupted build "
                f"(differs in: {', '.join(changed)}{named}); use a new --out"
            )
        return
    if not fresh:
        raise BuildError(
            f"{out} is not empty; refusing to build into it. Use --resume to continue an "
            "interrupted build there, or choose an empty --out"
        )


def _only_unplanned_state(out: Path) -> bool:
    """True for a directory holding nothing but ``.avsynth/`` without a plan (or nothing)."""
    entries = list(out.iterdir())
    return all(e.name == STATE_DIR and e.is_dir() for e in entries) and not (
        out / STATE_DIR / "plan.json").exists()


def _existing(out: Path, spec: ShardSpec) -> ShardResult | None:
    rec_path = out / STATE_DIR / "shards" / _record_name(spec.relpath)
    final = out / spec.relpath
    if not (final.exists() and rec_path.exists()):
        return None
    try:
        rec = ShardResult(**json.loads(rec_path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if rec.sha256 != sha256_file(final):
        raise BuildError(
            f"{final}: file does not match its record (sha256 differs); it was modified after "
            "it was written. Delete it to let --resume rebuild it"
        )
    return rec


def build(
    opts: BuildOptions,
    *,
    console_print: Callable[[str], None] = lambda s: None,
    progress: bool = True,
) -> BuildResult:
    """Build (or resume) a shard directory. Returns the build record written to manifest.json."""
    out = Path(opts.out)
    if opts.audio_format not in ("flac", "wav"):
        raise BuildError(f"--audio-format must be flac or wav, not {opts.audio_format!r}")
    if opts.mask_mode not in ("instance", "category"):
        raise BuildError(f"--mask-mode must be instance or category, not {opts.mask_mode!r}")
    validate_options(opts)
    if opts.rows_per_shard < 1:
        raise BuildError("--rows-per-shard must be at least 1")
    if not 0 <= opts.min_mask_area < 1:
        raise BuildError("--min-mask-area is a fraction of the image in [0, 1)")
    try:
        parse_sources_per_row(opts.sources_per_row)
    except ValueError as err:
        raise BuildError(str(err)) from None
    if not 0 <= opts.negatives < 1:
        raise BuildError("--negatives is the fraction of off-screen rows per split, in [0, 1)")
    if opts.max_sources > 1 and opts.mask_mode != "instance":
        raise BuildError("--sources-per-row > 1 makes one row per image (the union of the chosen categories); "
                         "leave --mask-mode at its default")
    if opts.mix_keep_silent and opts.max_sources == 1:
        raise BuildError("--mix-keep-silent applies to mixed rows: give --sources-per-row 2 (or a list such as 1,2)")

    manifest = select_categories(opts.categories)
    if opts.sources.empty:
        console_print(
            "[bold yellow]No source roots given: building from the bundled DEMO corpus "
            "(procedural objects and sounds, not real data).[/]"
        )
    semantic_ids: tuple = ()
    if opts.semantic:
        from avsynth.build.mixing import semantic_class_ids

        semantic_ids = tuple(sorted(semantic_class_ids(manifest, opts.semantic_classes).items()))
    src = load_sources(opts.sources, manifest, demo_cache=opts.demo_cache,
                       want_labels=opts.max_sources > 1 or opts.negatives > 0)
    plan = make_plan(
        src.instances,
        src.clips,
        manifest,
        PlanOptions(
            seed=opts.seed, sizes=dict(opts.sizes), mask_mode=opts.mask_mode,
            min_mask_area=opts.min_mask_area, max_per_category=opts.max_per_category,
            clip_seconds=opts.clip_seconds, rows_per_shard=opts.rows_per_shard,
            sources_per_row=canonical_sources_per_row(opts.sources_per_row), negatives=opts.negatives,
            mix_keep_silent=opts.mix_keep_silent,
        ),
        image_labels=src.image_labels,
    )
    media = media_files(plan)
    identity = {
        "format": FORMAT,
        "arguments": _plan_arguments(opts, manifest),
        "sources": src.fingerprints,
        "demo": src.used_demo,
        "media": media_digest(media),
    }
    check_out_dir(out, opts.resume, identity, media)  # before creating anything in --out
    with out_lock(out):
        check_out_dir(out, opts.resume, identity, media)  # again, now that it is ours
        write_media(out, media)
        wopts = WorkerOptions(audio_format=opts.audio_format, mask_mode=opts.mask_mode,
                              pad_short_audio=opts.pad_short_audio, extended=opts.extended,
                              semantic=opts.semantic, semantic_ids=semantic_ids)
        results, written = run_plan(
            plan, out, identity, wopts, resume=opts.resume, engine=opts.engine,
            workers=opts.workers, ray_address=opts.ray_address, progress=progress,
        )
        return _finish_build(opts, manifest, src, plan, results, out, written, semantic_ids)


def _finish_build(opts, manifest, src, plan, results, out, written, semantic_ids) -> BuildResult:
    arguments = {
        **_plan_arguments(opts, manifest),
        "sources": {
            "demo": src.used_demo,
            "lvis_json": [str(p) for p in src.paths.lvis_json],
            "coco_root": _str(src.paths.coco_root),
            "openimages_root": _str(src.paths.openimages_root),
            "vggsound_csv": _str(src.paths.vggsound_csv),
            "vggsound_audio": _str(src.paths.vggsound_audio),
            **({"openimages_image_labels": [str(p) for p in src.paths.openimages_image_labels]}
               if src.paths.openimages_image_labels else {}),
        },
    }
    record = build_record(
        plan, results, out=out, arguments=arguments, fingerprints=src.fingerprints,
        skips=src.skips, audio_missing=src.audio_missing_by_label,
    )
    if semantic_ids:
        record.extra["semantic_classes"] = dict(semantic_ids)  # category -> id in semantic_mask
    finish(out, record)
    return BuildResult(out, record, src.used_demo, written, len(plan.shards) - written)


def _str(p) -> str | None:
    return str(p) if p else None


def run_plan(
    plan: Plan, out: Path, identity: dict, wopts: WorkerOptions, *, resume: bool, engine: str,
    workers: int, ray_address: str | None, progress: bool,
) -> tuple[dict[str, "ShardResult"], int]:
    """Write every shard of ``plan`` not already finished in ``out``; return results by path."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / STATE_DIR / "plan.json", identity)
    results: dict[str, ShardResult] = {}
    todo: list[ShardSpec] = []
    for spec in plan.shards:
        kept = _existing(out, spec) if resume else None
        if kept is not None:
            results[spec.relpath] = kept
            continue
        orphan = out / spec.relpath
        if orphan.exists():  # crash between the shard's rename and its record
            with tempfile.TemporaryDirectory(dir=out / STATE_DIR) as scratch:
                rec = regenerate_digest(spec, wopts, Path(scratch))
            if rec.sha256 != sha256_file(orphan):
                raise BuildError(f"{orphan}: an existing shard differs from what the plan produces")
            atomic_write_json(out / STATE_DIR / "shards" / _record_name(spec.relpath), asdict(rec))
            results[spec.relpath] = rec
            continue
        todo.append(spec)
    _clean_temp_files(out)

    total_rows = sum(len(s.items) for s in todo)
    tasks = [(spec, str(out), wopts, str(out / STATE_DIR)) for spec in todo]
    from avsynth.engines import run_all

    try:
        with _progress_bar(progress, total_rows) as advance:
            done = run_all(
                engine, run_shard, tasks, workers=max(1, workers), address=ray_address,
                on_result=None if advance is None else (lambda res: advance(res.rows_done)),
            )
    except OSError as err:  # e.g. ENOSPC: the writer has removed its temporary file
        where = err.filename or out
        raise BuildError(
            f"{where}: writing shards failed: {err.strerror or err}. Finished shards are kept "
            "and checked; free the problem and rerun the same command with --resume"
        ) from None
    for res in done:
        results[res.relpath] = res
    return results, len(todo)


def finish(out: Path, record: BuildRecord) -> None:
    """Write the dataset card, then the build record (its presence marks a complete build)."""
    from avsynth.shards.card import write_card

    write_card(out, record)
    write_record(out, record)


def _clean_temp_files(out: Path) -> None:
    """Remove temporary files a killed writer left behind (never a finished shard)."""
    for folder in (DATA_DIR, POOL_DIR, f"{STATE_DIR}/shards"):  # shard records too
        d = out / folder
        if d.is_dir():
            for p in d.iterdir():
                if p.name.startswith(TMP_PREFIX):
                    p.unlink()


class _progress_bar:
    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled and total > 0
        self.total = total

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        class RowsPerSecond(TextColumn):
            def render(self, task):
                speed = task.finished_speed or task.speed
                return f"{speed:,.0f} rows/s" if speed else "… rows/s"

        self.bar = Progress(
            TextColumn("[bold]building"), BarColumn(), MofNCompleteColumn(),
            RowsPerSecond(""), TimeRemainingColumn(), transient=False,
        )
        self.bar.start()
        self.task = self.bar.add_task("rows", total=self.total)
        return lambda n: self.bar.advance(self.task, n)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False


def build_record(
    plan: Plan, results: dict[str, ShardResult], *, out: Path, arguments: dict,
    fingerprints: dict, skips: SkipCounter, audio_missing: dict[str, int] | None = None,
) -> BuildRecord:
    """The build record (``manifest.json``): everything needed to trust and reproduce the build."""
    all_skips = SkipCounter()
    all_skips.merge(skips)
    notes = SkipCounter()
    padded: list[str] = []
    per_split = {s: {"rows": 0, "num_shards": 0, "per_category": {}} for s in SPLITS}
    shard_list: list[ShardEntry] = []
    pool_list: list[ShardEntry] = []
    for spec in plan.shards:
        res = results[spec.relpath]
        all_skips.merge(SkipCounter.from_dict(res.skipped))
        notes.merge(SkipCounter.from_dict(res.audio))
        padded += res.audio.get("padded short audio", {}).get("examples", [])
        entry = ShardEntry(spec.relpath, res.rows, res.sha256, res.bytes)
        if spec.kind == "rows":
            entry.split, entry.index, entry.num_shards = spec.split, spec.index, spec.num_shards
            shard_list.append(entry)
            per_split[spec.split]["rows"] += res.rows
            per_split[spec.split]["num_shards"] += 1
        else:
            pool_list.append(entry)
    written = _count_written(Path(out), shard_list)  # less any rows a worker had to skip
    for split, planned in plan.counts().items():
        per_split[split]["per_category"] = written.get(split, {})
        per_split[split]["planned_rows"] = planned["rows"]
    opts = plan.options
    return BuildRecord(
        format=FORMAT,
        tool={"name": "avsynth", "version": __version__},
        arguments=arguments,
        seed=opts.seed,
        sources=fingerprints,
        categories=plan.categories,
        requested=plan.requested,
        targets=plan.targets,
        available=plan.available,
        splits=per_split,
        shortfall=plan.shortfall,
        filtered=plan.filtered,
        skipped=all_skips.as_dict(),
        audio_missing_by_label=dict(sorted((audio_missing or {}).items())),
        shards=shard_list,
        audio_pool=pool_list,
        clip_seconds=float(opts.clip_seconds),
        audio_format=arguments.get("audio_format", "flac"),
        mask_mode=opts.mask_mode,
        audio_checks=audio_checks_entry(
            notes, arguments.get("pad_short_audio", False), padded),
        extra=_composition(plan, Path(out), shard_list),
    )


def audio_checks_entry(notes: SkipCounter, pad_short: bool, padded: list[str]) -> dict:
    """The record's ``audio_checks``: the silence threshold, whether short clips were padded, the
    rows whose window was padded or moved off silence (counts and examples), and the id of every
    padded row (they hold zeros after the clip's end)."""
    from avsynth.media.checks import MIN_RMS_DBFS

    return {"min_rms_dbfs": MIN_RMS_DBFS, "pad_short_audio": bool(pad_short),
            "notes": notes.as_dict(), "padded_rows": sorted(padded)}


def _composition(plan: Plan, out: Path, shards: Sequence[ShardEntry]) -> dict:
    """Extended builds: mixed and negative rows per split, planned and written (``composition``)."""
    if not plan.composition:
        return {}
    import pyarrow.parquet as pq

    written: dict[str, dict[str, int]] = {}
    for s in shards:
        t = pq.read_table(out / s.path, columns=["sources", "negative"])
        d = written.setdefault(s.split, {"rows": 0, "mixed_rows": 0, "negative_rows": 0})
        d["rows"] += t.num_rows
        d["mixed_rows"] += sum(1 for v in t.column("sources").to_pylist() if len(v) > 1)
        d["negative_rows"] += sum(1 for v in t.column("negative").to_pylist() if v)
    return {"composition": {
        split: {"planned": plan.composition[split], **written.get(split, {})}
        for split in plan.composition
    }}


def _count_written(out: Path, shards: Sequence[ShardEntry]) -> dict[str, dict[str, int]]:
    import pyarrow.parquet as pq

    counts: dict[str, dict[str, int]] = {}
    for s in shards:
        col = pq.read_table(out / s.path, columns=["category"]).column("category").to_pylist()
        d = counts.setdefault(s.split, {})
        for c in col:
            d[c] = d.get(c, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in counts.items()}
