"""Model checkpoints: the state dict plus the config that builds the model, nothing executable.

A checkpoint file is ``torch.save`` of ``{"format": "avsynth-model/1", "config": dict,
"trainable_only": bool, "state_dict": {name: tensor}}`` and is read back with
``torch.load(..., weights_only=True)``. With ``trainable_only`` only the trained parameters are
stored (a few MB instead of 2.5 GB for ViT-H); loading then rebuilds the frozen parts from the
SAM checkpoint path in the config.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from avsynth.errors import SourceError
from avsynth.io import atomic_open
from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.registry import build_model, pretrained_checkpoint, validate_config
from avsynth.modeling.sam import CheckpointError, load_state_checked, read_state_dict

log = logging.getLogger(__name__)

FORMAT = "avsynth-model/1"


def save_checkpoint(
    model: AVSegmenter,
    path: str | Path,
    config: Mapping[str, Any] | None = None,
    trainable_only: bool = False,
) -> Path:
    """Write ``model``'s weights and ``config`` (default ``model.config``) atomically to ``path``."""
    cfg = validate_config(config if config is not None else model.config, "checkpoint config")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    state = {
        k: v.detach().cpu().clone()
        for k, v in model.state_dict().items()
        if not trainable_only or k in trainable
    }
    payload = {"format": FORMAT, "config": cfg, "trainable_only": trainable_only, "state_dict": state}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint payload (validated format), loaded with ``weights_only=True``."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(p, "model checkpoint not found")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SourceError(p, f"not a loadable checkpoint (torch.load weights_only=True): {err}") from err
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        raise SourceError(p, f"not an avsynth model checkpoint (expected format {FORMAT!r})")
    return dict(payload)


def load_checkpoint(
    path: str | Path,
    device: torch.device | str | None = None,
    config: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
) -> AVSegmenter:
    """Rebuild the model saved by :func:`save_checkpoint`; every stored key must match.

    ``config`` replaces the stored config (e.g. the same config with this machine's local SAM
    checkpoint path); by default the stored one is used. ``payload``: the file's contents when the
    caller has already read them (:func:`read_checkpoint`), so a large checkpoint is loaded once.
    """
    payload = read_checkpoint(path) if payload is None else payload
    cfg = validate_config(config, str(path)) if config is not None else payload["config"]
    partial = bool(payload["trainable_only"])
    if partial and not pretrained_checkpoint(cfg):
        raise CheckpointError(
            f"{path}: stores only trainable weights but its config names no sam.checkpoint / "
            "mask2former.checkpoint to rebuild the frozen weights from"
        )
    model = build_model(cfg, load_weights=partial)
    report = load_state_checked(model, payload["state_dict"], path)
    missing = report.missing
    if partial:
        missing = [k for k in missing if k in {n for n, p in model.named_parameters() if p.requires_grad}]
    if missing or report.unexpected:
        raise CheckpointError(f"{path}: checkpoint does not fit its config's model: {report.summary()}")
    if device is not None:
        model = model.to(device)
    return model


__all__ = ["FORMAT", "load_checkpoint", "read_checkpoint", "read_state_dict", "save_checkpoint"]
