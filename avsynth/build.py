"""Run a plan on an engine and write a shard directory; resume after a crash.

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

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from avsynth import __version__
from avsynth.errors import BuildError, SourceError
from avsynth.manifest import Manifest, select_categories
from avsynth.plan import DEFAULT_SIZES, SPLITS, Plan, PlanOptions, PoolSpec, RowSpec, ShardSpec, make_plan
from avsynth.sources.records import AudioClip, ImageInstance, SkipCounter

STATE_DIR = ".avsynth"
FORMAT = "avsynth-shards/1"


@dataclass
class SourcePaths:
    """Where the inputs are. All empty means: use the demo corpus."""

    lvis_json: list[Path] = field(default_factory=list)
    coco_root: Path | None = None
    openimages_root: Path | None = None
    openimages_splits: list[str] = field(default_factory=lambda: ["train", "validation", "test"])
    vggsound_csv: Path | None = None
    vggsound_audio: Path | None = None

    @property
    def empty(self) -> bool:
        return not (self.lvis_json or self.openimages_root or self.vggsound_csv)


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
    demo_cache: Path | None = None


@dataclass
class ShardResult:
    relpath: str
    split: str
    kind: str
    index: int
    num_shards: int
    rows: int
    sha256: str
    bytes: int
    skipped: dict
    rows_done: int = 0  # for progress (rows produced by this call; 0 when the shard was kept)


@dataclass
class BuildResult:
    out: Path
    record: dict
    used_demo: bool
    shards_written: int
    shards_kept: int


# ---------------------------------------------------------------------------------------------
# Reading sources


@dataclass
class LoadedSources:
    instances: list[ImageInstance]
    clips: list[AudioClip]
    fingerprints: dict
    skips: SkipCounter
    audio_missing_by_label: dict[str, int]
    used_demo: bool
    paths: SourcePaths


def file_fingerprint(path: Path) -> dict:
    """Size and sha256 of a metadata file (annotation JSON / CSV)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": h.hexdigest()}


def load_sources(
    paths: SourcePaths, manifest: Manifest, *, demo_cache: Path | None = None
) -> LoadedSources:
    """Read every given source (or the demo corpus when none is given) into records."""
    used_demo = paths.empty
    if used_demo:
        from avsynth.sources.demo import ensure_demo

        demo = ensure_demo(demo_cache, seed=0)  # the demo corpus is fixed; --seed drives the plan
        paths = SourcePaths(
            lvis_json=[Path(demo.lvis_train_json), Path(demo.lvis_val_json)],
            coco_root=Path(demo.coco_root),
            openimages_root=Path(demo.openimages_root),
            vggsound_csv=Path(demo.vggsound_csv),
            vggsound_audio=Path(demo.vggsound_audio),
        )
    if not paths.vggsound_csv or not paths.vggsound_audio:
        raise BuildError("audio is required: give --vggsound-csv and --vggsound-audio")
    if not (paths.lvis_json or paths.openimages_root):
        raise BuildError("images are required: give --lvis-json (+ --coco-root) or --openimages-root")
    if paths.lvis_json and not paths.coco_root:
        raise BuildError("--lvis-json needs --coco-root (the folder holding train2017/ and val2017/)")

    skips = SkipCounter()
    instances: list[ImageInstance] = []
    fingerprints: dict = {}
    if paths.lvis_json:
        from avsynth.sources.lvis import read_lvis

        for p in paths.lvis_json:
            if not Path(p).is_file():
                raise SourceError(p, "LVIS annotation file not found")
        instances += read_lvis(list(paths.lvis_json), paths.coco_root, manifest, skips)
        fingerprints["lvis"] = [file_fingerprint(Path(p)) for p in paths.lvis_json]
    if paths.openimages_root:
        from avsynth.sources.openimages import read_openimages

        root = Path(paths.openimages_root)
        fps = []
        for split in paths.openimages_splits:
            csv = root / f"{split}-annotations-object-segmentation.csv"
            if csv.exists():
                instances += read_openimages(root, split, manifest, skips)
                fps.append(file_fingerprint(csv))
        if not fps:
            raise SourceError(root, "no {split}-annotations-object-segmentation.csv found")
        fingerprints["openimages"] = fps

    from avsynth.sources.vggsound import read_vggsound

    index = read_vggsound(Path(paths.vggsound_csv), Path(paths.vggsound_audio), manifest, skips)
    fingerprints["vggsound"] = [file_fingerprint(Path(paths.vggsound_csv))]
    fingerprints["images_resolved"] = len({(i.source, i.image_id) for i in instances})
    fingerprints["audio_clips_resolved"] = len(index.clips)
    return LoadedSources(
        instances, list(index.clips), fingerprints, skips, dict(index.missing_by_label),
        used_demo, paths,
    )


# ---------------------------------------------------------------------------------------------
# Workers: a shard is a pure function of its spec and the options


@dataclass(frozen=True)
class WorkerOptions:
    audio_format: str = "flac"
    sample_rate: int = 16_000
    mask_mode: str = "instance"


def produce_rows(spec: ShardSpec, opts: WorkerOptions, skips: SkipCounter):
    """Yield the rows of a shard; bad items are counted in ``skips`` and left out."""
    from avsynth.engines.local import report_rows

    if spec.kind == "pool":
        for item in spec.items:
            row = _pool_row(item, opts, skips)
            report_rows(1)
            if row is not None:
                yield row
        return
    image_cache: dict[Path, object] = {}
    for item in spec.items:
        row = _triplet_row(item, opts, skips, image_cache)
        report_rows(1)
        if row is not None:
            yield row


def _audio_bytes(clip: AudioClip, offset: float, seconds: float, opts: WorkerOptions) -> bytes:
    from avsynth.media.audio import encode_audio, load_window

    wave = load_window(clip.path, offset, seconds, target_sr=opts.sample_rate)
    return encode_audio(wave, opts.sample_rate, fmt=opts.audio_format)


def _pool_row(item: PoolSpec, opts: WorkerOptions, skips: SkipCounter) -> dict | None:
    try:
        audio = _audio_bytes(item.clip, item.audio_offset_s, item.audio_seconds, opts)
    except SourceError as err:
        skips.skip("unreadable audio file", str(err))
        return None
    return {
        "category": item.category,
        "category_id": item.category_id,
        "audio_id": item.clip.audio_id,
        "audio_label": item.clip.label,
        "audio": {"bytes": audio, "path": f"{item.clip.audio_id}.{opts.audio_format}"},
        "audio_offset_s": item.audio_offset_s,
        "audio_seconds": item.audio_seconds,
    }


def _triplet_row(item: RowSpec, opts: WorkerOptions, skips: SkipCounter, cache: dict) -> dict | None:
    from avsynth.media.image import read_image
    from avsynth.media.mask import encode_png, mask_stats, rasterize, union

    first = item.instances[0]
    try:
        image = cache.get(first.image_path)
        if image is None:
            cache.clear()  # rows of one image are rarely far apart; keep memory flat
            image = read_image(first.image_path)
            cache[first.image_path] = image
    except SourceError as err:
        skips.skip("unreadable image file", str(err))
        return None
    if (image.width, image.height) != (first.width, first.height):
        skips.skip(
            "image size differs from its annotation",
            f"{first.image_path}: {image.width}x{image.height} vs {first.width}x{first.height}",
        )
        return None
    try:
        masks = [rasterize(i.mask, image.width, image.height) for i in item.instances]
    except SourceError as err:
        skips.skip("unreadable mask", str(err))
        return None
    mask = masks[0] if len(masks) == 1 else union(masks)
    area, bbox = mask_stats(mask)
    if area <= 0.0:
        skips.skip("empty mask", f"{first.source}:{first.image_id}:{first.annotation_id}")
        return None
    try:
        audio = _audio_bytes(item.clip, item.audio_offset_s, item.audio_seconds, opts)
    except SourceError as err:
        skips.skip("unreadable audio file", str(err))
        return None
    licenses = sorted({i.license for i in item.instances if i.license})
    return {
        "id": item.id,
        "split": item.split,
        "category": item.category,
        "category_id": item.category_id,
        "image": {"bytes": image.bytes, "path": f"{first.image_id}.jpg"},
        "mask": {"bytes": encode_png(mask), "path": f"{item.id}.png"},
        "audio": {"bytes": audio, "path": f"{item.clip.audio_id}.{opts.audio_format}"},
        "width": image.width,
        "height": image.height,
        "mask_area": float(area),
        "bbox": [float(v) for v in bbox],
        "image_source": first.source,
        "image_id": str(first.image_id),
        "annotation_id": "+".join(str(i.annotation_id) for i in item.instances),
        "audio_source": item.clip.source,
        "audio_id": item.clip.audio_id,
        "audio_label": item.clip.label,
        "audio_offset_s": float(item.audio_offset_s),
        "audio_seconds": float(item.audio_seconds),
        "license": "; ".join(licenses + [f"audio: {item.clip.license}"]),
    }


def write_spec(spec: ShardSpec, opts: WorkerOptions, path: Path) -> ShardResult:
    """Produce the shard ``spec`` into ``path`` (atomically); its result without progress count."""
    from avsynth.shards.schema import POOL_SCHEMA, arrow_schema
    from avsynth.shards.writer import write_shard

    skips = SkipCounter()
    schema = arrow_schema() if spec.kind == "rows" else POOL_SCHEMA
    rec = write_shard(produce_rows(spec, opts, skips), path, schema=schema)
    return ShardResult(spec.relpath, spec.split, spec.kind, spec.index, spec.num_shards,
                       rec.rows, rec.sha256, rec.bytes, skips.as_dict())


def run_shard(spec: ShardSpec, out: str, opts: WorkerOptions, state_dir: str) -> ShardResult:
    """Write one shard (atomically) and then its record. Pure in its arguments."""
    final = Path(out) / spec.relpath
    final.parent.mkdir(parents=True, exist_ok=True)
    result = write_spec(spec, opts, final)
    result.rows_done = len(spec.items)
    _write_json_atomic(Path(state_dir) / "shards" / _record_name(spec.relpath), asdict(result))
    return result


def regenerate_digest(spec: ShardSpec, opts: WorkerOptions, scratch: Path) -> ShardResult:
    """Produce a shard into ``scratch`` only to learn its bytes' digest (for orphaned files)."""
    tmp = scratch / Path(spec.relpath).name
    result = write_spec(spec, opts, tmp)
    tmp.unlink()
    return result


def _record_name(relpath: str) -> str:
    return relpath.replace("/", "__").replace(".parquet", ".json")


def _write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# The build


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
    }


def _check_out_dir(out: Path, resume: bool, identity: dict) -> None:
    state = out / STATE_DIR / "plan.json"
    if resume:
        if not state.exists():
            if out.exists() and any(out.iterdir()):
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
            raise BuildError(
                f"{out}: --resume with different inputs or options than the interrupted build "
                f"(differs in: {', '.join(changed)}); use a new --out"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise BuildError(
            f"{out} is not empty; refusing to build into it. Use --resume to continue an "
            "interrupted build there, or choose an empty --out"
        )


def _existing(out: Path, spec: ShardSpec) -> ShardResult | None:
    rec_path = out / STATE_DIR / "shards" / _record_name(spec.relpath)
    final = out / spec.relpath
    if not (final.exists() and rec_path.exists()):
        return None
    try:
        rec = ShardResult(**json.loads(rec_path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    from avsynth.shards.writer import sha256_file

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
    if opts.clip_seconds <= 0 or opts.clip_seconds > 10:
        raise BuildError("--clip-seconds must be in (0, 10] (VGGSound clips are 10 s)")
    if opts.rows_per_shard < 1:
        raise BuildError("--rows-per-shard must be at least 1")
    if not 0 <= opts.min_mask_area < 1:
        raise BuildError("--min-mask-area is a fraction of the image in [0, 1)")

    manifest = select_categories(opts.categories)
    if opts.sources.empty:
        console_print(
            "[bold yellow]No source roots given: building from the bundled DEMO corpus "
            "(procedural objects and sounds, not real data).[/]"
        )
    src = load_sources(opts.sources, manifest, demo_cache=opts.demo_cache)
    identity = {
        "format": FORMAT,
        "arguments": _plan_arguments(opts, manifest),
        "sources": src.fingerprints,
        "demo": src.used_demo,
    }
    _check_out_dir(out, opts.resume, identity)
    plan = make_plan(
        src.instances,
        src.clips,
        manifest,
        PlanOptions(
            seed=opts.seed, sizes=dict(opts.sizes), mask_mode=opts.mask_mode,
            min_mask_area=opts.min_mask_area, max_per_category=opts.max_per_category,
            clip_seconds=opts.clip_seconds, rows_per_shard=opts.rows_per_shard,
        ),
    )
    wopts = WorkerOptions(audio_format=opts.audio_format, mask_mode=opts.mask_mode)
    results, written = run_plan(
        plan, out, identity, wopts, resume=opts.resume, engine=opts.engine,
        workers=opts.workers, ray_address=opts.ray_address, progress=progress,
    )
    arguments = {
        **_plan_arguments(opts, manifest),
        "sources": {
            "demo": src.used_demo,
            "lvis_json": [str(p) for p in src.paths.lvis_json],
            "coco_root": _str(src.paths.coco_root),
            "openimages_root": _str(src.paths.openimages_root),
            "vggsound_csv": _str(src.paths.vggsound_csv),
            "vggsound_audio": _str(src.paths.vggsound_audio),
        },
    }
    record = build_record(
        plan, results, out=out, arguments=arguments, fingerprints=src.fingerprints,
        skips=src.skips, audio_missing=src.audio_missing_by_label,
    )
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
    _write_json_atomic(out / STATE_DIR / "plan.json", identity)
    results: dict[str, ShardResult] = {}
    todo: list[ShardSpec] = []
    for spec in plan.shards:
        kept = _existing(out, spec) if resume else None
        if kept is not None:
            results[spec.relpath] = kept
            continue
        orphan = out / spec.relpath
        if orphan.exists():  # crash between the shard's rename and its record
            from avsynth.shards.writer import sha256_file

            with tempfile.TemporaryDirectory(dir=out / STATE_DIR) as scratch:
                rec = regenerate_digest(spec, wopts, Path(scratch))
            if rec.sha256 != sha256_file(orphan):
                raise BuildError(f"{orphan}: an existing shard differs from what the plan produces")
            _write_json_atomic(out / STATE_DIR / "shards" / _record_name(spec.relpath), asdict(rec))
            results[spec.relpath] = rec
            continue
        todo.append(spec)
    _clean_temp_files(out)

    total_rows = sum(len(s.items) for s in todo)
    tasks = [(spec, str(out), wopts, str(out / STATE_DIR)) for spec in todo]
    from avsynth.engines import run_tasks

    try:
        with _progress_bar(progress, total_rows) as advance:
            done = run_tasks(
                engine, run_shard, tasks, workers=max(1, workers), on_rows=advance,
                ray_address=ray_address,
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


def finish(out: Path, record: dict) -> None:
    """Write the dataset card, then the build record (its presence marks a complete build)."""
    from avsynth.shards.card import write_card

    write_card(out, record)
    _write_json_atomic(out / "manifest.json", record)


def _clean_temp_files(out: Path) -> None:
    """Remove temporary files a killed writer left behind (never a finished shard)."""
    from avsynth.shards.writer import TMP_PREFIX

    for folder in ("data", "audio_pool"):
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
) -> dict:
    """The build record (``manifest.json``): everything needed to trust and reproduce the build."""
    all_skips = SkipCounter()
    all_skips.merge(skips)
    per_split = {s: {"rows": 0, "num_shards": 0, "per_category": {}} for s in SPLITS}
    shard_list, pool_list = [], []
    for spec in plan.shards:
        res = results[spec.relpath]
        all_skips.merge(SkipCounter.from_dict(res.skipped))
        entry = {"path": spec.relpath, "rows": res.rows, "sha256": res.sha256, "bytes": res.bytes}
        if spec.kind == "rows":
            shard_list.append({"split": spec.split, "index": spec.index,
                               "num_shards": spec.num_shards, **entry})
            per_split[spec.split]["rows"] += res.rows
            per_split[spec.split]["num_shards"] += 1
        else:
            pool_list.append(entry)
    written = _count_written(Path(out), shard_list)  # less any rows a worker had to skip
    for split, planned in plan.counts().items():
        per_split[split]["per_category"] = written.get(split, {})
        per_split[split]["planned_rows"] = planned["rows"]
    opts = plan.options
    return {
        "format": FORMAT,
        "tool": {"name": "avsynth", "version": __version__},
        "arguments": arguments,
        "seed": opts.seed,
        "sources": fingerprints,
        "categories": plan.categories,
        "requested": plan.requested,
        "targets": plan.targets,
        "available": plan.available,
        "splits": per_split,
        "shortfall": plan.shortfall,
        "filtered": plan.filtered,
        "skipped": all_skips.as_dict(),
        "audio_missing_by_label": dict(sorted((audio_missing or {}).items())),
        "shards": shard_list,
        "audio_pool": pool_list,
        "clip_seconds": float(opts.clip_seconds),
        "audio_format": arguments.get("audio_format", "flac"),
        "mask_mode": opts.mask_mode,
    }


def _count_written(out: Path, shards: Sequence[dict]) -> dict[str, dict[str, int]]:
    import pyarrow.parquet as pq

    counts: dict[str, dict[str, int]] = {}
    for s in shards:
        col = pq.read_table(out / s["path"], columns=["category"]).column("category").to_pylist()
        d = counts.setdefault(s["split"], {})
        for c in col:
            d[c] = d.get(c, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in counts.items()}
