"""README promises that had no test: the demo fallback of `avsynth build` with no sources (and its
first-line announcement), `--audio-format wav` through a whole build, and the size of
``manifests/full.yaml``. Expected values are the README's own numbers and the fixture's
construction."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
import yaml

from avsynth.build import build
from tests.test_build import digest_tree, options

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--num-train", "20", "--num-val", "4", "--num-test", "4", "--rows-per-shard", "25",
         "--workers", "1", "--quiet", "--categories", "dog,cat"]


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "avsynth", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_build_without_sources_uses_the_cached_demo_corpus_and_says_so_first(demo_corpus, tmp_path):
    """README: "With no source roots, `avsynth build` generates (once, into ~/.cache/avsynth) and
    uses the bundled demo corpus ... and says so on its first line. Real data goes through the
    identical code path." The session's demo corpus is placed in a fresh cache under the name
    the build looks for, so nothing is generated here (generation is tested in test_demo)."""
    from avsynth.demo.corpus import cache_name

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / cache_name(0)).symlink_to(demo_corpus.root, target_is_directory=True)
    out = tmp_path / "from-demo"
    proc = _run(["build", "--out", str(out), *SMALL], env={"AVSYNTH_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    # messages go to stderr, the summary table to stdout once the build is done: the
    # announcement is the first thing printed
    first = proc.stderr.lstrip().splitlines()[0]
    assert first.startswith("No source roots given: building from the bundled DEMO corpus"), proc.stderr
    assert sorted(p.name for p in cache.iterdir()) == [cache_name(0)]  # used, not regenerated
    # the identical code path: the same bytes as a build given the demo corpus's roots explicitly
    explicit = tmp_path / "explicit"
    build(options(explicit, demo_corpus, categories="dog,cat", rows_per_shard=25,
                  sizes={"train": 20, "validation": 4, "test": 4}), progress=False)
    got, want = digest_tree(out), digest_tree(explicit)
    for name in ("manifest.json", "README.md"):  # these name the demo / the source paths
        got.pop(name), want.pop(name)
    assert got and got == want
    record = json.loads((out / "manifest.json").read_text())
    assert record["arguments"]["sources"]["demo"] is True
    assert record["arguments"]["sources"]["vggsound_csv"].startswith(str(cache / cache_name(0)))


def test_audio_format_wav_through_a_whole_build(demo_corpus, tmp_path):
    """`--audio-format wav`: every row's audio is a 16 kHz mono WAV of --clip-seconds whose samples
    are those of the FLAC build (both are lossless), and the directory verifies."""
    roots = ["--coco-root", str(demo_corpus.coco_root), "--vggsound-csv", str(demo_corpus.vggsound_csv),
             "--vggsound-audio", str(demo_corpus.vggsound_audio),
             "--openimages-root", str(demo_corpus.openimages_root),
             "--lvis-json", str(demo_corpus.lvis_train_json), "--lvis-json", str(demo_corpus.lvis_val_json)]
    wav, flac = tmp_path / "wav", tmp_path / "flac"
    for out, fmt in ((wav, "wav"), (flac, "flac")):
        proc = _run(["build", "--out", str(out), "--audio-format", fmt, "--clip-seconds", "2", *SMALL, *roots])
        assert proc.returncode == 0, proc.stderr
    cols = ["id", "audio", "audio_seconds"]
    a = pq.read_table(wav / "data", columns=cols).to_pylist()
    b = {r["id"]: r for r in pq.read_table(flac / "data", columns=cols).to_pylist()}
    assert a and sorted(r["id"] for r in a) == sorted(b)  # the same rows, only the codec differs
    for row in a:
        data = row["audio"]["bytes"]
        assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", row["id"]
        assert row["audio"]["path"].endswith(".wav")
        info = sf.info(io.BytesIO(data))
        assert (info.format, info.samplerate, info.channels, info.frames) == ("WAV", 16000, 1, 32000)
        ours, _ = sf.read(io.BytesIO(data), dtype="int16")
        theirs, _ = sf.read(io.BytesIO(b[row["id"]]["audio"]["bytes"]), dtype="int16")
        assert b[row["id"]]["audio"]["bytes"][:4] == b"fLaC"
        assert np.array_equal(ours, theirs), row["id"]
    pool = pq.read_table(wav / "audio_pool", columns=["audio"]).to_pylist()
    assert pool and all(r["audio"]["bytes"][:4] == b"RIFF" for r in pool)
    assert json.loads((wav / "manifest.json").read_text())["audio_format"] == "wav"
    proc = _run(["verify", str(wav)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_full_manifest_has_the_readme_counts(labels_dir):
    """README: "`manifests/full.yaml` maps 124 categories (210 of the 309 VGGSound labels)"."""
    data = yaml.safe_load((REPO / "manifests" / "full.yaml").read_text(encoding="utf-8"))
    cats = data["categories"]
    labels = [label for c in cats for label in c.get("vggsound", [])]
    vggsound = (labels_dir / "vggsound_classes.txt").read_text(encoding="utf-8").splitlines()
    assert len(cats) == 124 and len({c["name"] for c in cats}) == 124
    assert len(labels) == len(set(labels)) == 210  # no label belongs to two categories
    assert len(set(vggsound)) == 309 and set(labels) <= set(vggsound)
    from avsynth.manifest import select_categories

    assert len(select_categories("full").categories) == 124
