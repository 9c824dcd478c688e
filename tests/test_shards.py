"""Shard schema, atomic deterministic writer, `datasets` compatibility and verification."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from avsynth.errors import BuildError
from avsynth.media.audio import encode_audio
from avsynth.media.image import encode_jpeg
from avsynth.media.mask import encode_png, mask_stats
from avsynth.shards.schema import POOL_SCHEMA, ROW_SCHEMA, arrow_schema, hf_features_dict, validate_row
from avsynth.shards.verify import verify_dir
from avsynth.io import sha256_file
from avsynth.shards.writer import write_shard

CATEGORIES = [("dog", 0), ("cat", 1), ("bird", 2)]
SR = 16000
SECONDS = 0.25


def _image(seed: int, w: int = 24, h: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_jpeg(Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB"))


def _mask(seed: int, w: int = 24, h: int = 16) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    x, y = seed % (w - 4), seed % (h - 4)
    m[y : y + 4, x : x + 4] = True
    return m


def _audio(seed: int, fmt: str = "flac") -> bytes:
    t = np.arange(int(SECONDS * SR)) / SR
    return encode_audio(0.3 * np.sin(2 * np.pi * (200 + 10 * seed) * t), SR, fmt)


def make_row(i: int, split: str, category: tuple[str, int] | None = None) -> dict:
    """A small, valid triplet row; everything derived from ``i`` (row ``i`` has image ``img{i}``)."""
    cat, cid = category or CATEGORIES[i % len(CATEGORIES)]
    m = _mask(i)
    area, bbox = mask_stats(m)
    return {
        "id": f"{split}-{i:06d}",
        "split": split,
        "category": cat,
        "category_id": cid,
        "image": {"bytes": _image(i), "path": f"img{i}.jpg"},
        "mask": {"bytes": encode_png(m), "path": f"{split}-{i:06d}.png"},
        "audio": {"bytes": _audio(i), "path": f"{split}clip{i}.flac"},
        "width": 24,
        "height": 16,
        "mask_area": area,
        "bbox": list(bbox),
        "image_source": "lvis",
        "image_id": f"img{i}",
        "annotation_id": str(1000 + i),
        "audio_source": "vggsound",
        "audio_id": f"{split}clip{i}",
        "audio_label": f"{cat} sound",
        "audio_offset_s": 1.5,
        "audio_seconds": SECONDS,
        "license": "CC BY 4.0",
    }


def make_pool_row(k: int, category: tuple[str, int]) -> dict:
    cat, cid = category
    return {
        "category": cat,
        "category_id": cid,
        "audio_id": f"pool-{cat}-{k}",
        "audio_label": f"{cat} sound",
        "audio": {"bytes": _audio(100 + k), "path": f"pool-{cat}-{k}.flac"},
        "audio_offset_s": 0.5,
        "audio_seconds": SECONDS,
    }


def make_shard_dir(
    root: Path,
    splits: dict[str, tuple[int, int]] | None = None,
    pool_per_category: int = 5,
    row_group_size: int = 4,
) -> Path:
    """Write a complete small shard directory (data/, audio_pool/, manifest.json) with the writer.

    ``splits`` maps split -> (rows, shards). Row ids are globally unique: rows are numbered
    across splits so no image or clip is shared between splits.
    """
    splits = splits or {"train": (10, 2), "validation": (4, 1)}
    root.mkdir(parents=True, exist_ok=True)
    shards, split_info, i = [], {}, 0
    for split, (n_rows, n_shards) in splits.items():
        per = -(-n_rows // n_shards)
        ids = list(range(i, i + n_rows))
        i += n_rows
        counts: dict[str, int] = {}
        for k in range(n_shards):
            chunk = ids[k * per : (k + 1) * per]
            rows = [make_row(j, split) for j in chunk]
            for r in rows:
                counts[r["category"]] = counts.get(r["category"], 0) + 1
            rel = f"data/{split}-{k:05d}-of-{n_shards:05d}.parquet"
            rec = write_shard(rows, root / rel, schema=ROW_SCHEMA, row_group_size=row_group_size)
            shards.append({"split": split, "index": k, "num_shards": n_shards, **rec.as_dict(root)})
        split_info[split] = {"rows": n_rows, "num_shards": n_shards, "per_category": counts}
    pool = []
    if pool_per_category:
        rows = [make_pool_row(k, c) for c in CATEGORIES for k in range(pool_per_category)]
        half = len(rows) // 2
        for k, part in enumerate((rows[:half], rows[half:])):
            rec = write_shard(part, root / f"audio_pool/train-{k:05d}-of-00002.parquet", schema=POOL_SCHEMA, row_group_size=3)
            pool.append(rec.as_dict(root))
    record = {
        "format": "avsynth-shards/1",
        "tool": {"name": "avsynth", "version": "test"},
        "arguments": {},
        "seed": 0,
        "sources": {},
        "categories": [{"name": n, "category_id": c} for n, c in CATEGORIES],
        "splits": split_info,
        "shortfall": {},
        "skipped": {},
        "shards": shards,
        "audio_pool": pool,
        "clip_seconds": SECONDS,
        "audio_format": "flac",
        "mask_mode": "instance",
    }
    (root / "manifest.json").write_text(json.dumps(record, indent=2))
    return root


@pytest.fixture()
def shard_dir(tmp_path) -> Path:
    return make_shard_dir(tmp_path / "ds")


# --------------------------------------------------------------------------------------- schema


def test_schema_matches_design_and_datasets_features():
    import datasets
    assert ROW_SCHEMA.names == [
        "id", "split", "category", "category_id", "image", "mask", "audio", "width", "height",
        "mask_area", "bbox", "image_source", "image_id", "annotation_id", "audio_source", "audio_id",
        "audio_label", "audio_offset_s", "audio_seconds", "license",
    ]
    features = datasets.Features.from_dict(hf_features_dict())
    assert features.arrow_schema.remove_metadata().equals(arrow_schema().remove_metadata())
    assert isinstance(features["image"], datasets.Image) and isinstance(features["mask"], datasets.Image)
    assert isinstance(features["audio"], datasets.Audio)
    meta = json.loads(ROW_SCHEMA.metadata[b"huggingface"])
    assert meta == {"info": {"features": hf_features_dict()}}
    pool = datasets.Features.from_dict(json.loads(POOL_SCHEMA.metadata[b"huggingface"])["info"]["features"])
    assert pool.arrow_schema.remove_metadata().equals(POOL_SCHEMA.remove_metadata())


def test_validate_row_names_the_problem():
    row = make_row(0, "train")
    validate_row(row)
    with pytest.raises(ValueError, match="bbox"):
        validate_row({**row, "bbox": [0.1, 0.2, 0.3]})
    with pytest.raises(ValueError, match="missing"):
        validate_row({k: v for k, v in row.items() if k != "license"})
    with pytest.raises(ValueError, match="split"):
        validate_row({**row, "split": "val"})
    with pytest.raises(ValueError, match="image"):
        validate_row({**row, "image": {"bytes": b"", "path": None}})
    with pytest.raises(ValueError, match="category_id"):
        validate_row({**row, "category_id": 2**40})
    validate_row(make_pool_row(0, ("dog", 0)), POOL_SCHEMA)


# --------------------------------------------------------------------------------------- writer


_WRITE_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.test_shards import make_row
from avsynth.shards.schema import ROW_SCHEMA
from avsynth.shards.writer import write_shard
rec = write_shard((make_row(i, "train") for i in range(7)), Path(sys.argv[1]), schema=ROW_SCHEMA, row_group_size=3)
print(rec.sha256)
"""


def test_writer_is_byte_identical_across_processes(tmp_path):
    repo = str(Path(__file__).resolve().parent.parent)
    script = _WRITE_SCRIPT.format(repo=repo)
    digests = []
    for name in ("a.parquet", "b.parquet"):
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / name)], capture_output=True, text=True, check=True
        )
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1]
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    rec = write_shard((make_row(i, "train") for i in range(7)), tmp_path / "c.parquet", schema=ROW_SCHEMA, row_group_size=3)
    assert rec.sha256 == digests[0] == sha256_file(tmp_path / "c.parquet")
    pf = pq.ParquetFile(tmp_path / "c.parquet")
    assert rec.rows == 7 and pf.metadata.num_rows == 7 and pf.metadata.num_row_groups == 3
    assert rec.bytes == (tmp_path / "c.parquet").stat().st_size


def test_failing_row_source_leaves_nothing(tmp_path):
    def rows():
        for i in range(5):
            yield make_row(i, "train")
        raise OSError(28, "No space left on device")

    target = tmp_path / "data" / "train-00000-of-00001.parquet"
    with pytest.raises(OSError, match="No space"):
        write_shard(rows(), target, schema=ROW_SCHEMA, row_group_size=2)
    assert list(target.parent.iterdir()) == []


def test_bad_row_leaves_nothing(tmp_path):
    rows = [make_row(0, "train"), {**make_row(1, "train"), "width": "wide"}]
    with pytest.raises(ValueError, match="width"):
        write_shard(rows, tmp_path / "x.parquet", schema=ROW_SCHEMA)
    assert list(tmp_path.iterdir()) == []
    # without validation the arrow conversion itself fails, and still nothing is left behind
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        write_shard(rows, tmp_path / "x.parquet", schema=ROW_SCHEMA, validate=False)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite(tmp_path):
    target = tmp_path / "x.parquet"
    write_shard([make_row(0, "train")], target, schema=ROW_SCHEMA)
    before = target.read_bytes()
    with pytest.raises(BuildError, match="already exists"):
        write_shard([make_row(1, "train")], target, schema=ROW_SCHEMA)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_pool_shard_default_row_groups(tmp_path):
    rows = [make_pool_row(k, ("dog", 0)) for k in range(20)]
    rec = write_shard(rows, tmp_path / "train-00000-of-00001.parquet", schema=POOL_SCHEMA)
    assert rec.rows == 20 and pq.ParquetFile(rec.path).metadata.num_row_groups == 2


# ------------------------------------------------------------------------------------- datasets


def test_load_dataset_shows_image_audio_image(shard_dir):
    import datasets
    ds = datasets.load_dataset("parquet", data_files={
        "train": str(shard_dir / "data" / "train-*.parquet"),
        "validation": str(shard_dir / "data" / "validation-*.parquet"),
    })
    assert ds["train"].num_rows == 10 and ds["validation"].num_rows == 4
    f = ds["train"].features
    assert isinstance(f["image"], datasets.Image) and isinstance(f["mask"], datasets.Image)
    assert isinstance(f["audio"], datasets.Audio)
    row = ds["train"].cast_column("audio", datasets.Audio(decode=False))[3]
    assert row["image"].size == (24, 16)
    assert row["mask"].size == (24, 16) and np.asarray(row["mask"]).any()
    assert row["audio"]["bytes"][:4] == b"fLaC"
    assert row["bbox"] == pytest.approx(make_row(3, "train")["bbox"])


def test_load_dataset_on_directory_without_card(tmp_path):
    import datasets
    root = make_shard_dir(tmp_path / "ds")  # audio_pool/ beside data/ must not be picked up
    ds = datasets.load_dataset(str(root))
    assert set(ds) == {"train", "validation"}
    assert ds["validation"].num_rows == 4
    assert isinstance(ds["train"].features["audio"], datasets.Audio)
    assert isinstance(ds["train"].features["mask"], datasets.Image)


# --------------------------------------------------------------------------------------- verify


def test_verify_ok(shard_dir):
    report = verify_dir(shard_dir)
    assert report.ok, report.summary()
    assert report.counts["rows"] == 14 and report.counts["decoded_rows"] == 14
    assert report.counts["pool_rows"] == 15 and report.counts["decoded_pool_rows"] == 15
    sampled = verify_dir(shard_dir, sample=5, seed=3)
    assert sampled.ok and sampled.counts["decoded_rows"] == 5


def _messages(report) -> str:
    return "\n".join(str(p) for p in report.problems)


def test_verify_catches_flipped_byte(shard_dir):
    path = shard_dir / "data" / "train-00001-of-00002.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_dir(shard_dir)
    assert not report.ok
    assert "train-00001-of-00002.parquet: sha256" in _messages(report)


def test_verify_catches_truncated_shard(shard_dir):
    path = shard_dir / "data" / "validation-00000-of-00001.parquet"
    path.write_bytes(path.read_bytes()[:-100])
    report = verify_dir(shard_dir)
    assert "truncated" in _messages(report)


def test_verify_catches_missing_and_extra_shards(shard_dir):
    (shard_dir / "data" / "train-00000-of-00002.parquet").unlink()
    extra = shard_dir / "data" / "test-00000-of-00001.parquet"
    write_shard([make_row(99, "test")], extra, schema=ROW_SCHEMA)
    (shard_dir / "data" / ".tmp-train-00000-of-00002.parquet.1.abc").write_bytes(b"partial")
    text = _messages(verify_dir(shard_dir))
    assert "train-00000-of-00002.parquet: listed in manifest.json but missing" in text
    assert "test-00000-of-00001.parquet: Parquet file not listed" in text
    assert "leftover temporary file" in text


def test_verify_catches_content_problems(tmp_path):
    root = make_shard_dir(tmp_path / "ds", splits={"train": (3, 1), "validation": (2, 1)}, pool_per_category=0)
    # rewrite validation with a wrong split value, a wrong mask size and an image shared with train
    bad = [make_row(3, "validation"), make_row(0, "validation")]
    bad[0]["split"] = "test"
    bad[1]["mask"] = {"bytes": encode_png(np.ones((5, 5), bool)), "path": None}
    bad[1]["id"] = "validation-x"
    path = root / "data" / "validation-00000-of-00001.parquet"
    path.unlink()
    rec = write_shard(bad, path, schema=ROW_SCHEMA)
    record = json.loads((root / "manifest.json").read_text())
    for entry in record["shards"]:
        if entry["path"] == "data/validation-00000-of-00001.parquet":
            entry.update(sha256=rec.sha256, bytes=rec.bytes)
    (root / "manifest.json").write_text(json.dumps(record))
    text = _messages(verify_dir(root))
    assert "split other than 'validation'" in text
    assert "mask is 5x5, image is 24x16" in text
    assert "image lvis:img0 is in both 'train' and 'validation'" in text
    assert "split 'validation' per-category counts differ from the rows for ['cat', 'dog']" in text


def test_verify_missing_manifest_and_bad_json(tmp_path):
    root = make_shard_dir(tmp_path / "ds", splits={"train": (2, 1)}, pool_per_category=0)
    (root / "manifest.json").write_text("{not json")
    assert "not valid JSON" in _messages(verify_dir(root))
    (root / "manifest.json").unlink()
    text = _messages(verify_dir(root))
    assert "manifest.json: missing" in text and "not listed" in text


def test_verify_cli_exit_codes(shard_dir):
    from avsynth.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["verify", str(shard_dir), "--sample", "3"])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    (shard_dir / "audio_pool" / "train-00001-of-00002.parquet").unlink()
    bad = runner.invoke(app, ["verify", str(shard_dir)])
    assert bad.exit_code == 1
    assert "audio_pool/train-00001-of-00002.parquet: listed in manifest.json but missing" in bad.output
    missing = runner.invoke(app, ["verify", str(shard_dir / "nope")])
    assert missing.exit_code == 2 and "not a directory" in missing.output
