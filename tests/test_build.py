"""`avsynth build` end to end on the demo corpus: determinism, crash safety, resume, skips."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from avsynth.build import BuildOptions, SourcePaths, build
from avsynth.errors import BuildError

SIZES = {"train": 120, "validation": 24, "test": 24}


def sources(demo) -> SourcePaths:
    return SourcePaths(
        lvis_json=[Path(demo.lvis_train_json), Path(demo.lvis_val_json)],
        coco_root=Path(demo.coco_root),
        openimages_root=Path(demo.openimages_root),
        vggsound_csv=Path(demo.vggsound_csv),
        vggsound_audio=Path(demo.vggsound_audio),
    )


def options(out: Path, demo, **kw) -> BuildOptions:
    base = dict(out=out, categories="46", sources=sources(demo), sizes=dict(SIZES), seed=0,
                workers=1, rows_per_shard=25)
    base.update(kw)
    return BuildOptions(**base)


def digest_tree(root: Path) -> dict[str, str]:
    """sha256 of every output file (the hidden build state excluded)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(".avsynth/"):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def reference(demo_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "shards"
    result = build(options(out, demo_corpus), progress=False)
    return out, result


def test_layout_record_and_card(reference):
    out, result = reference
    rec = json.loads((out / "manifest.json").read_text())
    # the record's counts are those of the rows in the files, read back with pyarrow
    table = pq.read_table(out / "data", columns=["split", "category"])
    for split in ("train", "validation", "test"):
        cats = [c for s, c in zip(table["split"].to_pylist(), table["category"].to_pylist()) if s == split]
        assert rec["splits"][split]["rows"] == len(cats) <= SIZES[split]
        assert {k: v for k, v in rec["splits"][split]["per_category"].items() if v} == dict(Counter(cats))
    assert result.shards_written == len(rec["shards"]) + len(rec["audio_pool"])
    assert rec["format"] == "avsynth-shards/1" and rec["seed"] == 0
    assert rec["tool"]["name"] == "avsynth"
    for split in ("train", "validation", "test"):
        info = rec["splits"][split]
        assert info["rows"] > 0
        assert sum(info["per_category"].values()) == info["rows"]
        files = sorted((out / "data").glob(f"{split}-*.parquet"))
        assert len(files) == info["num_shards"]
        assert files[0].name == f"{split}-00000-of-{info['num_shards']:05d}.parquet"
    for s in rec["shards"] + rec["audio_pool"]:
        p = out / s["path"]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == s["sha256"]
        assert pq.ParquetFile(p).metadata.num_rows == s["rows"]
    assert rec["audio_pool"], "train audio pool for re-pairing must be written"
    assert {"lvis", "openimages", "vggsound"} <= set(rec["sources"])
    sources = set(pq.read_table(out / "data", columns=["image_source"])["image_source"].to_pylist())
    assert sources == {"lvis", "openimages"}
    assert len(rec["splits"]["train"]["per_category"]) == 46  # OI-only categories too
    assert all(len(fp["sha256"]) == 64 for fp in rec["sources"]["lvis"])
    assert (out / "README.md").read_text().startswith("---")


def test_rows_match_schema_and_jpeg_is_passed_through(reference, demo_corpus):
    out, _ = reference
    t = pq.read_table(sorted((out / "data").glob("train-*.parquet"))[0])
    meta = t.schema.metadata or {}
    assert b"huggingface" in meta
    row = t.slice(0, 1).to_pylist()[0]
    coco = Path(demo_corpus.coco_root)
    matches = list(coco.glob(f"*/{int(row['image_id']):012d}.jpg")) or list(
        coco.glob(f"*/*{row['image_id']}.jpg"))
    assert matches and matches[0].read_bytes() == row["image"]["bytes"]
    assert row["mask"]["bytes"][:8] == b"\x89PNG\r\n\x1a\n"
    assert row["audio"]["bytes"][:4] == b"fLaC"
    assert 0 < row["mask_area"] <= 1 and len(row["bbox"]) == 4
    assert row["audio_seconds"] == pytest.approx(3.0)
    assert 0 <= row["audio_offset_s"] <= 7.0


def test_no_image_or_clip_in_two_splits(reference):
    out, _ = reference
    seen_img, seen_audio = {}, {}
    for split in ("train", "validation", "test"):
        t = pq.read_table(out / "data", columns=["split", "image_id", "image_source", "audio_id"],
                          filters=[("split", "=", split)])
        seen_img[split] = set(zip(t["image_source"].to_pylist(), t["image_id"].to_pylist()))
        seen_audio[split] = set(t["audio_id"].to_pylist())
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        assert not seen_img[a] & seen_img[b]
        assert not seen_audio[a] & seen_audio[b]


def test_identical_bytes_across_worker_counts(reference, demo_corpus, tmp_path):
    out, _ = reference
    out2 = tmp_path / "w2"
    build(options(out2, demo_corpus, workers=2), progress=False)
    assert digest_tree(out2) == digest_tree(out)


@pytest.mark.slow
def test_identical_bytes_with_ray(reference, demo_corpus, tmp_path):
    out, _ = reference
    out2 = tmp_path / "ray"
    build(options(out2, demo_corpus, workers=2, engine="ray"), progress=False)
    assert digest_tree(out2) == digest_tree(out)


def test_refuses_dirty_output_dir(demo_corpus, tmp_path):
    out = tmp_path / "dirty"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="not empty"):
        build(options(out, demo_corpus), progress=False)
    assert (out / "notes.txt").read_text() == "mine"
    with pytest.raises(BuildError, match="not started by avsynth"):
        build(options(out, demo_corpus, resume=True), progress=False)


def test_resume_of_finished_build_keeps_everything(reference, demo_corpus, tmp_path):
    out, _ = reference
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = {p: p.stat().st_mtime_ns for p in (copy / "data").glob("*.parquet")}
    result = build(options(copy, demo_corpus, resume=True), progress=False)
    assert result.shards_written == 0
    assert {p: p.stat().st_mtime_ns for p in (copy / "data").glob("*.parquet")} == before
    assert digest_tree(copy) == digest_tree(out)
    with pytest.raises(BuildError, match="differs in: arguments"):
        build(options(copy, demo_corpus, resume=True, seed=1), progress=False)


def test_resume_rejects_a_modified_shard(reference, demo_corpus, tmp_path):
    out, _ = reference
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shard = sorted((copy / "data").glob("train-*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(BuildError, match="does not match its record"):
        build(options(copy, demo_corpus, resume=True), progress=False)


def _cli_build(out: Path, demo, extra: list[str]) -> list[str]:
    args = [sys.executable, "-m", "avsynth", "build", "--out", str(out), "--quiet",
            "--workers", "1", "--rows-per-shard", "25", "--num-train", str(SIZES["train"]),
            "--num-val", str(SIZES["validation"]), "--num-test", str(SIZES["test"]),
            "--coco-root", str(demo.coco_root), "--vggsound-csv", str(demo.vggsound_csv),
            "--vggsound-audio", str(demo.vggsound_audio),
            "--openimages-root", str(demo.openimages_root),
            "--lvis-json", str(demo.lvis_train_json), "--lvis-json", str(demo.lvis_val_json)]
    return args + extra


@pytest.mark.parametrize("kill_after_shards", [1, 4])
def test_kill_9_then_resume_equals_uninterrupted(reference, demo_corpus, tmp_path,
                                                 kill_after_shards):
    out, _ = reference
    crashed = tmp_path / "crashed"
    proc = subprocess.Popen(_cli_build(crashed, demo_corpus, []), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((crashed / "data").glob("*.parquet"))) >= kill_after_shards:
            break
        time.sleep(0.01)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (crashed / "manifest.json").exists() or proc.returncode == 0
    # The crashed directory holds only complete shards (maybe fewer), never a partial one.
    for p in (crashed / "data").glob("*.parquet"):
        pq.ParquetFile(p)  # a torn file would fail to open
    done = subprocess.run(_cli_build(crashed, demo_corpus, ["--resume"]), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert digest_tree(crashed) == digest_tree(out)


def test_bad_source_items_are_counted(demo_corpus, tmp_path):
    broken = tmp_path / "demo"
    shutil.copytree(demo_corpus.root, broken, symlinks=False)
    rel = lambda p: broken / Path(p).relative_to(demo_corpus.root)  # noqa: E731
    coco = rel(demo_corpus.coco_root)
    oi = rel(demo_corpus.openimages_root)
    victim = sorted((coco / "train2017").glob("*.jpg"))[0]
    victim.write_bytes(b"\xff\xd8\xff not really a jpeg")
    wavs = sorted(rel(demo_corpus.vggsound_audio).glob("*.wav"))
    wavs[0].write_bytes(b"RIFF\x00\x00garbage")
    out = tmp_path / "out"
    src = SourcePaths(
        lvis_json=[rel(demo_corpus.lvis_train_json), rel(demo_corpus.lvis_val_json)],
        coco_root=coco, openimages_root=oi, vggsound_csv=rel(demo_corpus.vggsound_csv),
        vggsound_audio=rel(demo_corpus.vggsound_audio),
    )
    result = build(options(out, demo_corpus, sources=src), progress=False)
    skipped = result.record.skipped
    assert "audio file missing" in " ".join(skipped), skipped  # the demo's link-rot rows
    reasons = " | ".join(f"{k}: {v['examples']}" for k, v in skipped.items())
    assert "unreadable" in reasons
    rows = sum(v["rows"] for v in result.record.splits.values())
    assert rows == sum(s.rows for s in result.record.shards)


def test_datasets_load_dataset_gives_image_audio_image(reference):
    import datasets

    out, _ = reference
    ds = datasets.load_dataset(str(out))
    assert set(ds) == {"train", "validation", "test"}
    feats = ds["train"].features
    assert isinstance(feats["image"], datasets.Image)
    assert isinstance(feats["mask"], datasets.Image)
    assert isinstance(feats["audio"], datasets.Audio)
    files = sorted((out / "data").glob("train-*.parquet"))
    assert ds["train"].num_rows == sum(pq.ParquetFile(p).metadata.num_rows for p in files)


def test_cli_build_refuses_bad_options_cleanly(demo_corpus, tmp_path):
    bad = subprocess.run(_cli_build(tmp_path / "o", demo_corpus, ["--audio-format", "mp3"]),
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "--audio-format" in bad.stderr and "Traceback" not in bad.stderr
    unknown = subprocess.run(_cli_build(tmp_path / "o2", demo_corpus, ["--categories", "dgo"]),
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "dog" in unknown.stderr and "Traceback" not in unknown.stderr


def test_full_disk_leaves_no_partial_shard_and_resume_completes(reference, demo_corpus, tmp_path):
    """A real full disk (a 4 MB tmpfs): the build stops with a clear error, leaves only complete,
    recorded shards, and --resume on the grown filesystem gives the uninterrupted bytes."""
    out_ref, _ = reference
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        out = mnt / "shards"
        with pytest.raises(BuildError, match="No space left on device"):
            build(options(out, demo_corpus), progress=False)
        shards = sorted((out / "data").glob("*.parquet"))
        leftovers = [p for p in (out / "data").iterdir() if p.name.startswith(".")]
        assert not leftovers, leftovers  # no temporary or partial file
        for p in shards:  # every finished shard is complete and recorded
            pq.ParquetFile(p)
        assert not (out / "manifest.json").exists()
        subprocess.run(["mount", "-o", "remount,size=200M", str(mnt)], check=True)
        build(options(out, demo_corpus, resume=True), progress=False)
        assert digest_tree(out) == digest_tree(out_ref)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
