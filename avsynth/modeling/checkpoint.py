"""Model checkpoints: the state dict plus the config that builds the model, nothing executable.

A checkpoint file is ``torch.save`` of ``{"format": "avsynth-model/1", "config": dict,
"trainable_only": bool, "state_dict": {name: tensor}}`` and is read back with
``torch.load(..., weights_only=True)``. With ``trainable_only`` only the trained parameters are
stored (a few MB instead of 2.5 GB for ViT-H) plus the audio standardisation's statistics
(``audio_norm.*`` buffers, :mod:`avsynth.modeling.audio_norm`); loading then rebuilds the frozen
parts from the SAM checkpoint path in the config.

A checkpoint released with a paper's code (a registered :mod:`avsynth.modeling.official` format,
e.g. SAMA-AVS's ``model.state_dict()``) is recognised by its key layout and converted on reading:
the payload then also carries ``official`` (the conversion report: the model keys it leaves
unfilled, each explained, and zero unexpected keys, else it is refused) and ``vggish_state_dict``
(the audio network's weights it ships).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from avsynth.errors import SourceError
from avsynth.io import atomic_open
from avsynth.modeling.audio_norm import STATE_PREFIX as AUDIO_NORM_PREFIX
from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.official import FORMATS, convert_official, detect_format, state_dict_of
from avsynth.modeling.registry import build_model, pretrained_checkpoint, validate_config
from avsynth.modeling.sam import CheckpointError, load_state_checked, load_torch_file, read_state_dict

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
        if not trainable_only or k in trainable or k.startswith(AUDIO_NORM_PREFIX)
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
    payload = load_torch_file(p, "model checkpoint")
    if isinstance(payload, Mapping) and payload.get("format") == FORMAT:
        return dict(payload)
    state = state_dict_of(payload)
    fmt = detect_format(state) if state is not None else None
    if fmt is None:
        raise SourceError(p, f"not an avsynth model checkpoint (expected format {FORMAT!r}) nor a "
                             f"released checkpoint of a known layout ({', '.join(sorted(FORMATS))})")
    return official_payload(p, state, fmt.name)


def official_payload(path: str | Path, state: Mapping[str, torch.Tensor], fmt: str,
                     config: Mapping[str, Any] | None = None) -> dict:
    """An avsynth payload made from a released checkpoint's state dict (see the module docstring);
    a key that fits nowhere or an unexplained missing key is an error naming the file."""
    cfg, model_state, vggish_state, report = convert_official(state, fmt, config)
    if not report.clean:
        raise CheckpointError(f"{path}: {fmt} checkpoint does not fit {cfg['name']}: " + "; ".join(report.lines()))
    return {"format": FORMAT, "config": cfg, "trainable_only": False, "state_dict": model_state,
            "vggish_state_dict": vggish_state, "official": report.to_dict()}


def convert_checkpoint_file(src: str | Path, dst: str | Path, fmt: str | None = None,
                            config: Mapping[str, Any] | None = None) -> tuple[Path, Path | None, dict]:
    """Convert a released checkpoint ``src`` (format ``fmt``, default: detected) into an avsynth
    checkpoint ``dst``; the VGGish weights it ships go to ``dst`` with suffix ``.vggish.pth``
    (torchvggish layout) and the stored config points at them. Returns ``(dst, vggish path or
    None, conversion report)``; refuses (CheckpointError) a file with unexpected or unexplained
    missing keys, writing nothing."""
    src, dst = Path(src), Path(dst)
    raw = load_torch_file(src, "checkpoint")
    state = state_dict_of(raw)
    if state is None:
        raise SourceError(src, "holds no state dict (a mapping of tensor names to tensors)")
    if fmt is None:
        found = detect_format(state)
        if found is None:
            raise SourceError(src, f"layout not recognised; name it with --from ({', '.join(sorted(FORMATS))})")
        fmt = found.name
    payload = official_payload(src, state, fmt, config)
    vggish_path = None
    vggish_state = payload.pop("vggish_state_dict")
    if vggish_state:
        vggish_path = dst.with_suffix(".vggish.pth")
        vggish_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(vggish_path, "wb") as fh:
            torch.save(vggish_state, fh)
        payload["config"]["vggish"]["checkpoint"] = str(vggish_path.resolve())
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(dst, "wb") as fh:
        torch.save(payload, fh)
    return dst, vggish_path, payload["official"]


def explained_missing(payload: Mapping[str, Any]) -> set[str]:
    """Model keys a converted official checkpoint leaves unfilled, for a stated reason."""
    return set((payload.get("official") or {}).get("explained", {}))


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
    missing = [k for k in report.missing if k not in explained_missing(payload)]
    if partial:
        missing = [k for k in missing if k in {n for n, p in model.named_parameters() if p.requires_grad}
                   or k.startswith(AUDIO_NORM_PREFIX)]
    if missing or report.unexpected:
        raise CheckpointError(f"{path}: checkpoint does not fit its config's model: {report.summary()}")
    if device is not None:
        model = model.to(device)
    return model


__all__ = ["FORMAT", "convert_checkpoint_file", "explained_missing", "load_checkpoint", "official_payload", "read_checkpoint",
           "read_state_dict", "save_checkpoint"]
