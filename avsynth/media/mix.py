"""Mixing several sounds into one window: RMS loudness normalisation, gains in dB, a peak guard.

The recipe (used by ``avsynth build --sources-per-row K`` and by load-time re-pairing, so both
make the same mixture from the same windows and gains):

1. every window is scaled to an RMS level of :data:`TARGET_RMS_DBFS` (-20 dBFS; a silent window
   stays silent), so a source's loudness in the mix is set by its gain, not by its recording;
2. window ``i`` is multiplied by ``10 ** (gain_db[i] / 20)`` and the windows are summed;
3. if the sum peaks above :data:`PEAK` it is scaled down as a whole (no clipping; the gains keep
   their ratios).

RMS, not LUFS: the windows are a few seconds of 16 kHz mono, where K-weighting changes little and
RMS needs no extra dependency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TARGET_RMS_DBFS = -20.0
PEAK = 0.99
_SILENT_RMS = 1e-6


def rms_normalise(wave: np.ndarray, target_dbfs: float = TARGET_RMS_DBFS) -> np.ndarray:
    """``wave`` scaled to an RMS of ``target_dbfs`` (float64); a silent wave is returned as zeros."""
    w = np.asarray(wave, dtype=np.float64)
    rms = float(np.sqrt(np.mean(w * w))) if w.size else 0.0
    if rms < _SILENT_RMS:
        return np.zeros_like(w)
    return w * (10.0 ** (target_dbfs / 20.0) / rms)


def mix(waves: Sequence[np.ndarray], gains_db: Sequence[float]) -> np.ndarray:
    """The mixture of equally long mono ``waves`` with ``gains_db`` (see the module doc), float32."""
    if not waves or len(waves) != len(gains_db):
        raise ValueError(f"mix needs one gain per wave (got {len(waves)} waves, {len(gains_db)} gains)")
    n = min(int(np.asarray(w).shape[0]) for w in waves)
    out = np.zeros(n, dtype=np.float64)
    for w, g in zip(waves, gains_db):
        out += rms_normalise(np.asarray(w)[:n]) * 10.0 ** (float(g) / 20.0)
    peak = float(np.max(np.abs(out))) if n else 0.0
    if peak > PEAK:
        out *= PEAK / peak
    return out.astype(np.float32)
