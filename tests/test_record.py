"""The build record's one owner (shards.record), shard names (shards.schema), engines (results only)."""

from __future__ import annotations

import json

import pytest

import avsynth.engines.local as local_engine
from avsynth.engines import run_all, run_tasks
from avsynth.errors import VerifyError
from avsynth.shards.record import BuildRecord, ShardEntry, read_record, write_record
from avsynth.shards.schema import FORMAT, parse_shard_name, shard_name, shard_relpath

MANIFEST = """{
  "arguments": {"manifest": "avs-synthetic-46", "seed": 3, "sources": {"demo": true}},
  "audio_format": "flac",
  "audio_missing_by_label": {},
  "audio_pool": [{"bytes": 10, "path": "audio_pool/train-00000-of-00001.parquet", "rows": 2, "sha256": "ab"}],
  "available": {"dog": {"units": 4}},
  "categories": [{"category_id": 0, "name": "dog"}],
  "clip_seconds": 3.0,
  "filtered": {},
  "format": "avsynth-shards/1",
  "mask_mode": "instance",
  "requested": {"test": 1, "train": 2, "validation": 1},
  "seed": 3,
  "shards": [
    {"bytes": 20, "index": 0, "num_shards": 1, "path": "data/train-00000-of-00001.parquet", "rows": 2, "sha256": "cd", "split": "train"}
  ],
  "shortfall": {},
  "skipped": {},
  "sources": {"vggsound": []},
  "splits": {"train": {"num_shards": 1, "per_category": {"dog": 2}, "planned_rows": 2, "rows": 2}},
  "targets": {"test": 1, "train": 2, "validation": 1},
  "tool": {"name": "avsynth", "version": "0"},
  "unknown_key": [1, 2]
}
"""


def test_build_record_round_trips_a_hand_written_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text(MANIFEST, encoding="utf-8")
    rec = read_record(tmp_path)
    assert rec.format == FORMAT and rec.seed == 3 and rec.used_demo
    assert rec.shards == [ShardEntry("data/train-00000-of-00001.parquet", 2, "cd", 20, "train", 0, 1)]
    assert rec.audio_pool[0].split is None and rec.audio_pool[0].split_name == "train"
    assert rec.present_splits() == ["train"] and rec.total_rows() == 2 and rec.split_bytes("train") == 20
    assert rec.extra == {"unknown_key": [1, 2]}
    assert rec.to_dict() == json.loads(MANIFEST)
    out = tmp_path / "copy"
    write_record(out, rec)
    assert json.loads((out / "manifest.json").read_text()) == json.loads(MANIFEST)
    assert read_record(out) == rec
    again = tmp_path / "again"
    write_record(again, read_record(out))
    assert (again / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()


def test_read_record_names_the_file(tmp_path):
    with pytest.raises(VerifyError, match="manifest.json"):
        read_record(tmp_path)
    (tmp_path / "manifest.json").write_text("[1]")
    with pytest.raises(VerifyError, match="not a JSON object"):
        read_record(tmp_path)


def test_coerce_accepts_a_dict_and_a_record():
    rec = BuildRecord.coerce(json.loads(MANIFEST))
    assert BuildRecord.coerce(rec) is rec


@pytest.mark.parametrize("split,i,n", [("train", 0, 1), ("validation", 3, 12), ("test", 99999, 100000 - 1)])
def test_shard_name_format_and_parse_round_trip(split, i, n):
    name = shard_name(split, i, n)
    assert parse_shard_name(name) == (split, i, n)
    assert shard_relpath("rows", split, i, n) == f"data/{name}"
    assert shard_relpath("pool", split, i, n) == f"audio_pool/{name}"


@pytest.mark.parametrize("name", ["train-0-of-1.parquet", "Train-00000-of-00001.parquet", "train-00000-of-00001.json"])
def test_parse_shard_name_rejects_other_names(name):
    assert parse_shard_name(name) is None


def _square(x: int) -> dict:
    return {"value": x * x, "rows_done": x}


def test_engines_report_progress_through_results_only():
    tasks = [(i,) for i in range(6)]
    seen: list[int] = []
    inline = run_all("local", _square, tasks, workers=1, on_result=lambda r: seen.append(r["rows_done"]))
    pooled = run_all("local", _square, tasks, workers=2)
    assert inline == pooled == [_square(i) for i in range(6)]
    assert sorted(seen) == list(range(6))
    assert sorted(i for i, _ in run_tasks("local", _square, tasks, workers=2)) == list(range(6))
    assert not any(hasattr(local_engine, n) for n in ("_SINK", "report_rows", "_init"))
    with pytest.raises(ValueError, match="unknown engine"):
        list(run_tasks("nope", _square, tasks, workers=1))
