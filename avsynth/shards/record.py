"""The build record of a shard directory (``DIR/manifest.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from avsynth.errors import VerifyError


def read_record(directory: str | Path) -> dict:
    """``DIR/manifest.json`` parsed; a missing or unreadable record is a VerifyError naming it."""
    path = Path(directory) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise VerifyError(f"{path}: cannot read the build record ({err})") from err
