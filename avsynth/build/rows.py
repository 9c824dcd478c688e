"""Row production: a shard is a pure function of its slice of the plan and the worker options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avsynth.build.inputs import checked_image, counted
from avsynth.plan import PoolSpec, RowSpec, ShardSpec
from avsynth.sources.records import AudioClip, SkipCounter


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
    rows_done: int = 0  # for progress: rows this call went through (0 when the shard was kept)
    audio: dict = field(default_factory=dict)  # audio-check notes: padded / moved windows


@dataclass(frozen=True)
class WorkerOptions:
    audio_format: str = "flac"
    sample_rate: int = 16_000
    mask_mode: str = "instance"
    pad_short_audio: bool = False  # zero-pad a clip shorter than the window (else: counted skip)
    extended: bool = False  # rows carry `sources` and `negative` (see avsynth.build.mixing)
    semantic: bool = False  # rows carry `semantic_mask`
    semantic_ids: tuple = ()  # ((category, class id), ...) for the semantic mask


def produce_rows(spec: ShardSpec, opts: WorkerOptions, skips: SkipCounter,
                 notes: SkipCounter | None = None):
    """Yield the rows of a shard; bad items are counted in ``skips`` and left out; rows whose
    audio window was padded or moved are noted in ``notes``."""
    notes = SkipCounter() if notes is None else notes
    if spec.kind == "pool":
        for item in spec.items:
            row = pool_row(item, opts, skips, notes)
            if row is not None:
                yield row
        return
    image_cache: dict[Path, object] = {}
    from functools import partial

    make_row = partial(triplet_row, notes=notes)
    if opts.extended or opts.semantic:
        from avsynth.build.mixing import extended_row

        make_row = partial(extended_row, base_row=make_row, note_window=partial(note_window, notes))
    for item in spec.items:
        row = make_row(item, opts, skips, image_cache)
        if row is not None:
            yield row


def _audio_bytes(clip: AudioClip, offset: float, seconds: float, opts: WorkerOptions,
                 notes: SkipCounter, row: str) -> tuple[bytes, float]:
    """Encoded audio of the checked window and the window's start (moved off silence or past the
    decoded end when needed). Raises SourceError (unreadable) or Rejected (short / silent)."""
    from avsynth.media.audio import encode_audio
    from avsynth.media.checks import checked_window

    samples, win = checked_window(clip.path, offset, seconds, target_sr=opts.sample_rate,
                                  key=str(clip.path), pad_short=opts.pad_short_audio)
    note_window(notes, row, offset, win)
    return encode_audio(samples, opts.sample_rate, fmt=opts.audio_format), win.offset_s


def note_window(notes: SkipCounter, row: str, planned_s: float, win) -> None:
    """Record in ``notes`` a window that was padded or moved off silence."""
    if win.padded:
        notes.skip("padded short audio", row)
    elif win.moved:
        notes.skip("window moved to non-silent audio", f"{row}: {planned_s:g} s -> {win.offset_s:g} s")


def pool_row(item: PoolSpec, opts: WorkerOptions, skips: SkipCounter,
             notes: SkipCounter) -> dict | None:
    got = counted(skips, "unreadable audio file", _audio_bytes, item.clip, item.audio_offset_s,
                  item.audio_seconds, opts, notes, f"pool:{item.clip.audio_id}")
    if got is None:
        return None
    audio, offset = got
    return {
        "category": item.category,
        "category_id": item.category_id,
        "audio_id": item.clip.audio_id,
        "audio_label": item.clip.label,
        "audio": {"bytes": audio, "path": f"{item.clip.audio_id}.{opts.audio_format}"},
        "audio_offset_s": offset,
        "audio_seconds": item.audio_seconds,
    }


def triplet_row(item: RowSpec, opts: WorkerOptions, skips: SkipCounter, cache: dict,
                notes: SkipCounter | None = None) -> dict | None:
    from avsynth.media.mask import encode_png, mask_stats, rasterize_checked, union

    notes = SkipCounter() if notes is None else notes
    first = item.instances[0]
    image = checked_image(cache, first.image_path, first.width, first.height, skips)
    if image is None:
        return None
    masks = counted(skips, "unreadable mask", lambda: [
        rasterize_checked(i.mask, image.width, image.height, f"{i.source}:{i.image_id}:{i.annotation_id}")
        for i in item.instances])
    if masks is None:
        return None
    mask = masks[0] if len(masks) == 1 else union(masks)
    area, bbox = mask_stats(mask)
    if area <= 0.0:
        skips.skip("empty mask", f"{first.source}:{first.image_id}:{first.annotation_id}")
        return None
    got = counted(skips, "unreadable audio file", _audio_bytes, item.clip, item.audio_offset_s,
                  item.audio_seconds, opts, notes, item.id)
    if got is None:
        return None
    audio, offset = got
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
        "audio_offset_s": float(offset),
        "audio_seconds": float(item.audio_seconds),
        "license": "; ".join(licenses + [f"audio: {item.clip.license}"]),
    }


def write_spec(spec: ShardSpec, opts: WorkerOptions, path: Path) -> ShardResult:
    """Produce the shard ``spec`` into ``path`` (atomically); its result without progress count."""
    from avsynth.shards.schema import POOL_SCHEMA, arrow_schema
    from avsynth.shards.writer import write_shard

    skips, notes = SkipCounter(), SkipCounter(max_examples=1 << 30)  # notes: every row, by id
    schema = arrow_schema(opts.extended, opts.semantic) if spec.kind == "rows" else POOL_SCHEMA
    rec = write_shard(produce_rows(spec, opts, skips, notes), path, schema=schema)
    return ShardResult(spec.relpath, spec.split, spec.kind, spec.index, spec.num_shards,
                       rec.rows, rec.sha256, rec.bytes, skips.as_dict(), audio=notes.as_dict())
