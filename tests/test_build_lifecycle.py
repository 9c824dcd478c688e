"""The life of a build process (issue 12, cases 5-8): no worker outlives the build, SIGTERM is a
one-line exit that --resume continues, --resume notices changed media, a half-initialised --out is
usable, and two builds cannot write one directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from avsynth.build import BuildOptions, SourcePaths, build
from avsynth.build.guard import out_lock
from avsynth.errors import BuildError

SIZES = {"train": 120, "validation": 24, "test": 24}


def _paths(root: Path) -> SourcePaths:
    return SourcePaths(
        lvis_json=[root / "lvis/lvis_v1_train.json", root / "lvis/lvis_v1_val.json"],
        coco_root=root / "coco", openimages_root=root / "openimages",
        vggsound_csv=root / "vggsound/vggsound.csv", vggsound_audio=root / "vggsound/audio",
    )


def _cli(out: Path, root: Path, *extra: str, workers: int = 2) -> list[str]:
    p = _paths(root)
    return [sys.executable, "-m", "avsynth", "build", "--out", str(out), "--quiet",
            "--workers", str(workers), "--rows-per-shard", "10",
            "--num-train", str(SIZES["train"]), "--num-val", str(SIZES["validation"]),
            "--num-test", str(SIZES["test"]), "--coco-root", str(p.coco_root),
            "--vggsound-csv", str(p.vggsound_csv), "--vggsound-audio", str(p.vggsound_audio),
            "--openimages-root", str(p.openimages_root), "--lvis-json", str(p.lvis_json[0]),
            "--lvis-json", str(p.lvis_json[1]), *extra]


def _start_and_wait_for_workers(cmd: list[str], out: Path, n_workers: int) -> tuple[
        subprocess.Popen, list[psutil.Process]]:
    """Start the build in its own session; return it and its descendants once ``n_workers``
    worker processes are running and a shard has been written."""
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    kids: list[psutil.Process] = []
    while time.monotonic() < deadline and proc.poll() is None:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if len(kids) >= n_workers and list((out / "data").glob("*.parquet")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"build ended before it could be interrupted: {proc.stderr.read()}"
    return proc, kids


def _survivors(kids: list[psutil.Process], wait_s: float = 15.0) -> list[psutil.Process]:
    deadline = time.monotonic() + wait_s
    alive = kids
    while time.monotonic() < deadline:
        alive = []
        for k in kids:
            try:
                if k.is_running() and k.status() != psutil.STATUS_ZOMBIE:
                    alive.append(k)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return []
        time.sleep(0.1)
    return alive


@pytest.fixture(scope="module")
def root(demo_corpus) -> Path:
    return Path(demo_corpus.root)


def test_kill_9_of_the_build_leaves_no_process_behind(root, tmp_path):
    out = tmp_path / "out"
    proc, kids = _start_and_wait_for_workers(_cli(out, root), out, 2)
    pids = [k.pid for k in kids]
    assert len(pids) >= 2  # the spawn workers (and the resource tracker)
    os.kill(proc.pid, signal.SIGKILL)  # the main process only, not its group
    proc.wait()
    left = _survivors(kids)
    for k in left:  # clean up before failing
        k.kill()
    assert not left, f"still running after the build was killed: {[k.cmdline() for k in left]}"


@pytest.mark.slow
def test_sigterm_is_one_line_and_resume_finishes(root, tmp_path):
    out = tmp_path / "out"
    proc, kids = _start_and_wait_for_workers(_cli(out, root), out, 2)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0] and "--resume" in lines[0], err
    assert "Traceback" not in err
    assert not _survivors(kids)
    assert not (out / "manifest.json").exists()
    done = subprocess.run(_cli(out, root, "--resume"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    verify = subprocess.run([sys.executable, "-m", "avsynth", "verify", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _copy_sources(root: Path, dest: Path) -> Path:
    for name in ("lvis", "coco", "openimages", "vggsound"):
        shutil.copytree(root / name, dest / name)
    return dest


def _opts(out: Path, src: Path, **kw) -> BuildOptions:
    return BuildOptions(out=out, categories="46", sources=_paths(src), sizes=dict(SIZES),
                        seed=0, workers=1, rows_per_shard=25, **kw)


def test_resume_names_changed_media_and_half_initialised_out_is_usable(root, tmp_path):
    src = _copy_sources(root, tmp_path / "src")
    out = tmp_path / "out"
    # killed after OUT/.avsynth/ existed but before plan.json: both a plain build and --resume
    # accept the directory (as if empty)
    (out / ".avsynth" / "shards").mkdir(parents=True)
    build(_opts(out, src), progress=False)
    half = tmp_path / "half"
    (half / ".avsynth").mkdir(parents=True)
    build(_opts(half, src, resume=True), progress=False)
    assert (half / "manifest.json").exists()

    # an interrupted build (its manifest and one shard removed) whose source WAV then changes
    (out / "manifest.json").unlink()
    victim = sorted(p for p in (out / "data").glob("train-*.parquet"))[0]
    victim.unlink()
    wav = sorted((src / "vggsound/audio").glob("*.wav"))[3]
    data = bytearray(wav.read_bytes())
    data[-100:] = bytes(100)  # same size, new content: only the mtime tells
    wav.write_bytes(bytes(data))
    os.utime(wav, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(BuildError) as err:
        build(_opts(out, src, resume=True), progress=False)
    msg = str(err.value)
    assert "media" in msg and wav.name in msg and "\n" not in msg, msg
    # a directory that holds other files is still refused, with the way out named
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="not empty.*--resume"):
        build(_opts(foreign, src), progress=False)


def test_second_build_on_the_same_out_is_refused(root, tmp_path):
    out = tmp_path / "out"
    with out_lock(out):  # a build holding the directory (the lock is the same file lock)
        cmd = _cli(out, root, "--resume", workers=1)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    lines = [line for line in second.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "another avsynth build" in lines[0], second.stderr
    assert not (out / "data").exists()  # nothing written by the second
