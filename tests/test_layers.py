"""The package's import structure: every import points down, and there are no cycles.

The layer order lives in ``pyproject.toml`` (``[tool.importlinter]``); these tests run the real
import-linter on the real package, and show that the check fails when an arrow is reversed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "avsynth"


def _lint(cwd: Path, env_path: Path) -> subprocess.CompletedProcess:
    """Run import-linter with the repository's contracts on the ``avsynth`` found in ``env_path``."""
    code = (
        "import sys; sys.path.insert(0, sys.argv.pop(1));"
        "from importlinter.cli import lint_imports_command; lint_imports_command()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(env_path), str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def test_import_contracts_are_kept():
    res = _lint(ROOT, ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "broken" not in res.stdout.lower().replace("0 broken", "")
    # every contract of pyproject.toml was checked
    assert res.stdout.count(" KEPT") == (ROOT / "pyproject.toml").read_text().count("[[tool.importlinter.contracts]]")


def _copy_tree(tmp_path: Path) -> Path:
    dst = tmp_path / "repo"
    dst.mkdir()
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    shutil.copytree(PACKAGE, dst / "avsynth", ignore=shutil.ignore_patterns("__pycache__", "*.csv", "*.wav"))
    return dst


@pytest.mark.parametrize(
    "module, upward",
    [
        ("avsynth/sources/lvis.py", "avsynth.shards.schema"),  # a reader importing the writers
        ("avsynth/evaluation/metrics.py", "avsynth.training.trainer"),  # evaluation above training
        ("avsynth/training/trainer.py", "avsynth.protocols"),  # training above the protocols
        ("avsynth/media/audio.py", "avsynth.build"),  # media above the build
        ("avsynth/demo/layout.py", "avsynth.plan"),  # the demo generator above the build's plan
    ],
)
def test_a_reversed_arrow_fails_the_check(tmp_path, module, upward):
    repo = _copy_tree(tmp_path)
    target = repo / module
    # a function-local import counts as much as a module-level one
    target.write_text(target.read_text() + f"\n\ndef _planted():\n    import {upward}  # noqa\n")
    res = _lint(repo, repo)
    assert res.returncode != 0, res.stdout
    assert upward.rsplit(".", 1)[0] in res.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_planted_cycle():
    g = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c", "p.d"):
        g.add_module(m)
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p.c")
    g.add_import(importer="p.c", imported="p.a")
    g.add_import(importer="p.d", imported="p.a")
    assert _cycles(g) == [["p.a", "p.b", "p.c"]]


def test_no_import_cycles_between_modules():
    graph = grimp.build_graph("avsynth", exclude_type_checking_imports=True)
    assert _cycles(graph) == []
