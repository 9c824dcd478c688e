"""Focused tests of shards/{record,writer} written against their mutation survivors (issue 17,
`scripts/mutation.sh shards/...`). Expected values come from hand-written records and from the
Parquet metadata of files written here (read back with pyarrow), not from the code under test."""

from __future__ import annotations

import io
import json
import os

import pyarrow.parquet as pq
import pytest

from avsynth.errors import BuildError, VerifyError
from avsynth.shards.record import BuildRecord, ShardEntry, load_record_json, read_record, record_path, write_record
from avsynth.shards.schema import POOL_SCHEMA, ROW_SCHEMA, STAT_COLUMNS
from avsynth.shards.writer import ShardRecord, write_shard
from tests.test_shards import make_pool_row, make_row

# --------------------------------------------------------------------------------------- record


def test_shard_entry_split_name_and_dict_forms():
    pool = ShardEntry("audio_pool/train-00001-of-00002.parquet", 3, "ab", 10)
    assert pool.split_name == "train"
    assert pool.to_dict() == {"path": "audio_pool/train-00001-of-00002.parquet", "rows": 3, "sha256": "ab", "bytes": 10}
    assert ShardEntry("data/validation-00000-of-00004.parquet").split_name == "validation"
    assert ShardEntry("data/x-00000-of-00001.parquet", split="test").split_name == "test"
    # any one of split / index / num_shards set -> all three are written
    for kw in ({"split": "test"}, {"index": 0}, {"num_shards": 2}):
        d = ShardEntry("data/test-00000-of-00002.parquet", **kw).to_dict()
        assert set(d) == {"split", "index", "num_shards", "path", "rows", "sha256", "bytes"}
    assert ShardEntry.from_dict({"path": "p"}) == ShardEntry("p", 0, "", 0, None, None, None)
    full = {"path": "p", "rows": 2, "sha256": "s", "bytes": 5, "split": "train", "index": 1, "num_shards": 3}
    assert ShardEntry.from_dict(full).to_dict() == full


def test_record_dict_leaves_out_none_scalars_and_empty_audio_checks():
    rec = BuildRecord()
    d = rec.to_dict()
    assert d["format"] == "avsynth-shards/1"
    for absent in ("seed", "clip_seconds", "audio_format", "mask_mode", "audio_checks", "extra"):
        assert absent not in d
    assert d["shards"] == [] and d["audio_pool"] == [] and d["splits"] == {}
    checks = BuildRecord(audio_checks={"threshold_dbfs": -60.0}, seed=0, extra={"note": 1}).to_dict()
    assert checks["audio_checks"] == {"threshold_dbfs": -60.0} and checks["seed"] == 0 and checks["note"] == 1
    # null values in the JSON are read as the defaults; a record with no "format" has format None
    back = BuildRecord.from_dict({"seed": None, "splits": None, "shards": None, "x": 2})
    assert back.seed is None and back.splits == {} and back.shards == [] and back.format is None
    assert back.extra == {"x": 2}
    assert BuildRecord.from_dict({"format": "avsynth-shards/1"}).format == "avsynth-shards/1"
    # a top-level key named "extra" is an unknown key like any other: kept and written back
    odd = BuildRecord.from_dict({"extra": {"a": 1}, "seed": 2})
    assert odd.extra == {"extra": {"a": 1}} and odd.to_dict()["extra"] == {"a": 1}
    coerced = BuildRecord.coerce({"seed": 4, "shards": [{"path": "data/x.parquet"}]})
    assert isinstance(coerced, BuildRecord) and coerced.seed == 4 and coerced.shards[0].path == "data/x.parquet"


def test_record_views():
    rec = BuildRecord(
        categories=[{"name": "dog", "category_id": 0}],
        splits={"train": {"rows": 7, "per_category": {"dog": 5, "cat": 2}},
                "validation": None, "test": {"rows": 3, "per_category": {"bird": 3, "dog": 0}}},
        shards=[ShardEntry("data/test-00000-of-00001.parquet", 3, bytes=40),
                ShardEntry("data/train-00001-of-00002.parquet", 3, bytes=None),
                ShardEntry("data/train-00000-of-00002.parquet", 4, bytes=25)],
    )
    assert rec.split_rows("train") == 7 and rec.split_rows("validation") == 0 and rec.split_rows("nope") == 0
    assert rec.total_rows() == 10
    assert [s.path for s in rec.split_shards("train")] == ["data/train-00001-of-00002.parquet",
                                                         "data/train-00000-of-00002.parquet"]
    assert rec.split_bytes("train") == 25 and rec.split_bytes("test") == 40 and rec.split_bytes("validation") == 0
    assert rec.present_splits() == ["train", "test"]  # split order, not listing order
    assert rec.category_names() == ["dog", "cat", "bird"]
    assert BuildRecord(arguments={"sources": {"demo": True}}).used_demo is True
    for args in ({}, {"sources": {"demo": False}}, {"sources": ["demo"]}, {"sources": "demo"}):
        assert BuildRecord(arguments=args).used_demo is False


def test_record_files_read_and_written_in_every_form(tmp_path):
    assert record_path(tmp_path) == tmp_path / "manifest.json"
    path = write_record(tmp_path, {"seed": 3, "format": "f", "a": {"z": 1, "b": 2}})
    assert path == tmp_path / "manifest.json"
    assert path.read_text() == json.dumps({"a": {"b": 2, "z": 1}, "format": "f", "seed": 3}, indent=2) + "\n"
    assert load_record_json(tmp_path) == load_record_json(path) == {"a": {"b": 2, "z": 1}, "format": "f", "seed": 3}
    assert load_record_json(io.BytesIO(b'{"k": 1}')) == {"k": 1}
    rec = read_record(tmp_path)
    assert rec.seed == 3 and rec.format == "f" and rec.extra == {"a": {"b": 2, "z": 1}}
    copy = write_record(tmp_path / "copy", rec)  # a BuildRecord is written as its to_dict()
    assert copy.read_text() == json.dumps(rec.to_dict(), indent=2, sort_keys=True) + "\n"
    assert json.loads(copy.read_text())["a"] == {"b": 2, "z": 1} and read_record(tmp_path / "copy") == rec
    # unreadable records: one VerifyError naming the file
    for text, why in [("{", "Expecting"), ('{"shards": [{"rows": 1}]}', "'path'"),
                      ('{"shards": 5}', "not iterable"), ("[]", "not a JSON object")]:
        path.write_text(text)
        with pytest.raises(VerifyError) as err:
            read_record(tmp_path)
        assert str(err.value).startswith(f"{path}: cannot read the build record (") and why in str(err.value)
    path.write_text("[]")
    with pytest.raises(VerifyError) as err:
        read_record(tmp_path)
    assert str(err.value) == f"{path}: cannot read the build record (not a JSON object)"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(VerifyError, match="cannot read the build record"):
        read_record(tmp_path)


# --------------------------------------------------------------------------------------- writer


def test_shard_record_dict_is_relative_and_posix(tmp_path):
    rec = ShardRecord(tmp_path / "data" / "train-00000-of-00001.parquet", 2, "ab", 9)
    assert rec.as_dict(tmp_path) == {"path": "data/train-00000-of-00001.parquet", "rows": 2, "sha256": "ab", "bytes": 9}
    assert rec.as_dict()["path"] == (tmp_path / "data" / "train-00000-of-00001.parquet").as_posix()


def test_written_parquet_pins_codecs_statistics_dictionaries_and_version(tmp_path):
    rec = write_shard([make_row(i, "train") for i in range(5)], tmp_path / "a" / "b" / "s.parquet",
                      schema=ROW_SCHEMA, row_group_size=2)
    assert os.listdir(tmp_path / "a" / "b") == ["s.parquet"]  # folders made, no temp file left
    pf = pq.ParquetFile(rec.path)
    meta = pf.metadata
    assert meta.format_version == "2.6" and meta.num_row_groups == 3
    assert [meta.row_group(i).num_rows for i in range(3)] == [2, 2, 1]
    assert b"ARROW:schema" in meta.metadata and b"huggingface" in meta.metadata
    rg = meta.row_group(0)
    cols = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
    assert "bbox.list.element" in cols  # Parquet-compliant list naming
    media = {"image.bytes", "mask.bytes", "audio.bytes"}
    for name, col in cols.items():
        assert col.compression == ("UNCOMPRESSED" if name in media else "ZSTD"), name
        assert not col.has_column_index and not col.has_offset_index, name
        scalar = name in STAT_COLUMNS
        assert col.is_stats_set == scalar, name
        assert ("RLE_DICTIONARY" in col.encodings or "PLAIN_DICTIONARY" in col.encodings) == scalar, name
    assert set(STAT_COLUMNS) & set(cols) >= {"id", "split", "category", "width", "audio_offset_s"}


def test_empty_shard_is_a_valid_file_with_the_schema(tmp_path):
    rec = write_shard([], tmp_path / "e.parquet", schema=ROW_SCHEMA)
    assert rec.rows == 0
    pf = pq.ParquetFile(rec.path)
    assert pf.metadata.num_rows == 0 and pf.schema_arrow.names == ROW_SCHEMA.names
    assert pq.read_table(rec.path).num_rows == 0


def test_row_group_size_defaults_and_bounds(tmp_path):
    rec = write_shard([make_pool_row(k, ("dog", 0)) for k in range(33)], tmp_path / "p.parquet", schema=POOL_SCHEMA)
    meta = pq.ParquetFile(rec.path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [16, 16, 1]
    one = write_shard([make_row(i, "test") for i in range(3)], tmp_path / "one.parquet", schema=ROW_SCHEMA,
                      row_group_size=1)
    assert pq.ParquetFile(one.path).metadata.num_row_groups == 3
    single = write_shard([make_row(0, "test")], tmp_path / "single.parquet", schema=ROW_SCHEMA, row_group_size=1)
    assert pq.ParquetFile(single.path).metadata.num_row_groups == 1  # no empty trailing group
    with pytest.raises(ValueError) as err:
        write_shard([make_row(0, "test")], tmp_path / "z.parquet", schema=ROW_SCHEMA, row_group_size=0)
    assert str(err.value) == "row_group_size must be >= 1"
    assert not (tmp_path / "z.parquet").exists()


def test_a_shard_that_appears_while_writing_is_not_replaced(tmp_path):
    target = tmp_path / "s.parquet"

    def rows():  # another writer finishes the same shard while this one streams its rows
        yield make_row(0, "train")
        target.write_bytes(b"the other writer's shard")
        yield make_row(1, "train")

    with pytest.raises(BuildError, match=r"s\.parquet: shard already exists; refusing to overwrite"):
        write_shard(rows(), target, schema=ROW_SCHEMA)
    assert target.read_bytes() == b"the other writer's shard"
    assert os.listdir(tmp_path) == ["s.parquet"]


def test_without_hard_links_the_shard_is_renamed_into_place(tmp_path, monkeypatch):
    # a file system without hard links (os.link -> EPERM) cannot be reached here: simulated
    def no_link(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    rec = write_shard([make_row(0, "train")], tmp_path / "s.parquet", schema=ROW_SCHEMA)
    assert os.listdir(tmp_path) == ["s.parquet"] and pq.read_table(rec.path).num_rows == 1
    target = tmp_path / "t.parquet"

    def rows():
        yield make_row(0, "train")
        target.write_bytes(b"other")

    with pytest.raises(BuildError, match="already exists"):
        write_shard(rows(), target, schema=ROW_SCHEMA)
    assert target.read_bytes() == b"other" and sorted(os.listdir(tmp_path)) == ["s.parquet", "t.parquet"]


def _synthetic_row(i: int) -> dict:
    """A row whose media are plain bytes (the writer never decodes them): only pyarrow shapes the file."""
    return {"id": f"train-{i:06d}", "split": "train", "category": ("dog", "cat")[i % 2], "category_id": i % 2,
            "image": {"bytes": b"jpeg%d" % i, "path": f"img{i}.jpg"}, "mask": {"bytes": b"png%d" % i, "path": None},
            "audio": {"bytes": b"flac%d" % (i * 7), "path": f"clip{i}.flac"}, "width": 24 + i % 5, "height": 16,
            "mask_area": i / 1000, "bbox": [0.0, 0.1, 0.2, 0.3], "image_source": "lvis", "image_id": str(i),
            "annotation_id": str(1000 + i), "audio_source": "vggsound", "audio_id": f"clip{i}",
            "audio_label": "dog barking", "audio_offset_s": 1.5, "audio_seconds": 3.0, "license": "CC BY 4.0"}


# sha256 of the 130-row shard below, recorded with pyarrow 26.0.1 (the version Parquet stores as
# created_by). Like BEFORE in tests/test_mixing.py, it pins every writer option (codecs, zstd
# level 3, dictionaries, statistics, page version): a pyarrow upgrade that changes
# the bytes must re-record it, any other change is a change of the shards' bytes.
PINNED_130_ROWS = "02b78487a8d42d06a2762c21603cf3b6a4eb49995e749c583f993728b26ae8d8"


def test_writer_bytes_are_pinned(tmp_path):
    import pyarrow

    rec = write_shard((_synthetic_row(i) for i in range(130)), tmp_path / "s.parquet", schema=ROW_SCHEMA,
                      validate=False)
    meta = pq.ParquetFile(rec.path).metadata
    assert meta.created_by.startswith(f"parquet-cpp-arrow version {pyarrow.__version__}")
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [100, 30]
    assert rec.sha256 == PINNED_130_ROWS
