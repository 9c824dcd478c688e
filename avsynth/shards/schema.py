"""The shard schemas (DESIGN §4) as pyarrow schemas carrying Hugging Face ``datasets`` features.

Image, mask and audio columns are ``struct<bytes: binary, path: string>``, the storage of
``datasets.Image()`` and ``datasets.Audio()``. The Parquet schema metadata key ``huggingface``
holds ``{"info": {"features": ...}}`` exactly as ``datasets`` writes it, so
``datasets.load_dataset(DIR)`` shows Image / Image / Audio columns. Nothing here needs
``datasets``, torchcodec or FFmpeg: the features are written as plain JSON.

The fixed-length ``bbox`` list uses the ``Sequence`` spelling, which every ``datasets`` release
from 2.x to 5.x reads (5.x turns it into ``List(..., length=4)``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

import pyarrow as pa

#: The format id of a shard directory's build record (``manifest.json``).
FORMAT = "avsynth-shards/1"
SPLITS = ("train", "validation", "test")
DATA_DIR = "data"  # the triplet shards
POOL_DIR = "audio_pool"  # the train audio pool
#: A shard file name, ``{split}-{i:05d}-of-{n:05d}.parquet`` (see :func:`shard_name`).
SHARD_NAME = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<num>\d{5})\.parquet$")
ROW_GROUP_SIZE = 100  # rows per Parquet row group in the triplet shards
POOL_ROW_GROUP_SIZE = 16  # small row groups keep random re-pairing reads cheap
HF_METADATA_KEY = b"huggingface"

MEDIA = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])

_STR = {"dtype": "string", "_type": "Value"}
_I32 = {"dtype": "int32", "_type": "Value"}
_F32 = {"dtype": "float32", "_type": "Value"}
_IMAGE = {"_type": "Image"}
_AUDIO = {"_type": "Audio"}

# (name, arrow type, datasets feature) in the DESIGN §4 column order.
_ROW_COLUMNS: list[tuple[str, pa.DataType, dict]] = [
    ("id", pa.string(), _STR),
    ("split", pa.string(), _STR),
    ("category", pa.string(), _STR),
    ("category_id", pa.int32(), _I32),
    ("image", MEDIA, _IMAGE),
    ("mask", MEDIA, _IMAGE),
    ("audio", MEDIA, _AUDIO),
    ("width", pa.int32(), _I32),
    ("height", pa.int32(), _I32),
    ("mask_area", pa.float32(), _F32),
    ("bbox", pa.list_(pa.float32(), 4), {"feature": _F32, "length": 4, "_type": "Sequence"}),
    ("image_source", pa.string(), _STR),
    ("image_id", pa.string(), _STR),
    ("annotation_id", pa.string(), _STR),
    ("audio_source", pa.string(), _STR),
    ("audio_id", pa.string(), _STR),
    ("audio_label", pa.string(), _STR),
    ("audio_offset_s", pa.float32(), _F32),
    ("audio_seconds", pa.float32(), _F32),
    ("license", pa.string(), _STR),
]

#: One sounding source of a row: its category, the clip, the window start and the mix gain.
SOURCE_STRUCT = pa.struct([
    pa.field("category", pa.string()), pa.field("category_id", pa.int32()),
    pa.field("audio_id", pa.string()), pa.field("offset", pa.float32()), pa.field("gain_db", pa.float32()),
])  # fmt: skip
_SOURCE_FEATURE = {"category": _STR, "category_id": _I32, "audio_id": _STR, "offset": _F32, "gain_db": _F32}
# Columns of multi-source / negative / semantic builds, after the single-source ones. ``sources``
# uses the plain-list spelling of a list of structs, which datasets 2.x to 5.x all read.
_EXTENDED_COLUMNS: list[tuple[str, pa.DataType, Any]] = [
    ("sources", pa.list_(SOURCE_STRUCT), [_SOURCE_FEATURE]),
    ("negative", pa.bool_(), {"dtype": "bool", "_type": "Value"}),
]
_SEMANTIC_COLUMNS: list[tuple[str, pa.DataType, Any]] = [("semantic_mask", MEDIA, _IMAGE)]
EXTENDED_COLUMNS = tuple(n for n, _, _ in _EXTENDED_COLUMNS + _SEMANTIC_COLUMNS)

_POOL_COLUMNS: list[tuple[str, pa.DataType, dict]] = [
    ("category", pa.string(), _STR),
    ("category_id", pa.int32(), _I32),
    ("audio_id", pa.string(), _STR),
    ("audio_label", pa.string(), _STR),
    ("audio", MEDIA, _AUDIO),
    ("audio_offset_s", pa.float32(), _F32),
    ("audio_seconds", pa.float32(), _F32),
]


def _features(columns: list[tuple[str, pa.DataType, Any]]) -> dict:
    return {name: json.loads(json.dumps(feature)) for name, _, feature in columns}


def _schema(columns: list[tuple[str, pa.DataType, dict]]) -> pa.Schema:
    meta = json.dumps({"info": {"features": _features(columns)}})
    fields = [pa.field(name, typ, nullable=True) for name, typ, _ in columns]
    return pa.schema(fields, metadata={HF_METADATA_KEY: meta.encode()})


def hf_features_dict(extended: bool = False, semantic: bool = False) -> dict:
    """The ``datasets`` features of a triplet row as a JSON-able dict (``Features.to_dict()`` form);
    ``extended`` / ``semantic`` as in :func:`arrow_schema`."""
    return _features(_row_columns(extended, semantic))


def arrow_schema(extended: bool = False, semantic: bool = False) -> pa.Schema:
    """The triplet-shard schema with the ``huggingface`` metadata.

    The default is the single-source layout. ``extended`` (a build with ``--sources-per-row`` > 1,
    ``--negatives`` or ``--semantic``) appends ``sources`` and ``negative``; ``semantic`` appends
    ``semantic_mask`` as well (see :data:`EXTENDED_COLUMNS`).
    """
    if not extended and not semantic:
        return ROW_SCHEMA
    return EXTENDED_SCHEMA if not semantic else SEMANTIC_SCHEMA


def row_layout(arguments: dict | None) -> tuple[bool, bool]:
    """``(extended, semantic)`` of a build from its record's ``arguments``."""
    arguments = arguments or {}
    semantic = bool(arguments.get("semantic"))
    extended = semantic or max_sources(arguments.get("sources_per_row", 1)) > 1 or float(arguments.get("negatives", 0) or 0) > 0
    return extended, semantic


def max_sources(sources_per_row) -> int:
    """The largest K of a record's ``sources_per_row``: an int, or ``"K:W,K:W"`` (a K list)."""
    if isinstance(sources_per_row, str):
        return max(int(part.split(":")[0]) for part in sources_per_row.split(","))
    return int(sources_per_row or 1)


def _row_columns(extended: bool, semantic: bool) -> list[tuple[str, pa.DataType, dict]]:
    cols = list(_ROW_COLUMNS)
    if extended or semantic:
        cols += _EXTENDED_COLUMNS
    if semantic:
        cols += _SEMANTIC_COLUMNS
    return cols


ROW_SCHEMA = _schema(_ROW_COLUMNS)
EXTENDED_SCHEMA = _schema(_row_columns(True, False))
SEMANTIC_SCHEMA = _schema(_row_columns(True, True))
POOL_SCHEMA = _schema(_POOL_COLUMNS)
ROW_COLUMNS = tuple(name for name, _, _ in _ROW_COLUMNS)
POOL_COLUMNS = tuple(name for name, _, _ in _POOL_COLUMNS)
# Scalar columns: statistics and dictionary encoding are only worth it for these.
STAT_COLUMNS = tuple(n for n, t, _ in _ROW_COLUMNS + _POOL_COLUMNS if not pa.types.is_struct(t) and not pa.types.is_list(t))


def media(data: bytes, path: str | None = None) -> dict:
    """A ``{"bytes", "path"}`` cell for an image / mask / audio column."""
    return {"bytes": data, "path": path}


def validate_row(row: dict[str, Any], schema: pa.Schema = ROW_SCHEMA) -> None:
    """Raise ValueError naming the column when ``row`` does not fit ``schema``.

    Checks: exactly the schema's columns, no nulls, media cells with non-empty ``bytes``, ints
    fit int32, floats finite, ``bbox`` of 4 numbers in [0, 1], ``split`` one of SPLITS.
    """
    names = set(schema.names)
    keys = set(row)
    if keys != names:
        missing, extra = sorted(names - keys), sorted(keys - names)
        raise ValueError(f"row columns differ from the schema: missing {missing}, unexpected {extra}")
    rid = row.get("id", row.get("audio_id"))
    for field in schema:
        value = row[field.name]
        where = f"row {rid!r} column {field.name!r}"
        if value is None:
            raise ValueError(f"{where} is null")
        t = field.type
        if pa.types.is_struct(t):
            if not isinstance(value, dict) or not isinstance(value.get("bytes"), (bytes, bytearray, memoryview)):
                raise ValueError(f"{where} must be {{'bytes': bytes, 'path': str|None}}")
            if len(value["bytes"]) == 0:
                raise ValueError(f"{where} has empty bytes")
            if set(value) - {"bytes", "path"}:
                raise ValueError(f"{where} has keys other than bytes/path: {sorted(value)}")
        elif pa.types.is_string(t):
            if not isinstance(value, str):
                raise ValueError(f"{where} must be a string, got {type(value).__name__}")
        elif pa.types.is_int32(t):
            if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
                raise ValueError(f"{where} must be an int32, got {value!r}")
        elif pa.types.is_float32(t):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{where} must be a finite number, got {value!r}")
        elif pa.types.is_boolean(t):
            if not isinstance(value, bool):
                raise ValueError(f"{where} must be a bool, got {value!r}")
        elif pa.types.is_list(t) and field.name == "sources":
            if not isinstance(value, list) or not all(
                isinstance(v, dict) and set(v) == set(SOURCE_STRUCT.names) for v in value
            ):
                raise ValueError(f"{where} must be a list of {{{', '.join(SOURCE_STRUCT.names)}}}")
        elif pa.types.is_fixed_size_list(t):
            vals = list(value)
            if len(vals) != t.list_size or not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 + 1e-6 for v in vals):
                raise ValueError(f"{where} must be {t.list_size} numbers in [0, 1], got {value!r}")
    if "split" in names and row["split"] not in SPLITS:
        raise ValueError(f"row {rid!r} split {row['split']!r} is not one of {SPLITS}")
    if "width" in names and (row["width"] < 1 or row["height"] < 1):
        raise ValueError(f"row {rid!r} has a bad size {row['width']}x{row['height']}")


def schema_features(schema: pa.Schema) -> dict | None:
    """The ``datasets`` features stored in a Parquet/Arrow schema's metadata, or None."""
    raw = (schema.metadata or {}).get(HF_METADATA_KEY)
    if raw is None:
        return None
    try:
        return json.loads(raw)["info"]["features"]
    except (ValueError, KeyError, TypeError):
        return None


# ---------------------------------------------------------------------------------------------
# Shard file names


def shard_name(split: str, index: int, num_shards: int) -> str:
    """``{split}-{index:05d}-of-{num_shards:05d}.parquet``; :func:`parse_shard_name` inverts it."""
    return f"{split}-{index:05d}-of-{num_shards:05d}.parquet"


def shard_relpath(kind: Literal["rows", "pool"], split: str, index: int, num_shards: int) -> str:
    """A shard's path in a shard directory: ``data/...`` (triplets) or ``audio_pool/...``."""
    folder = DATA_DIR if kind == "rows" else POOL_DIR
    return f"{folder}/{shard_name(split, index, num_shards)}"


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    """``(split, index, num_shards)`` of a shard file name, or None if it does not follow the format."""
    m = SHARD_NAME.match(name)
    if m is None:
        return None
    return m["split"], int(m["index"]), int(m["num"])
