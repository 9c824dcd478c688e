"""Every Python snippet the README and the dataset card show runs, as shown, on a tiny build.

The snippets are extracted from the text (```python blocks) and run in a fresh interpreter with the
tiny shard directory as their data. The card's ``"ORG/NAME"`` (a Hub repository: the Hub cannot be
reached from the tests) and ``"path/to/this/folder"`` are replaced by the local folder, which
``datasets.load_dataset`` and ``ShardReader`` take the same way; nothing else is changed. The
``Audio(decode=False)`` snippets are also run with torchcodec made unimportable, the situation they
are documented for.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from avsynth.shards.card import render_card
from avsynth.shards.record import BuildRecord
from tests._tiny_shards import SECONDS, SR, make_shard_dir

REPO = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"```python\n(.*?)```", re.S)

# Runs one snippet; then prints what a reader of the snippet would look at, as JSON.
RUNNER = r"""
import json, sys
if sys.argv[2] == "no-torchcodec":
    sys.modules["torchcodec"] = None  # `import torchcodec` raises ImportError, as without FFmpeg
ns = {}
exec(compile(open(sys.argv[1]).read(), "snippet", "exec"), ns)
seen = {}
if "audio" in ns and hasattr(ns["audio"], "sample_rate"):
    seen["audio"] = [list(ns["audio"].data.shape), ns["audio"].sample_rate]
if "wave" in ns:
    seen["wave"] = [len(ns["wave"]), ns["sample_rate"]]
if "row" in ns:
    seen["row"] = [ns["row"]["image"].size if hasattr(ns["row"]["image"], "size") else None,
                   ns["row"]["category"]]
if "reader" in ns:
    seen["reader"] = len(ns["reader"])
if "ds" in ns and hasattr(ns["ds"], "keys"):
    seen["splits"] = sorted(ns["ds"].keys())
print("SEEN " + json.dumps(seen))
"""


def _torchcodec_decodes() -> bool:
    try:
        import importlib

        importlib.import_module("torchcodec.decoders")  # loads the FFmpeg libraries
    except Exception:
        return False
    return True


def snippets(text: str) -> list[str]:
    return FENCE.findall(text)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("snip")
    return make_shard_dir(root / "shards")


def run_snippet(code: str, cwd: Path, mode: str = "plain") -> dict:
    script = cwd / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "HF_DATASETS_CACHE": str(cwd / "hf-cache"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(script), mode], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"snippet failed:\n{code}\n{proc.stderr[-3000:]}"
    line = [x for x in proc.stdout.splitlines() if x.startswith("SEEN ")][-1]
    return json.loads(line[5:])


def check(seen: dict, first_row_category: str) -> None:
    n = int(SR * SECONDS)
    if "audio" in seen:
        assert seen["audio"] == [[1, n], SR]
    if "wave" in seen:
        assert seen["wave"] == [n, SR]
    if "row" in seen:
        assert seen["row"][1] == first_row_category
    if "reader" in seen:
        assert seen["reader"] == 6  # the tiny build's train rows
    if "splits" in seen:
        assert seen["splits"] == ["test", "train", "validation"]


def _first_train_category(tiny: Path) -> str:
    import pyarrow.parquet as pq

    first = sorted((tiny / "data").glob("train-*.parquet"))[0]
    return pq.read_table(first, columns=["category"]).column("category")[0].as_py()


def _needs_decoder(code: str) -> None:
    if "decode=False" not in code and "get_all_samples" in code and not _torchcodec_decodes():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("torchcodec / FFmpeg missing: scripts/setup.sh installs them")
        pytest.skip("torchcodec or the FFmpeg libraries are not installed (bash scripts/setup.sh)")


def test_readme_python_snippets_run(tiny):
    blocks = snippets((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 2  # decoding with torchcodec, and the Audio(decode=False) path
    cat = _first_train_category(tiny)
    for code in blocks:
        _needs_decoder(code)
        seen = run_snippet(code, tiny.parent)
        assert seen, f"the snippet defines nothing a reader would look at:\n{code}"
        check(seen, cat)
        if "decode=False" in code:
            check(run_snippet(code, tiny.parent, "no-torchcodec"), cat)


def test_card_python_snippets_run(tiny):
    card = render_card(BuildRecord.coerce(json.loads((tiny / "manifest.json").read_text())))
    blocks = snippets(card)
    assert len(blocks) == 3  # datasets, datasets without FFmpeg, ShardReader
    cat = _first_train_category(tiny)
    for code in blocks:
        local = code.replace('"ORG/NAME"', repr(str(tiny))).replace('"path/to/this/folder"', repr(str(tiny)))
        _needs_decoder(local)
        seen = run_snippet(local, tiny)
        assert seen, f"the snippet defines nothing a reader would look at:\n{code}"
        check(seen, cat)
        if "decode=False" in code:
            check(run_snippet(local, tiny, "no-torchcodec"), cat)
