"""Shared test fixtures.

``shared_dir`` is the read-only ../shared folder beside the repository (real class lists, real
AVSBench metadata, a real VGGSound clip and photographs). Set AVSYNTH_SHARED to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared() -> Path:
    env = os.environ.get("AVSYNTH_SHARED")
    return Path(env) if env else REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    d = _shared()
    if not (d / "data").is_dir():
        pytest.fail(f"../shared/data not found at {d}; set AVSYNTH_SHARED")
    return d


@pytest.fixture(scope="session")
def labels_dir(shared_dir) -> Path:
    return shared_dir / "data" / "labels"


@pytest.fixture(scope="session")
def real_dir(shared_dir) -> Path:
    return shared_dir / "data" / "real"


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """The demo corpora at the small "test" scale (all 46 categories, seed 0), written once per
    test session (about 70 MB, a few seconds). Returns an ``avsynth.demo.DemoCorpus``."""
    from avsynth.demo import write_demo

    return write_demo(tmp_path_factory.mktemp("demo") / "corpus", seed=0, scale="test")


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: the suite shares two cores between xdist workers, and one
    thread keeps CPU results deterministic."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
