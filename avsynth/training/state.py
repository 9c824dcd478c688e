"""The resumable training state written after every epoch: ``RUN/last/``.

``last/`` holds ``model.pt`` (the model checkpoint, :func:`avsynth.modeling.checkpoint.
save_checkpoint`: trainable weights only when the frozen SAM can be rebuilt from a SAM checkpoint
path, else the whole state dict), ``state.pt`` (optimizer, LR schedule, the number of finished
epochs, the optimizer step count, the best validation figures, the history) and ``rng-{rank}.pt``
(Python, NumPy, torch CPU and CUDA generator states of each rank). Data order is a function of
(seed, epoch) alone, so these restore a run exactly. Everything is read back with
``torch.load(..., weights_only=True)``.

A new ``last/`` is written to ``last.tmp/`` and swapped in by rename, so a run killed while
saving still has the previous epoch's checkpoint.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avsynth.errors import SourceError

STATE_FORMAT = "avsynth-train-state/1"


def capture_rng() -> dict[str, Any]:
    """This process's generator states (weights-only loadable: tensors, ints, tuples)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": (version, list(internal), gauss),
        "numpy": (kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_file(path: Path, what: str) -> Any:
    if not path.is_file():
        raise SourceError(path, f"{what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a torn / foreign file
        raise SourceError(path, f"{what} cannot be loaded: {err}") from err


def swap_in(tmp: Path, final: Path) -> None:
    """Replace directory ``final`` by ``tmp`` (old one removed after the rename)."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def recover_dir(final: Path) -> None:
    """After a crash between the two renames of :func:`swap_in`, put ``last.old`` back."""
    old = final.with_name(final.name + ".old")
    if not final.exists() and old.exists():
        old.rename(final)
