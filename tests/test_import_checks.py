"""import-avs-synthetic checks the release before writing (issue 12, case 3): class ids and
names agree one to one (a one-line error naming the rows), and the split leakage that `verify`
rejects is repaired with counted skips (the tiny demo release has an audio clip in two splits)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avsynth.build.import_checks import (SKIP_AUDIO_TWO_SPLITS, SKIP_POOL_EVAL_CLIP,
                                         check_class_ids)
from avsynth.build.importer import ImportOptions, import_avs_synthetic
from avsynth.errors import BuildError
from avsynth.shards.verify import verify_dir


def _rewrite(path: Path, edit) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    edit(rows)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return rows


@pytest.fixture
def release(demo_corpus, tmp_path) -> Path:
    root = tmp_path / "release"
    shutil.copytree(demo_corpus.avs_synthetic_root, root)
    return root


def test_class_id_contradicting_its_name_is_refused(release, tmp_path):
    ann = release / "annotations.csv"
    with open(ann, newline="") as f:
        rows = list(csv.DictReader(f))
    other, victim = rows[0], next(r for r in rows if r["class_name"] != rows[0]["class_name"])

    def wrong_id(rs):  # the victim keeps its name but takes the first row's class id
        for r in rs:
            if r["inst_id"] == victim["inst_id"]:
                r["class_id"] = other["class_id"]

    _rewrite(ann, wrong_id)
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "avsynth", "import-avs-synthetic", str(release),
                          "--out", str(out), "-q", "--workers", "1"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"instance {victim['inst_id']}" in lines[0], res.stderr
    assert "class_id" in lines[0] and "Traceback" not in res.stderr
    assert not (out / "data").exists()  # nothing written


def test_new_id_for_an_existing_name_is_refused(release):
    from avsynth.sources.avs_synthetic import read_release
    from avsynth.sources.records import SkipCounter

    ann = release / "annotations.csv"
    with open(ann, newline="") as f:
        rows = list(csv.DictReader(f))
    first = rows[0]
    victim = next(r for r in rows if r["class_id"] != first["class_id"])
    unused = victim["class_id"]  # an id no row of first's class has

    def new_id(rs):  # the victim is renamed to the first row's class, keeping its own id
        for r in rs:
            if r["inst_id"] == victim["inst_id"]:
                r["class_name"] = first["class_name"]
    victim = {**victim, "class_name": first["class_name"]}

    _rewrite(ann, new_id)
    rel = read_release(release, SkipCounter())
    with pytest.raises(BuildError, match=f"instance {victim['inst_id']}: class "
                       f"'{victim['class_name']}' has class_id {unused}"):
        check_class_ids(rel.rows, str(ann))


def test_tiny_demo_release_imports_to_a_set_verify_accepts(tmp_path):
    from avsynth.demo import write_demo

    demo = write_demo(tmp_path / "tiny", seed=0, scale="tiny")
    out = tmp_path / "out"
    res = import_avs_synthetic(ImportOptions(root=Path(demo.avs_synthetic_root), out=out),
                               progress=False)
    skipped = res.record.skipped
    assert skipped[SKIP_AUDIO_TWO_SPLITS]["count"] >= 1, skipped  # what the release has
    assert SKIP_POOL_EVAL_CLIP in skipped
    report = verify_dir(out)
    assert report.ok, report.summary()
