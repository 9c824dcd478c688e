"""One meaning per flag name across commands; the old spellings still work, hidden from --help."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from avsynth.cli import app

runner = CliRunner()


def _help(command: str) -> str:
    out = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output
    return re.sub(r"\s+", " ", out)


@pytest.mark.parametrize("command, shown, hidden", [
    ("build", ["--num-proc"], ["--workers", "-j"]),
    ("import-avs-synthetic", ["--num-proc"], ["--workers", "-j"]),
    ("demo", ["--num-proc"], ["--workers"]),
    ("train", ["--num-workers", "--device"], ["--workers", "--cpu"]),
    ("bench", ["--num-workers", "--device"], ["--workers"]),
])
def test_flag_names_mean_one_thing(command, shown, hidden):
    text = _help(command)
    for flag in shown:
        assert flag in text
    for flag in hidden:
        assert not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (command, flag)
    if "--num-proc" in shown:
        assert "num_proc" in text and "all cores" in text
    if "--num-workers" in shown:
        assert "num_workers" in text and "0 = none" in text


def test_view_help_names_the_extra():
    assert "pip install 'avsynth[fiftyone]'" in _help("view")


def test_bench_split_validation_is_avsbench_val_and_bad_split_is_clear(tmp_path):
    bad = runner.invoke(app, ["bench", "--checkpoint", str(tmp_path / "x.pt"), "--split", "train",
                              "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "test or validation" in bad.output
    bad_device = runner.invoke(app, ["train", "--config", "sama-avs-tiny", "--out", str(tmp_path / "r"),
                                     "--device", "tpu"])
    assert bad_device.exit_code == 2 and "--device cpu or cuda" in bad_device.output
