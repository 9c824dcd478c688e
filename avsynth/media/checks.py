"""Build-time checks of what goes into a row: the audio window is long enough and not silent, the
mask source is what it claims to be. A failed check is a :class:`Rejected` with a short reason
(the key the build record counts skips under) and a detail naming the file.

Audio: a clip whose decoded length is shorter than the window is rejected ("audio shorter than
window") unless the caller asks to pad it (then it is zero-padded and reported as padded). A window
whose RMS is below ``MIN_RMS_DBFS`` (digital silence or near-silence) is moved, deterministically,
to a window mostly inside the clip's non-silent part (``librosa.effects.split``); a clip with no such
window is rejected ("silent audio"). The window is also moved when the planned one runs past the
decoded end of the clip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

MIN_RMS_DBFS = -60.0  # a window quieter than this is "silent"
DBFS_FLOOR = -120.0
ROUNDING_S = 0.001  # a clip at most this much shorter than the window is not "short"
WINDOW_STEP_S = 0.01  # candidate window starts lie on a 10 ms grid
ASPECT_TOLERANCE = 0.02  # relative difference of width/height between a mask and its image

SHORT_AUDIO = "audio shorter than window"
SILENT_AUDIO = "silent audio"


class Rejected(Exception):
    """An item fails a build-time check: ``reason`` (the skip key) and ``detail`` (names the file)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def rms_dbfs(wave: np.ndarray) -> float:
    """RMS level of a float wave in [-1, 1] in dBFS, at least ``DBFS_FLOOR``."""
    w = np.asarray(wave, dtype=np.float64)
    if w.size == 0:
        return DBFS_FLOOR
    rms = float(np.sqrt(np.mean(w * w)))
    if rms <= 0.0:
        return DBFS_FLOOR
    return max(DBFS_FLOOR, 20.0 * float(np.log10(rms)))


@dataclass(frozen=True)
class Window:
    """The window a row uses: start in seconds, level in dBFS, and whether it was padded/moved."""

    offset_s: float
    rms_dbfs: float
    padded: bool = False
    moved: bool = False


def choose_window(
    wave: np.ndarray, sr: int, offset_s: float, seconds: float, *, key: str,
    pad_short: bool = False, min_rms_dbfs: float = MIN_RMS_DBFS,
) -> Window:
    """Check the planned window ``[offset_s, offset_s + seconds)`` of a decoded mono clip.

    Keeps the planned window when it lies inside the clip and is loud enough; otherwise picks a
    window, among those on a 10 ms grid that fit the clip, lie mostly in its non-silent part and
    reach ``min_rms_dbfs``, by a hash of ``key`` (so the choice is the same on every run). Raises
    :class:`Rejected` when the clip is shorter than the window (unless ``pad_short``) or has no
    loud-enough window. ``key`` also names the clip in the rejection.
    """
    n = int(round(seconds * sr))
    total = int(wave.shape[0])
    if total < n - int(ROUNDING_S * sr):  # (a whole-clip window rounded to ms may be a hair long)
        if not pad_short:
            raise Rejected(SHORT_AUDIO, f"{key}: {total / sr:.3f} s decoded, window {seconds:g} s")
        level = rms_dbfs(wave)
        if level < min_rms_dbfs:
            raise Rejected(SILENT_AUDIO, f"{key}: {level:.1f} dBFS over the whole clip")
        return Window(0.0, rms_dbfs(np.concatenate([wave, np.zeros(n - total, wave.dtype)])),
                      padded=True, moved=offset_s != 0.0)
    if total < n:  # within the rounding: the window is the whole clip
        level = rms_dbfs(wave)
        if level < min_rms_dbfs:
            raise Rejected(SILENT_AUDIO, f"{key}: {level:.1f} dBFS over the whole clip")
        return Window(0.0, level, moved=offset_s != 0.0)
    start = int(round(offset_s * sr))
    if start + n <= total:
        level = rms_dbfs(wave[start : start + n])
        if level >= min_rms_dbfs:
            return Window(offset_s, level)
    starts = _loud_starts(wave, sr, n, min_rms_dbfs)
    if starts.size == 0:
        raise Rejected(SILENT_AUDIO, f"{key}: no {seconds:g} s window reaches {min_rms_dbfs:g} dBFS")
    pick = int(starts[_stable_index(key, offset_s, starts.size)])
    return Window(pick / sr, rms_dbfs(wave[pick : pick + n]), moved=True)


def checked_window(path, offset_s: float, seconds: float, *, target_sr: int, key: str,
                   pad_short: bool = False) -> tuple[np.ndarray, Window]:
    """Decode the clip at ``path``, check the planned window (:func:`choose_window`) and return the
    window's samples at ``target_sr`` with the :class:`Window` used. Raises ``SourceError``
    (unreadable) or :class:`Rejected` (short / silent)."""
    from avsynth.media.audio import load_clip, window_samples

    wave, sr = load_clip(path)
    win = choose_window(wave, sr, offset_s, seconds, key=key, pad_short=pad_short)
    return window_samples(wave, sr, win.offset_s, seconds, target_sr=target_sr), win


def _loud_starts(wave: np.ndarray, sr: int, n: int, min_rms_dbfs: float) -> np.ndarray:
    """Sample indices (10 ms grid) of the windows of ``n`` samples that fit the clip, reach
    ``min_rms_dbfs`` and lie mostly in the clip's non-silent part: their non-silent time (the
    intervals of ``librosa.effects.split`` at ``min_rms_dbfs`` absolute) is at least half the
    most any window has."""
    import librosa

    step = max(1, int(round(WINDOW_STEP_S * sr)))
    grid = np.arange(0, wave.shape[0] - n + 1, step)
    if grid.size == 0:
        return grid
    frame = min(2048, wave.shape[0])
    intervals = librosa.effects.split(
        np.ascontiguousarray(wave, dtype=np.float32), top_db=-min_rms_dbfs, ref=1.0,
        frame_length=frame, hop_length=max(1, frame // 4),
    )
    loud = np.zeros(wave.shape[0] + 1, dtype=np.int64)
    for a, b in intervals:
        loud[a] += 1
        loud[min(b, wave.shape[0])] -= 1
    covered = np.concatenate([[0], np.cumsum(np.cumsum(loud[:-1]) > 0)])
    coverage = covered[grid + n] - covered[grid]
    if coverage.max() <= 0:
        return grid[:0]
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(wave, dtype=np.float64) ** 2)])
    mean_sq = (energy[grid + n] - energy[grid]) / n
    threshold = 10.0 ** (min_rms_dbfs / 10.0)  # (10^(dB/20))^2
    return grid[(mean_sq >= threshold) & (2 * coverage >= coverage.max())]


def _stable_index(key: str, offset_s: float, n: int) -> int:
    h = hashlib.blake2b(f"window\x1f{key}\x1f{offset_s:.6f}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") % n


# ---- masks -------------------------------------------------------------------------------------


def check_rle(counts, h: int, w: int, image_w: int, image_h: int, where: str) -> None:
    """A COCO RLE must declare the image's size and its counts must cover exactly ``h * w`` pixels."""
    if (int(w), int(h)) != (int(image_w), int(image_h)):
        raise Rejected("RLE size differs from its image",
                       f"{where}: RLE {w}x{h}, image {image_w}x{image_h}")
    total = rle_length(counts)
    if total is None:
        raise Rejected("malformed RLE", f"{where}: counts are not a COCO RLE string or list")
    if total != int(h) * int(w):
        raise Rejected("malformed RLE",
                       f"{where}: counts cover {total} pixels, size {w}x{h} has {int(h) * int(w)}")


def rle_length(counts) -> int | None:
    """Number of pixels a COCO RLE's counts cover (list form or the compressed LEB128 string),
    ``None`` if the counts cannot be parsed."""
    if isinstance(counts, (list, tuple)):
        try:
            values = [int(c) for c in counts]
        except (TypeError, ValueError):
            return None
        return sum(values) if all(v >= 0 for v in values) else None
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(counts, str):
        return None
    # pycocotools' rleFrString: 5 bits per char (offset 48), bit 0x20 = "more", 0x10 = sign;
    # from the third count on, each value is a delta to the count two before.
    values: list[int] = []
    p, m = 0, len(counts)
    while p < m:
        x, k, more = 0, 0, True
        while more:
            if p >= m:
                return None
            c = ord(counts[p]) - 48
            if c < 0 or c > 63:
                return None
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(values) > 2:
            x += values[-2]
        values.append(x)
    if any(v < 0 for v in values):
        return None
    return sum(values)


MASK_MODES = ("1", "L", "P", "I", "I;16")


def check_mask_image(mode: str, size: tuple[int, int], image_w: int, image_h: int, where: str) -> None:
    """An Open Images mask must be single-channel (``1``/``L``/``P``/``I``) and have its image's
    aspect ratio (within ``ASPECT_TOLERANCE``); the release's masks are smaller than the image."""
    if mode not in MASK_MODES:
        raise Rejected("mask image is not single-channel",
                       f"{where}: mode {mode} (expected 1, L or P)")
    mw, mh = size
    if mw < 1 or mh < 1:
        raise Rejected("mask image is empty", f"{where}: {mw}x{mh}")
    ratio = (mw / mh) / (image_w / image_h)
    if abs(ratio - 1.0) > ASPECT_TOLERANCE + 1.0 / min(mw, mh, image_w, image_h):  # + rounding
        raise Rejected("mask aspect ratio differs from its image",
                       f"{where}: mask {mw}x{mh}, image {image_w}x{image_h}")


def check_polygons(polygons, image_w: int, image_h: int, where: str) -> None:
    """Polygon coordinates must be finite and lie within the image (one image size of slack)."""
    for poly in polygons:
        for i, v in enumerate(poly):
            v = float(v)
            limit = image_w if i % 2 == 0 else image_h
            if not np.isfinite(v) or v < -limit or v > 2 * limit:
                raise Rejected("polygon outside its image",
                               f"{where}: coordinate {v:g} with image {image_w}x{image_h}")
