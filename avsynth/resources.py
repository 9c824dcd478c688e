"""Locate the data files shipped with avsynth (category manifests, model configs).

In a wheel they live in ``avsynth/_data/{manifests,models}``; in a source checkout (editable
install) they live at the repository root. Both are resolved here, nowhere else.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_KINDS = ("manifests", "models")


def data_dir(kind: str) -> Path:
    """Directory holding the shipped files of ``kind`` ("manifests" or "models")."""
    if kind not in _KINDS:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {_KINDS}")
    packaged = Path(str(resources.files("avsynth"))) / "_data" / kind
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / kind
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"avsynth data directory {kind!r} not found (looked in {packaged} and {checkout}); "
        "the installation is incomplete"
    )


def list_names(kind: str, suffix: str = ".yaml") -> list[str]:
    """Names (file stems) of the shipped files of ``kind``, sorted."""
    return sorted(p.stem for p in data_dir(kind).glob(f"*{suffix}"))


def resolve(kind: str, name_or_path: str | Path, suffix: str = ".yaml") -> Path:
    """A shipped file by name (``avs-synthetic-46``) or an explicit path to a user file."""
    p = Path(name_or_path)
    if p.suffix and p.exists():
        return p
    candidate = data_dir(kind) / f"{p.name if p.suffix else str(name_or_path) + suffix}"
    if candidate.exists():
        return candidate
    names = ", ".join(list_names(kind, suffix)) or "(none)"
    raise FileNotFoundError(f"no {kind[:-1]} file {str(name_or_path)!r}; shipped: {names}")
