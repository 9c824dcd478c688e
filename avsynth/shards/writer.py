"""Atomic, checksummed, byte-reproducible Parquet shard writing.

A shard is written to a hidden temporary file in the destination folder, flushed and fsynced,
then moved into place in one step that refuses to replace an existing file. If anything fails
(a bad row, a failing row source, a full disk) the temporary file is removed and the error
propagates; the final path is either absent or a complete shard.

Every writer option is pinned (format version, per-column compression and level, statistics,
dictionary columns, no page index, data page v1), and nothing time-dependent is written, so the same rows give
the same bytes in any process (for a given pyarrow version, which Parquet stores as
``created_by``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from avsynth.errors import BuildError
from avsynth.io import fsync_dir, sha256_file, temp_name
from avsynth.shards.schema import POOL_ROW_GROUP_SIZE, POOL_SCHEMA, ROW_GROUP_SIZE, STAT_COLUMNS, validate_row



@dataclass(frozen=True)
class ShardRecord:
    """A finished shard: where it is, how many rows, its sha256 and size in bytes."""

    path: Path
    rows: int
    sha256: str
    bytes: int

    def as_dict(self, root: Path | None = None) -> dict:
        """Manifest entry ``{"path", "rows", "sha256", "bytes"}``; path relative to ``root``, posix."""
        p = self.path.relative_to(root) if root is not None else self.path
        return {"path": p.as_posix(), "rows": self.rows, "sha256": self.sha256, "bytes": self.bytes}


def writer_options(schema: pa.Schema) -> dict:
    """The pinned ``pq.ParquetWriter`` options used for every shard."""
    scalars = [name for name in schema.names if name in STAT_COLUMNS]
    codecs = column_compression(schema)
    return {
        "version": "2.6",
        "compression": codecs,
        "compression_level": {col: 3 for col, codec in codecs.items() if codec == "ZSTD"},
        "use_dictionary": scalars,
        "write_statistics": scalars,
        "write_page_index": False,
        "data_page_version": "1.0",
        "store_schema": True,
        "use_compliant_nested_type": True,
        "write_batch_size": 64,
    }


def column_compression(schema: pa.Schema) -> dict[str, str]:
    """Codec per Parquet leaf column: media bytes (JPEG/PNG/FLAC, already compressed) are stored
    uncompressed, which halves read time at the same size; everything else uses zstd."""
    codecs: dict[str, str] = {}
    for field in schema:
        if pa.types.is_struct(field.type):
            for child in field.type:
                media_bytes = pa.types.is_binary(child.type) or pa.types.is_large_binary(child.type)
                codecs[f"{field.name}.{child.name}"] = "NONE" if media_bytes else "ZSTD"
        elif pa.types.is_list(field.type) or pa.types.is_fixed_size_list(field.type):
            codecs[f"{field.name}.list.element"] = "ZSTD"
        else:
            codecs[field.name] = "ZSTD"
    return codecs


def write_shard(
    rows: Iterable[dict],
    path: Path,
    *,
    schema: pa.Schema,
    row_group_size: int | None = None,
    validate: bool = True,
) -> ShardRecord:
    """Write ``rows`` (dicts matching ``schema``) to the Parquet file ``path`` atomically.

    Rows are streamed: at most ``row_group_size`` rows are held in memory (default: 100 for
    triplet shards, 16 for audio-pool shards, whose rows are read at random). With ``validate``
    each row is checked by :func:`validate_row` first (a bad row raises ValueError naming it).
    Raises BuildError if ``path`` already exists (a finished shard is never rewritten).
    """
    path = Path(path)
    if row_group_size is None:
        row_group_size = POOL_ROW_GROUP_SIZE if schema.equals(POOL_SCHEMA) else ROW_GROUP_SIZE
    if row_group_size < 1:
        raise ValueError("row_group_size must be >= 1")
    if path.exists():
        raise BuildError(f"{path}: shard already exists; refusing to overwrite a finished shard")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    n = 0
    try:
        with open(tmp, "xb") as sink:
            with pq.ParquetWriter(sink, schema, **writer_options(schema)) as writer:
                batch: list[dict] = []
                for row in rows:
                    if validate:
                        validate_row(row, schema)
                    batch.append(row)
                    if len(batch) == row_group_size:
                        _write_group(writer, batch, schema)
                        n += len(batch)
                        batch = []
                if batch or n == 0:
                    _write_group(writer, batch, schema)
                    n += len(batch)
            sink.flush()
            os.fsync(sink.fileno())
        _publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return ShardRecord(path=path, rows=n, sha256=sha256_file(path), bytes=path.stat().st_size)


def _write_group(writer: pq.ParquetWriter, batch: list[dict], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist(batch, schema=schema)
    writer.write_table(table, row_group_size=max(1, len(batch)))


def _publish(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` without ever replacing an existing ``path``."""
    try:
        os.link(tmp, path)  # atomic and fails if path exists
    except FileExistsError as err:
        raise BuildError(f"{path}: shard already exists; refusing to overwrite a finished shard") from err
    except OSError:
        # File systems without hard links: check, then rename (not race-free, but no worse).
        if path.exists():
            raise BuildError(f"{path}: shard already exists; refusing to overwrite a finished shard") from None
        os.replace(tmp, path)
        return
    tmp.unlink()
