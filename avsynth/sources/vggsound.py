"""Index VGGSound: the label list and the clips that exist locally (reads only).

``vggsound.csv`` has no header; each row is ``ytid,start_seconds,label,split`` with the label
quoted when it contains commas (``"bird chirping, tweeting"``) and split ``train`` or ``test``.
The released test list (``test.csv``) has rows ``{ytid}_{start:06d}.mp4,label`` instead.
A local clip is ``{audio_dir}/{ytid}_{start:06d}.{wav|flac|mp4}`` (wav preferred, then flac).
Rows without a local file (link rot) are counted, never fatal.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from avsynth.errors import SourceError
from avsynth.manifest import Manifest
from avsynth.sources._files import csv_rows
from avsynth.sources.records import AudioClip, SkipCounter

SOURCE = "vggsound"
SPLITS = ("train", "test")
EXTENSIONS = (".wav", ".flac", ".mp4")  # preference order
LICENSE = "VGGSound: CC BY 4.0 (audio from YouTube videos, see the VGGSound terms)"

SKIP_MALFORMED = "vggsound: malformed csv row"
SKIP_LABEL_ABSENT = "vggsound: manifest label is not a VGGSound class"
CLASS_LIST = "vggsound_classes.txt"
SKIP_MISSING = "vggsound: audio file missing"
SKIP_UNREADABLE = "vggsound: audio file unreadable"
SKIP_DUPLICATE = "vggsound: duplicate row"
SKIP_TWO_SPLITS = "vggsound: clip listed in both splits (first kept)"


@dataclass(frozen=True)
class VGGSoundRow:
    """One row of the VGGSound list."""

    ytid: str
    start_seconds: int
    label: str
    split: str

    @property
    def audio_id(self) -> str:
        return clip_id(self.ytid, self.start_seconds)


@dataclass
class VGGSoundIndex:
    """The locally available clips of the selected labels, and what is missing."""

    clips: list[AudioClip]
    missing_by_label: dict[str, int] = field(default_factory=dict)
    rows_total: int = 0
    rows_selected: int = 0

    def by_label(self) -> dict[str, list[AudioClip]]:
        out: dict[str, list[AudioClip]] = {}
        for clip in self.clips:
            out.setdefault(clip.label, []).append(clip)
        return out


def clip_id(ytid: str, start_seconds: int) -> str:
    """The VGGSound clip name ``{ytid}_{start:06d}``."""
    return f"{ytid}_{start_seconds:06d}"


def parse_vggsound_csv(csv_path: Path, skips: SkipCounter) -> list[VGGSoundRow]:
    """Rows of ``vggsound.csv`` in file order; malformed rows are counted skips.

    A file with rows but not a single valid one is not a VGGSound list: SourceError.
    """
    rows: list[VGGSoundRow] = []
    bad = 0
    first_bad = ""
    for line, fields in csv_rows(csv_path, "VGGSound csv"):
        if not fields or not any(f.strip() for f in fields):
            continue
        row = _parse_row(fields)
        if row is None:
            bad += 1
            first_bad = first_bad or f"line {line}: {fields[:5]}"
            skips.skip(SKIP_MALFORMED, f"{Path(csv_path).name}:{line}")
            continue
        rows.append(row)
    if not rows:
        raise SourceError(
            csv_path,
            f"no valid 'ytid,start_seconds,label,split' rows ({bad} malformed; first: {first_bad})",
        )
    return rows


def _parse_row(fields: list[str]) -> VGGSoundRow | None:
    if len(fields) != 4:
        return None
    ytid, start, label, split = (f.strip() for f in fields)
    if not ytid or not label or split not in SPLITS:
        return None
    try:
        start_seconds = int(start)
    except ValueError:
        return None
    return None if start_seconds < 0 else VGGSoundRow(ytid, start_seconds, label, split)


def read_vggsound_test_list(path: Path, skips: SkipCounter | None = None) -> list[VGGSoundRow]:
    """Rows of the released test list (``{ytid}_{start:06d}.mp4,label``), split ``test``."""
    skips = skips if skips is not None else SkipCounter()
    rows: list[VGGSoundRow] = []
    for line, fields in csv_rows(path, "VGGSound test list"):
        if not fields or not any(f.strip() for f in fields):
            continue
        row = None
        if len(fields) == 2:
            stem = fields[0].strip()
            stem = stem.rsplit(".", 1)[0] if stem.endswith(EXTENSIONS) else stem
            ytid, _, start = stem.rpartition("_")
            label = fields[1].strip()
            if ytid and start.isdigit() and label:
                row = VGGSoundRow(ytid, int(start), label, "test")
        if row is None:
            skips.skip(SKIP_MALFORMED, f"{Path(path).name}:{line}")
            continue
        rows.append(row)
    if not rows:
        raise SourceError(path, "no valid '{ytid}_{start}.mp4,label' rows")
    return rows


def index_audio_dir(audio_dir: Path) -> dict[str, str]:
    """Clip name -> file name of its best local file (wav > flac > mp4), from one listing."""
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise SourceError(audio_dir, "VGGSound audio directory not found")
    rank_of = {ext: i for i, ext in enumerate(EXTENSIONS)}
    best: dict[str, tuple[int, str]] = {}
    with os.scandir(audio_dir) as it:
        for entry in it:
            name = entry.name
            stem, dot, ext = name.rpartition(".")
            rank = rank_of.get("." + ext.lower()) if dot else None
            if rank is None or (stem in best and best[stem][0] <= rank) or not entry.is_file():
                continue
            best[stem] = (rank, name)
    return {stem: name for stem, (_, name) in best.items()}


def audio_readable(path: Path) -> bool:
    """Whether a wav/flac file's header is readable with a non-empty stream (mp4: not probed)."""
    if path.suffix.lower() == ".mp4":
        return True  # container audio is decoded by the media layer; no header probe here
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError, sf.LibsndfileError):
        return False
    return info.frames > 0 and info.samplerate > 0


def index_vggsound_rows(
    rows: list[VGGSoundRow],
    audio_dir: Path,
    manifest: Manifest | None,
    skips: SkipCounter,
    *,
    probe: bool = False,
) -> VGGSoundIndex:
    """Match rows to local files. Only the manifest's VGGSound labels are kept (all if None).

    ``probe`` reads each selected wav/flac header once and skips unreadable files.
    Clips are sorted by (label, clip name, split).
    """
    audio_dir = Path(audio_dir)
    files = index_audio_dir(audio_dir)
    wanted = None if manifest is None else set(manifest.by_source_label(SOURCE))
    missing: Counter = Counter()
    seen: set[tuple[str, str, str]] = set()
    split_of: dict[str, str] = {}  # a clip lives in one split only (train/test stay disjoint)
    clips: list[AudioClip] = []
    selected = 0
    for row in rows:
        if wanted is not None and row.label not in wanted:
            continue
        audio_id = row.audio_id
        key = (audio_id, row.label, row.split)
        if key in seen:
            skips.skip(SKIP_DUPLICATE, audio_id)
            continue
        seen.add(key)
        first_split = split_of.setdefault(audio_id, row.split)
        if first_split != row.split:
            skips.skip(SKIP_TWO_SPLITS, f"{audio_id} ({first_split} and {row.split})")
            continue
        selected += 1
        name = files.get(audio_id)
        if name is None:
            missing[row.label] += 1
            skips.skip(SKIP_MISSING, audio_id)
            continue
        path = audio_dir / name
        if probe and not audio_readable(path):
            skips.skip(SKIP_UNREADABLE, str(path))
            continue
        clips.append(
            AudioClip(
                source=SOURCE,
                audio_id=audio_id,
                label=row.label,
                split=row.split,
                path=path,
                start_seconds=row.start_seconds,
                license=LICENSE,
            )
        )
    if wanted is not None:
        check_labels(wanted, {r.label for r in rows}, skips)
    clips.sort(key=lambda c: (c.label, c.audio_id, c.split))
    return VGGSoundIndex(
        clips=clips,
        missing_by_label=dict(sorted(missing.items())),
        rows_total=len(rows),
        rows_selected=selected,
    )


def vggsound_classes() -> set[str]:
    """The 309 VGGSound class labels (shipped with the manifests)."""
    from avsynth.resources import data_dir

    path = data_dir("manifests") / CLASS_LIST
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def check_labels(wanted: set[str], present: set[str], skips: SkipCounter) -> None:
    """Count each manifest label that is neither a VGGSound class nor in the csv (a typo), with the
    closest valid labels. (A valid label that a partial csv lacks is not an error.)"""
    import difflib

    known = vggsound_classes() | present
    for label in sorted(wanted - known):
        close = difflib.get_close_matches(label, sorted(known), n=3, cutoff=0.6)
        skips.skip(SKIP_LABEL_ABSENT,
                   f"{label!r} (closest: {', '.join(map(repr, close)) or 'none'})")


def read_vggsound(
    csv_path: Path,
    audio_dir: Path,
    manifest: Manifest | None,
    skips: SkipCounter,
    *,
    probe: bool = False,
) -> VGGSoundIndex:
    """Parse ``vggsound.csv`` and match its rows against the clips in ``audio_dir``."""
    rows = parse_vggsound_csv(csv_path, skips)
    return index_vggsound_rows(rows, audio_dir, manifest, skips, probe=probe)
