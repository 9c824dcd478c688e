"""`avsynth import-avs-synthetic`: the release's splits and fixed evaluation audio are kept."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from avsynth.errors import AvsynthError
from avsynth.build.importer import ImportOptions, import_avs_synthetic
from avsynth.sources.avs_synthetic import read_release


@pytest.fixture(scope="module")
def imported(demo_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("imp") / "shards"
    res = import_avs_synthetic(ImportOptions(root=Path(demo_corpus.avs_synthetic_root), out=out,
                                             rows_per_shard=10), progress=False)
    return out, res


def test_splits_and_fixed_audio_are_kept(demo_corpus, imported):
    out, res = imported
    release = read_release(Path(demo_corpus.avs_synthetic_root))
    want = {f"avs-synthetic-{r.instance.annotation_id}": r for r in release.rows}
    t = pq.read_table(out / "data", columns=["id", "split", "category", "category_id",
                                             "audio_id", "audio_source", "image_source"])
    got = t.to_pylist()
    assert len(got) == len(want) == sum(v["rows"] for v in res.record.splits.values())
    for row in got:
        src = want[row["id"]]
        assert row["split"] == src.split
        assert row["category"] == src.category and row["category_id"] == src.category_id
        assert row["audio_source"] == row["image_source"] == "avs-synthetic"
        if src.audio_name is not None:  # evaluation rows keep the release's own clip
            assert row["audio_id"] == src.audio_name
    assert {r["split"] for r in got} == {"train", "validation", "test"}
    pool = pq.read_table(out / "audio_pool").to_pylist()
    train_ids = {r.category_id for r in release.rows if r.split == "train"}
    expected = sum(len(release.audio_pool.get(c, [])) for c in train_ids)
    assert len(pool) == expected > 0


def test_import_verifies_and_loads(imported):
    from avsynth.shards.verify import verify_dir

    out, _ = imported
    report = verify_dir(out)
    assert report.ok, report.problems
    rec = json.loads((out / "manifest.json").read_text())
    assert rec["arguments"]["import"] == "avs-synthetic"
    assert rec["arguments"]["columns"]["split"] == "split"


def test_import_is_deterministic(demo_corpus, imported, tmp_path):
    out, _ = imported
    again = tmp_path / "again"
    import_avs_synthetic(ImportOptions(root=Path(demo_corpus.avs_synthetic_root), out=again,
                                       rows_per_shard=10, workers=2), progress=False)
    for p in sorted((out / "data").glob("*.parquet")):
        assert (again / "data" / p.name).read_bytes() == p.read_bytes()


def test_missing_column_is_a_clear_cli_error(demo_corpus, tmp_path):
    root = tmp_path / "release"
    shutil.copytree(demo_corpus.avs_synthetic_root, root)
    ann = root / "annotations.csv"
    rows = list(csv.reader(ann.open()))
    drop = rows[0].index("class_id")
    ann.write_text("\n".join(",".join(c for i, c in enumerate(r) if i != drop) for r in rows))
    with pytest.raises(AvsynthError, match="class_id"):
        import_avs_synthetic(ImportOptions(root=root, out=tmp_path / "o"), progress=False)
    cli = subprocess.run([sys.executable, "-m", "avsynth", "import-avs-synthetic", str(root),
                          "--out", str(tmp_path / "o2"), "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2
    assert "annotations.csv" in cli.stderr and "Traceback" not in cli.stderr
