"""TRANSITIONAL alias: the demo corpus moved to :mod:`avsynth.demo`.

Readers never import the writers, so this module imports nothing of ``avsynth.demo`` itself; it
only forwards attribute access for callers not yet updated (``evaluation/protocols.py``,
``tests/test_training.py``, ``benchmark/bench_train.py``, ``benchmark/bench_eval.py``, owned by
the model side). Delete it once they import ``avsynth.demo``.
"""

from __future__ import annotations

import importlib


def __getattr__(name: str):
    return getattr(importlib.import_module("avsynth.demo"), name)
