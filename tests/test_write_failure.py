"""A write that the operating system refuses, without root: the build runs in a child process
whose file-size limit (RLIMIT_FSIZE) is below the size of some shards, so the kernel refuses the
write (EFBIG) exactly where a full disk would (ENOSPC). The build must stop with one clear line,
leave only complete and recorded shards, and `--resume` without the limit must give the bytes of
an uninterrupted build. (tests/test_build.py has the same check on a real full tmpfs, which
needs root to mount.)"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from tests.test_build import digest_tree

REPO = Path(__file__).resolve().parent.parent


def _cli(out: Path, demo, extra: list[str] = ()) -> list[str]:
    return [sys.executable, "-m", "avsynth", "build", "--out", str(out), "--quiet", "--workers", "1",
            "--categories", "dog,cat,piano,bus", "--rows-per-shard", "6", "--num-train", "36",
            "--num-val", "6", "--num-test", "6",
            "--coco-root", str(demo.coco_root), "--vggsound-csv", str(demo.vggsound_csv),
            "--vggsound-audio", str(demo.vggsound_audio), "--openimages-root", str(demo.openimages_root),
            "--lvis-json", str(demo.lvis_train_json), "--lvis-json", str(demo.lvis_val_json), *extra]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


def test_refused_write_stops_cleanly_and_resume_completes(demo_corpus, tmp_path):
    ref = tmp_path / "ref"
    done = subprocess.run(_cli(ref, demo_corpus), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    sizes = sorted(p.stat().st_size for p in (ref / "data").glob("*.parquet"))
    assert len(sizes) >= 4 and sizes[0] < sizes[-1]
    limit = (sizes[0] + sizes[-1]) // 2  # the smallest shard fits, the largest does not

    def small_files():  # in the child, before exec: CPython ignores SIGXFSZ, so write() fails
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    out = tmp_path / "limited"
    failed = subprocess.run(_cli(out, demo_corpus), env=_env(), capture_output=True, text=True,
                            timeout=300, preexec_fn=small_files)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "File too large" in failed.stderr and "Traceback" not in failed.stderr
    assert "--resume" in failed.stderr
    assert not (out / "manifest.json").exists()
    assert not [p for p in (out / "data").iterdir() if p.name.startswith(".")]  # no partial file
    recorded = {json.loads(p.read_text())["relpath"]: json.loads(p.read_text())["sha256"]
                for p in (out / ".avsynth" / "shards").glob("*.json")}
    kept = sorted(p for p in (out / "data").glob("*.parquet"))
    assert len(kept) < len(sizes)  # the build stopped part-way
    ref_digest = digest_tree(ref)
    for p in kept:  # every shard left is complete, recorded and the uninterrupted one's bytes
        pq.ParquetFile(p)
        rel = p.relative_to(out).as_posix()
        assert recorded[rel] == ref_digest[rel]
    resumed = subprocess.run(_cli(out, demo_corpus, ["--resume"]), env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert digest_tree(out) == ref_digest
