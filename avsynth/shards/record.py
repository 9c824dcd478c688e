"""The build record of a shard directory (``DIR/manifest.json``): its one reader and writer.

:class:`BuildRecord` is the typed record; :func:`read_record` / :func:`write_record` are the only
code that reads or writes ``manifest.json`` (``load_record_json`` returns the raw JSON object for
``avsynth verify``, which checks its structure before trusting it). The JSON is written indented
and key-sorted, so a record round-trips byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import IO, Any, Mapping

from avsynth.errors import VerifyError
from avsynth.io import atomic_write_json
from avsynth.shards.schema import FORMAT, SPLITS

RECORD_NAME = "manifest.json"


@dataclass
class ShardEntry:
    """One listed shard file: ``path`` relative to the directory (posix), rows, sha256, bytes.

    Triplet shards also carry ``split``, ``index`` and ``num_shards``; audio-pool shards do not.
    """

    path: str
    rows: int = 0
    sha256: str = ""
    bytes: int = 0
    split: str | None = None
    index: int | None = None
    num_shards: int | None = None

    @property
    def split_name(self) -> str:
        """``split``, else the split named by the file name (``{split}-i-of-n.parquet``)."""
        return self.split or PurePosixPath(self.path).name.split("-", 1)[0]

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"path": self.path, "rows": self.rows, "sha256": self.sha256, "bytes": self.bytes}
        if self.split is not None or self.index is not None or self.num_shards is not None:
            d = {"split": self.split, "index": self.index, "num_shards": self.num_shards, **d}
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "ShardEntry":
        return cls(
            path=d["path"], rows=d.get("rows", 0), sha256=d.get("sha256", ""), bytes=d.get("bytes", 0),
            split=d.get("split"), index=d.get("index"), num_shards=d.get("num_shards"),
        )


@dataclass
class BuildRecord:
    """What a build (or an import) wrote and from what: everything needed to trust and reproduce it.

    Containers default to empty; scalars default to ``None`` (absent from the JSON). Unknown
    top-level keys are kept in ``extra`` and written back unchanged.
    """

    format: str | None = FORMAT
    tool: dict = field(default_factory=dict)
    arguments: dict = field(default_factory=dict)
    seed: int | None = None
    sources: dict = field(default_factory=dict)
    categories: list[dict] = field(default_factory=list)
    requested: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    available: dict = field(default_factory=dict)
    splits: dict[str, dict] = field(default_factory=dict)  # split -> {rows, num_shards, per_category, planned_rows}
    shortfall: dict = field(default_factory=dict)
    filtered: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    audio_missing_by_label: dict = field(default_factory=dict)
    shards: list[ShardEntry] = field(default_factory=list)
    audio_pool: list[ShardEntry] = field(default_factory=list)
    clip_seconds: float | None = None
    audio_format: str | None = None
    mask_mode: str | None = None
    audio_checks: dict = field(default_factory=dict)  # threshold, padded / moved windows (build)
    extra: dict = field(default_factory=dict)

    # -- (de)serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The record as the JSON object of ``manifest.json``."""
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in ("shards", "audio_pool"):
                value = [e.to_dict() for e in value]
            if f.name == "audio_checks" and not value:  # imports and older builds have none
                continue
            if value is not None:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> "BuildRecord":
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {k: d[k] for k in known if k in d and d[k] is not None}
        kwargs.setdefault("format", None)
        for key in ("shards", "audio_pool"):
            kwargs[key] = [ShardEntry.from_dict(e) for e in (d.get(key) or [])]
        kwargs["extra"] = {k: v for k, v in d.items() if k not in known}
        return cls(**kwargs)

    @classmethod
    def coerce(cls, record: "BuildRecord | Mapping") -> "BuildRecord":
        """``record`` as a BuildRecord (a parsed ``manifest.json`` dict is converted)."""
        return record if isinstance(record, BuildRecord) else cls.from_dict(record)

    # -- derived views ---------------------------------------------------------------------------

    def split_rows(self, split: str) -> int:
        return int((self.splits.get(split) or {}).get("rows", 0))

    def total_rows(self) -> int:
        return sum(self.split_rows(s) for s in SPLITS)

    def split_shards(self, split: str) -> list[ShardEntry]:
        """The triplet shards of ``split``, in listed order."""
        return [s for s in self.shards if s.split_name == split]

    def split_bytes(self, split: str) -> int:
        return sum(int(s.bytes or 0) for s in self.split_shards(split))

    def present_splits(self) -> list[str]:
        """Splits that have at least one shard file, in train/validation/test order."""
        with_files = {s.split_name for s in self.shards}
        return [s for s in SPLITS if s in with_files]

    def category_names(self) -> list[str]:
        """Listed categories, then any that only appear in the per-split counts."""
        names = [c["name"] for c in self.categories]
        for split in SPLITS:
            for name in (self.splits.get(split) or {}).get("per_category", {}):
                if name not in names:
                    names.append(name)
        return names

    @property
    def used_demo(self) -> bool:
        sources = self.arguments.get("sources")
        return bool(isinstance(sources, dict) and sources.get("demo"))


# ---------------------------------------------------------------------------------------------
# manifest.json on disk


def record_path(directory: str | Path) -> Path:
    return Path(directory) / RECORD_NAME


def load_record_json(source: str | Path | IO[bytes]) -> Any:
    """The parsed JSON of a ``manifest.json`` (a path, a shard directory or an open binary file),
    unchecked. Raises OSError / ValueError (UnicodeDecodeError and JSONDecodeError included)."""
    if hasattr(source, "read"):
        return json.loads(source.read())
    path = Path(source)
    if path.is_dir():
        path = path / RECORD_NAME
    return json.loads(path.read_text(encoding="utf-8"))


def read_record(directory: str | Path) -> BuildRecord:
    """``DIR/manifest.json`` as a BuildRecord; a missing or unreadable record is a VerifyError."""
    path = record_path(directory)
    try:
        data = load_record_json(path)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return BuildRecord.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise VerifyError(f"{path}: cannot read the build record ({err})") from err


def write_record(directory: str | Path, record: BuildRecord | Mapping) -> Path:
    """Write ``DIR/manifest.json`` atomically (indented, key-sorted JSON)."""
    data = record.to_dict() if isinstance(record, BuildRecord) else dict(record)
    return atomic_write_json(record_path(directory), data)
