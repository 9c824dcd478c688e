"""The resume logic of build/runner (``check_out_dir``, ``run_plan``'s keep / digest / orphan
handling, the shard records, the temporary-file sweep), driven directly on a small real plan: three
audio-pool shards of tone clips written here, through the real writer and the local engine.
Expected outcomes follow from the construction (which file was removed, damaged or left)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avsynth.build.rows import WorkerOptions
from avsynth.build.runner import check_out_dir, run_plan
from avsynth.errors import BuildError
from avsynth.plan import Plan, PlanOptions, PoolSpec, ShardSpec
from avsynth.sources.records import AudioClip

IDENTITY = {"format": "test", "arguments": {"seed": 0}, "sources": {}, "demo": False, "media": "m0"}
RELS = ["audio_pool/train-00000-of-00003.parquet", "audio_pool/train-00001-of-00003.parquet",
        "audio_pool/train-00002-of-00003.parquet"]
RECORDS = ["audio_pool__train-00000-of-00003.json", "audio_pool__train-00001-of-00003.json",
           "audio_pool__train-00002-of-00003.json"]


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Plan:
    audio = tmp_path_factory.mktemp("clips")
    t = np.arange(16_000) / 16_000
    items = []
    for i in range(6):
        path = audio / f"c{i}_000001.wav"
        sf.write(path, 0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t), 16_000)
        clip = AudioClip("vggsound", f"c{i}_000001", "dog barking", "train", path)
        items.append(PoolSpec("dog", 1, clip, 0.0, 0.5))
    shards = [ShardSpec("pool", "train", k, 3, tuple(items[2 * k: 2 * k + 2])) for k in range(3)]
    assert [s.relpath for s in shards] == RELS
    return Plan(PlanOptions(), [], {}, items, shards, {}, {}, {}, {}, {})


def run(plan, out, resume):
    return run_plan(plan, out, IDENTITY, WorkerOptions(), resume=resume, engine="local", workers=1,
                    ray_address=None, progress=False)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def finished(plan, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "out"
    results, written = run(plan, out, resume=False)
    assert written == 3 and list(results) == RELS
    return out


def copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def records(out: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((out / ".avsynth" / "shards").iterdir())}


def test_a_fresh_run_writes_every_shard_and_its_record(finished):
    assert json.loads((finished / ".avsynth" / "plan.json").read_text()) == IDENTITY
    recs = records(finished)
    assert list(recs) == RECORDS  # one record per shard, named after its path
    for rel, name in zip(RELS, RECORDS):
        assert recs[name]["relpath"] == rel and recs[name]["rows"] == 2 and recs[name]["rows_done"] == 2
        assert recs[name]["sha256"] == sha(finished / rel)  # the record names the file's bytes
        assert recs[name]["bytes"] == (finished / rel).stat().st_size


def test_resume_keeps_finished_shards_untouched(plan, finished, tmp_path):
    out = copy(finished, tmp_path / "out")
    before = {rel: (out / rel).stat().st_mtime_ns for rel in RELS}
    recs = records(out)
    results, written = run(plan, out, resume=True)
    assert written == 0
    assert {rel: (out / rel).stat().st_mtime_ns for rel in RELS} == before  # never rewritten
    assert records(out) == recs
    assert [results[rel].sha256 for rel in RELS] == [recs[n]["sha256"] for n in RECORDS]


def test_resume_rebuilds_a_missing_shard_and_keeps_the_others(plan, finished, tmp_path):
    out = copy(finished, tmp_path / "out")
    (out / RELS[1]).unlink()  # the record stays; the file is gone: written again
    keep = (out / RELS[0]).stat().st_mtime_ns
    results, written = run(plan, out, resume=True)
    assert written == 1 and (out / RELS[0]).stat().st_mtime_ns == keep
    assert sha(out / RELS[1]) == sha(finished / RELS[1])  # deterministic: the same bytes again
    assert results[RELS[1]].rows_done == 2 and results[RELS[0]].rows_done == 2  # kept: its record


def test_resume_refuses_a_recorded_shard_modified_since(plan, finished, tmp_path):
    out = copy(finished, tmp_path / "out")
    data = bytearray((out / RELS[2]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / RELS[2]).write_bytes(bytes(data))
    with pytest.raises(BuildError) as e:
        run(plan, out, resume=True)
    assert str(e.value) == (f"{out / RELS[2]}: file does not match its record (sha256 differs); it was modified "
                            "after it was written. Delete it to let --resume rebuild it")


def test_orphan_shard_intact_is_kept_and_recorded_damaged_is_refused(plan, finished, tmp_path):
    out = copy(finished, tmp_path / "intact")
    rec_path = out / ".avsynth" / "shards" / RECORDS[0]
    want = json.loads(rec_path.read_text())
    rec_path.unlink()  # crash between the shard's rename and its record
    before = (out / RELS[0]).stat().st_mtime_ns
    results, written = run(plan, out, resume=True)
    assert written == 0 and (out / RELS[0]).stat().st_mtime_ns == before
    got = json.loads(rec_path.read_text())
    assert got == {**want, "rows_done": 0}  # regenerated: the same digest, nothing written
    assert results[RELS[0]].sha256 == sha(out / RELS[0])
    assert sorted(p.name for p in (out / ".avsynth").iterdir()) == ["plan.json", "shards"]  # scratch removed

    # a record that cannot be read counts as no record: the file is checked the same way
    (out / ".avsynth" / "shards" / RECORDS[1]).write_text("{not json")
    (out / ".avsynth" / "shards" / RECORDS[2]).write_text(json.dumps({"relpath": RELS[2]}))  # fields missing
    results, written = run(plan, out, resume=True)
    assert written == 0 and records(out)[RECORDS[1]]["sha256"] == sha(out / RELS[1])
    assert records(out)[RECORDS[2]]["sha256"] == sha(out / RELS[2])

    bad = copy(finished, tmp_path / "damaged")
    (bad / ".avsynth" / "shards" / RECORDS[1]).unlink()
    data = bytearray((bad / RELS[1]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / RELS[1]).write_bytes(bytes(data))
    with pytest.raises(BuildError) as e:
        run(plan, bad, resume=True)
    assert str(e.value) == f"{bad / RELS[1]}: an existing shard differs from what the plan produces"
    assert not (bad / ".avsynth" / "shards" / RECORDS[1]).exists()  # nothing recorded for it


def test_without_resume_an_existing_file_is_still_digest_checked(plan, finished, tmp_path):
    out = copy(finished, tmp_path / "out")
    data = bytearray((out / RELS[0]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / RELS[0]).write_bytes(bytes(data))
    with pytest.raises(BuildError, match="an existing shard differs from what the plan produces"):
        run(plan, out, resume=False)  # the records are not trusted without --resume


def test_temporary_files_of_a_killed_writer_are_removed(plan, finished, tmp_path):
    out = copy(finished, tmp_path / "out")
    leftovers = [out / "audio_pool" / ".tmp-train-00000.parquet", out / ".avsynth" / "shards" / ".tmp-x.json"]
    (out / "data").mkdir()
    leftovers.append(out / "data" / ".tmp-train-00001-of-00002.parquet")
    kept = [out / "audio_pool" / "notes.txt", out / ".tmp-at-the-top", out / "data" / "x.tmp-"]
    for p in leftovers + kept:
        p.write_bytes(b"partial")
    run(plan, out, resume=True)
    assert [p.exists() for p in leftovers] == [False] * 3
    assert [p.exists() for p in kept] == [True] * 3


# --------------------------------------------------------------------------- check_out_dir


def msg(*args) -> str:
    with pytest.raises(BuildError) as e:
        check_out_dir(*args)
    return str(e.value)


def test_check_out_dir_fresh_directories(tmp_path):
    for resume in (False, True):
        check_out_dir(tmp_path / "new", resume, IDENTITY)  # absent: fine, nothing created
        assert not (tmp_path / "new").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    check_out_dir(empty, False, IDENTITY)
    check_out_dir(empty, True, IDENTITY)
    started = tmp_path / "started"  # a build killed while starting: only .avsynth/, no plan
    (started / ".avsynth" / "shards").mkdir(parents=True)
    check_out_dir(started, False, IDENTITY)
    check_out_dir(started, True, IDENTITY)


def test_check_out_dir_refusals(tmp_path):
    dirty = tmp_path / "dirty"
    dirty.mkdir()
    (dirty / "notes.txt").write_text("mine")
    assert msg(dirty, False, IDENTITY) == (f"{dirty} is not empty; refusing to build into it. Use --resume to "
                                           "continue an interrupted build there, or choose an empty --out")
    assert msg(dirty, True, IDENTITY) == (f"{dirty}: --resume given but this directory was not started by "
                                          "avsynth build (no .avsynth/plan.json)")
    odd = tmp_path / "odd"  # ".avsynth" as a plain file is not avsynth's state
    odd.mkdir()
    (odd / ".avsynth").write_text("x")
    assert "is not empty" in msg(odd, False, IDENTITY)
    both = tmp_path / "both"  # the state folder plus something else
    (both / ".avsynth").mkdir(parents=True)
    (both / "data").mkdir()
    assert "is not empty" in msg(both, False, IDENTITY)
    planned = tmp_path / "planned"
    (planned / ".avsynth").mkdir(parents=True)
    (planned / ".avsynth" / "plan.json").write_text(json.dumps(IDENTITY))
    assert "is not empty" in msg(planned, False, IDENTITY)  # a started build needs --resume
    check_out_dir(planned, True, dict(IDENTITY))  # the same inputs: resumable


def test_check_out_dir_resume_compares_the_plan(tmp_path):
    out = tmp_path / "out"
    (out / ".avsynth").mkdir(parents=True)
    plan = out / ".avsynth" / "plan.json"
    plan.write_text("{broken")
    assert msg(out, True, IDENTITY).startswith(f"{plan}: cannot read the previous build's plan: Expecting "
                                               "property name enclosed in double quotes")
    plan.write_text(json.dumps({**IDENTITY, "arguments": {"seed": 1}, "demo": True, "old": 1}))
    other = {**IDENTITY, "new": 2}
    assert msg(out, True, other) == (f"{out}: --resume with different inputs or options than the interrupted "
                                     "build (differs in: arguments, demo, new, old); use a new --out")
    # changed media are named when the caller gives the current media list
    (out / ".avsynth" / "media.json").write_text(json.dumps({"a.jpg": [1, 2], "b.wav": [3, 4]}))
    plan.write_text(json.dumps(IDENTITY))
    changed = {**IDENTITY, "media": "m1"}
    assert msg(out, True, changed, {"a.jpg": [1, 2], "b.wav": [3, 5]}) == (
        f"{out}: --resume with different inputs or options than the interrupted build (differs in: media; "
        "changed media: b.wav); use a new --out")
    assert msg(out, True, changed).endswith("(differs in: media); use a new --out")  # no media list: none named
    plan.write_text(json.dumps({**IDENTITY, "arguments": {"seed": 5}}))
    assert msg(out, True, IDENTITY, {"a.jpg": [0, 0]}).endswith("(differs in: arguments); use a new --out")


def test_out_with_missing_parents_and_the_progress_bar_counts_rows_to_write(plan, finished, tmp_path, capsys):
    out = tmp_path / "a" / "b" / "out"  # parents created
    results, written = run_plan(plan, out, IDENTITY, WorkerOptions(), resume=False, engine="local", workers=1,
                                ray_address=None, progress=True)
    assert written == 3 and [sha(out / r) for r in RELS] == [sha(finished / r) for r in RELS]
    bar = capsys.readouterr().out
    assert "building" in bar and "6/6" in bar  # three shards of two rows
    (out / RELS[0]).unlink()
    run_plan(plan, out, IDENTITY, WorkerOptions(), resume=True, engine="local", workers=1, ray_address=None,
             progress=True)
    bar = capsys.readouterr().out
    assert "2/2" in bar and "6/6" not in bar  # only the rows still to write
    run_plan(plan, out, IDENTITY, WorkerOptions(), resume=True, engine="local", workers=1, ray_address=None,
             progress=True)
    assert capsys.readouterr().out == ""  # nothing to write: no bar


def test_a_refused_write_is_one_line_and_resume_completes(plan, finished, tmp_path):
    """The file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes the writer's write() fail with
    EFBIG part-way through a shard, as a full disk would."""
    import resource
    import signal

    out = tmp_path / "out"
    size = min((finished / r).stat().st_size for r in RELS)
    old_sig = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, hard))
    try:
        with pytest.raises(BuildError) as e:
            run(plan, out, resume=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_sig)
    where, _, rest = str(e.value).partition(": ")
    assert rest == ("writing shards failed: File too large. Finished shards are kept and checked; free the "
                    "problem and rerun the same command with --resume")
    assert where == str(out)  # a failed write() names no file: the message names --out
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]  # no partial file left
    results, written = run(plan, out, resume=True)
    assert written == 3 and [sha(out / r) for r in RELS] == [sha(finished / r) for r in RELS]
