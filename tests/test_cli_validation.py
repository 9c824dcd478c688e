"""Arguments and damaged inputs end in one line and exit code 2 (issue 12, cases 9-11): nonsense
numbers, unknown engines, a bench argument that only a late protocol would reject, a CUDA device
that is not there, a damaged or truncated shard, an unreachable hf:// source; file modes follow
the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avsynth.build import BuildOptions, SourcePaths, build
from avsynth.cli import app
from avsynth.errors import AvsynthError
from avsynth.protocols.results import BenchError
from avsynth.protocols.bench import BenchConfig, validate_bench
from avsynth.protocols.common import EvalOptions, FineTuneOptions
from avsynth.shards.reader import ShardReader

SIZES = {"train": 20, "validation": 4, "test": 4}


def _paths(root: Path) -> SourcePaths:
    return SourcePaths(
        lvis_json=[root / "lvis/lvis_v1_train.json"], coco_root=root / "coco",
        vggsound_csv=root / "vggsound/vggsound.csv", vggsound_audio=root / "vggsound/audio",
    )


def _build_args(root: Path, out: Path) -> list[str]:
    p = _paths(root)
    return ["build", "--out", str(out), "--quiet", "--workers", "1", "--num-train", "20",
            "--num-val", "4", "--num-test", "4", "--coco-root", str(p.coco_root),
            "--lvis-json", str(p.lvis_json[0]), "--vggsound-csv", str(p.vggsound_csv),
            "--vggsound-audio", str(p.vggsound_audio)]


@pytest.mark.parametrize("bad", [
    ["--clip-seconds", "nan"], ["--clip-seconds", "0"], ["--clip-seconds", "11"],
    ["--engine", "foo"], ["--num-train", "-5"], ["--workers", "-2"],
    ["--max-per-category", "0"], ["--max-per-category", "-1"], ["--categories", ""],
    ["--min-mask-area", "nan"], ["--rows-per-shard", "0"],
])
def test_build_refuses_nonsense_with_exit_2_and_writes_nothing(demo_corpus, tmp_path, bad):
    out = tmp_path / "out"
    res = CliRunner().invoke(app, _build_args(Path(demo_corpus.root), out) + bad)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert bad[0] in res.output, res.output  # the message names the option
    assert not out.exists()  # nothing half-written


def _bench(**kw) -> BenchConfig:
    return BenchConfig(checkpoint=Path("missing.pt"), out=Path("o"), **kw)


@pytest.mark.parametrize("kw, needle", [
    (dict(fractions=(2.0,)), "--few-shot"), (dict(fractions=(float("nan"),)), "--few-shot"),
    (dict(k_shots=(2,)), "--few-shot-k"), (dict(split="train"), "--split"),
    (dict(subsets=("s5",)), "--subsets"), (dict(seen_epochs=-1), "--avs-v3-seen-epochs"),
    (dict(eval=EvalOptions(device="cuda:7")), "--device"),
    (dict(eval=EvalOptions(device="nonsense")), "--device"),
    (dict(fine_tune=FineTuneOptions(lr=float("nan"))), "--lr"),
    (dict(fine_tune=FineTuneOptions(batch_size=0)), "--batch-size"),
])
def test_bench_arguments_are_checked_before_any_protocol(kw, needle):
    # the checkpoint does not exist: a validation error must come first, before it is opened
    with pytest.raises(BenchError) as err:
        validate_bench(_bench(**kw))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_bench_cuda_without_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    res = CliRunner().invoke(app, ["bench", "--checkpoint", str(tmp_path / "x.pt"),
                                   "--device", "cuda", "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "no such CUDA device" in res.output, res.output
    assert not (tmp_path / "b").exists()


@pytest.fixture(scope="module")
def small(demo_corpus, tmp_path_factory):
    old = os.umask(0o022)
    try:
        out = tmp_path_factory.mktemp("small") / "out"
        build(BuildOptions(out=out, categories="46", sources=_paths(Path(demo_corpus.root)),
                           sizes=dict(SIZES), workers=1, rows_per_shard=25), progress=False)
    finally:
        os.umask(old)
    return out


def test_file_modes_follow_the_umask(small):
    for p in [small / "manifest.json", small / ".avsynth" / "plan.json", small / "README.md",
              *sorted((small / "data").glob("*.parquet"))]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


def test_damaged_or_truncated_shard_is_named(small, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small, copy)
    shard = sorted((copy / "data").glob("train-*.parquet"))[0]
    assert len(ShardReader(copy, "train")) > 0  # intact: reads
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle (the footer still parses)
    shard.write_bytes(bytes(data))
    with pytest.raises(AvsynthError, match=f"{shard.name}: shard does not match the sha256"):
        ShardReader(copy, "train")
    # without a record there is no digest: a truncated file is still named, in one line
    (copy / "manifest.json").unlink()
    shard.write_bytes(bytes(data[:3000]))
    with pytest.raises(AvsynthError, match=f"{shard.name}: not a readable Parquet shard") as err:
        ShardReader(copy, "train")
    assert "\n" not in str(err.value)


def test_unreachable_hub_source_is_one_line(monkeypatch):
    # The Hub cannot be reached from here (no internet); HF_HUB_OFFLINE makes that immediate.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AvsynthError, match="hf://datasets/nobody/nothing: cannot list") as err:
        ShardReader("hf://datasets/nobody/nothing", "train")
    assert "\n" not in str(err.value)
