"""Run logging: a JSON-lines log, TensorBoard scalars, images and hyper-parameters, and a progress
bar (main process only)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class RunLogger:
    """Writes ``RUN/log.jsonl`` (one JSON object per event, with ``event`` and ``time``) and
    TensorBoard scalars under ``RUN/tensorboard``; does nothing on non-main processes."""

    def __init__(self, run_dir: Path, enabled: bool, append: bool):
        self.enabled = enabled
        self.path = Path(run_dir) / "log.jsonl"
        self._fh = None
        self._tb = None
        if not enabled:
            return
        self._fh = self.path.open("a" if append else "w", encoding="utf-8")
        from torch.utils.tensorboard import SummaryWriter

        self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def event(self, kind: str, **fields: Any) -> None:
        """Append one record ``{"event": kind, "time": unix seconds, **fields}``."""
        if not self.enabled:
            return
        record = {"event": kind, "time": round(time.time(), 3), **_clean(fields)}
        self._fh.write(json.dumps(record, sort_keys=False) + "\n")
        self._fh.flush()

    def scalars(self, step: int, **values: float) -> None:
        """TensorBoard scalars at ``step`` (names like ``train/loss``)."""
        if not self.enabled:
            return
        for name, value in values.items():
            if value is not None:
                self._tb.add_scalar(name, float(value), step)

    def image(self, name: str, step: int, chw_uint8) -> None:
        """A TensorBoard image (uint8 [3, H, W]) at ``step``."""
        if self.enabled:
            self._tb.add_image(name, chw_uint8, step)

    def hparams(self, values: dict[str, Any], metrics: tuple[str, ...]) -> None:
        """The run's hyper-parameters for TensorBoard's HParams tab, in this run's own event file
        (no sub-run); ``metrics`` name scalars logged by :meth:`scalars` (e.g. ``val/miou``)."""
        if not self.enabled:
            return
        from torch.utils.tensorboard.summary import hparams

        plain = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in values.items()}
        for summary in hparams(plain, {m: 0.0 for m in metrics}):
            self._tb.file_writer.add_summary(summary)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


class Progress:
    """A tqdm bar over the batches of one epoch with loss and samples/s (main process only)."""

    def __init__(self, total: int, epoch: int, epochs: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                            dynamic_ncols=True, leave=True)

    def update(self, loss: float, samples_per_s: float, lr: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{samples_per_s:.1f}", lr=f"{lr:.2e}",
                                 refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
