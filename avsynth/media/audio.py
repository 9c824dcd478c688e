"""Audio for the shards: probe, cut a seeded window, downmix, resample to 16 kHz, encode PCM16.

WAV/FLAC/OGG/MP3 are read with soundfile (only the frames of the window are read); ``.mp4``/``.m4a``/
``.mkv``/``.webm`` need PyAV (``pip install av``). Resampling uses soxr (high quality, fixed, so the
same input gives the same samples). Encoded clips are 16-bit PCM WAV or FLAC; both carry no
timestamps, so the same waveform gives the same bytes for a given libsndfile/libFLAC.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from avsynth.errors import SourceError

TARGET_SR = 16000
CONTAINER_SUFFIXES = {".mp4", ".m4a", ".mkv", ".webm", ".mov", ".aac"}  # need PyAV


def probe(path: Path) -> tuple[int, int, int]:
    """(sample_rate, frames, channels) of an audio file; SourceError if it cannot be read."""
    path = Path(path)
    if path.suffix.lower() in CONTAINER_SUFFIXES:
        wave, sr = _decode_container(path)
        return sr, wave.shape[0], wave.shape[1]
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise SourceError(path, f"not a readable audio file ({_why(err)})") from err
    if info.frames <= 0 or info.samplerate <= 0:
        raise SourceError(path, "audio file has no samples")
    return int(info.samplerate), int(info.frames), int(info.channels)


def load_window(path: Path, offset_s: float, seconds: float, target_sr: int = TARGET_SR) -> np.ndarray:
    """Mono float32 samples of ``seconds`` starting at ``offset_s``, resampled to ``target_sr``.

    Reads only the needed frames (soundfile formats), averages channels, resamples with soxr, and
    zero-pads at the end when the file is shorter than the window. The result has exactly
    ``round(seconds * target_sr)`` samples. SourceError (naming the file) when the window holds
    non-finite samples, as :func:`load_clip` for the whole clip.
    """
    path = Path(path)
    if offset_s < 0 or seconds <= 0:
        raise ValueError(f"bad window offset={offset_s} seconds={seconds}")
    if path.suffix.lower() in CONTAINER_SUFFIXES:
        full, sr = _decode_container(path)
        start = int(round(offset_s * sr))
        chunk = full[start : start + int(round(seconds * sr))]
    else:
        try:
            with sf.SoundFile(str(path)) as f:
                sr = int(f.samplerate)
                start = int(round(offset_s * sr))
                if start >= f.frames:
                    chunk = np.zeros((0, f.channels), dtype=np.float32)
                else:
                    f.seek(start)
                    chunk = f.read(int(round(seconds * sr)), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            raise SourceError(path, f"not a readable audio file ({_why(err)})") from err
    mono = to_mono(chunk)
    if not np.all(np.isfinite(mono)):
        raise SourceError(path, "audio has non-finite samples")
    if sr != target_sr and mono.size:
        mono = soxr.resample(mono, sr, target_sr, quality="HQ").astype(np.float32, copy=False)
    return fit_length(mono, int(round(seconds * target_sr)))


def load_clip(path: Path) -> tuple[np.ndarray, int]:
    """The whole clip as mono float32 samples at its own rate: ``(wave, sample_rate)``.

    The length is what actually decodes (a truncated file gives fewer samples than its header
    states). Slicing this wave and resampling gives the same samples as :func:`load_window`.
    SourceError (naming the file) when it does not decode or has non-finite samples, whatever
    the format (soundfile's or a container's).
    """
    path = Path(path)
    if path.suffix.lower() in CONTAINER_SUFFIXES:  # the same checks below as for soundfile formats
        wave, sr = _decode_container(path)
    else:
        try:
            with sf.SoundFile(str(path)) as f:
                sr = int(f.samplerate)
                wave = f.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as err:
            raise SourceError(path, f"not a readable audio file ({_why(err)})") from err
    if sr <= 0:
        raise SourceError(path, "audio file has no sample rate")
    wave = to_mono(wave)
    if not np.all(np.isfinite(wave)):
        raise SourceError(path, "audio has non-finite samples")
    return wave, sr


def window_samples(wave: np.ndarray, sr: int, offset_s: float, seconds: float,
                   target_sr: int = TARGET_SR) -> np.ndarray:
    """The ``seconds`` window at ``offset_s`` of a decoded mono clip, resampled to ``target_sr``
    and zero-padded at the end to exactly ``round(seconds * target_sr)`` samples."""
    start = int(round(offset_s * sr))
    chunk = wave[start : start + int(round(seconds * sr))]
    if sr != target_sr and chunk.size:
        chunk = soxr.resample(chunk, sr, target_sr, quality="HQ").astype(np.float32, copy=False)
    return fit_length(chunk, int(round(seconds * target_sr)))


def to_mono(chunk: np.ndarray) -> np.ndarray:
    """Average a (frames, channels) or (frames,) array to float32 mono."""
    chunk = np.asarray(chunk, dtype=np.float32)
    if chunk.ndim == 2:
        chunk = chunk.mean(axis=1, dtype=np.float32) if chunk.shape[1] > 1 else chunk[:, 0]
    return np.ascontiguousarray(chunk, dtype=np.float32)


def fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Truncate or zero-pad a 1-D wave to exactly ``n`` samples."""
    if wave.shape[0] >= n:
        return wave[:n].copy()
    out = np.zeros(n, dtype=np.float32)
    out[: wave.shape[0]] = wave
    return out


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    """Clip to [-1, 1] and quantise to int16 (round half to even), the stored sample format."""
    w = np.clip(np.asarray(wave, dtype=np.float64), -1.0, 1.0)
    return np.rint(w * 32767.0).astype(np.int16)


def encode_audio(wave: np.ndarray, sr: int, fmt: str = "flac") -> bytes:
    """Encode a mono (or (frames, channels)) float wave as 16-bit PCM FLAC or WAV bytes."""
    fmt = fmt.lower()
    if fmt not in ("flac", "wav"):
        raise ValueError(f"audio format must be 'flac' or 'wav', got {fmt!r}")
    pcm = to_pcm16(wave)
    buf = io.BytesIO()
    sf.write(buf, pcm, int(sr), format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue()


def decode_audio(data: bytes, path: Path | str | None = None) -> tuple[np.ndarray, int]:
    """(mono float32 wave, sample rate) from encoded bytes (FLAC/WAV/OGG); SourceError if corrupt."""
    try:
        wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as err:
        raise SourceError(path, f"not decodable audio ({_why(err)})") from err
    return to_mono(wave), int(sr)


def _decode_container(path: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of a video/audio container with PyAV: (frames, ch), sr."""
    try:
        import av  # PyAV, optional
    except ImportError as err:
        raise SourceError(path, "reading this container needs PyAV/FFmpeg (pip install av)") from err
    try:
        with av.open(str(path)) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                raise SourceError(path, "container has no audio stream")
            stream = streams[0]
            chunks = []
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                if arr.dtype.kind == "i":
                    arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
                arr = arr.astype(np.float32, copy=False)
                if frame.format.is_planar:
                    arr = arr.T  # (ch, n) -> (n, ch)
                else:
                    arr = arr.reshape(-1, len(frame.layout.channels))
                chunks.append(arr)
            sr = int(stream.codec_context.sample_rate)
            # codecs like AAC decode whole frames: drop the padding after the stream's duration
            length = None
            if stream.duration is not None and stream.time_base is not None:
                length = int(round(float(stream.duration * stream.time_base) * sr))
    except SourceError:
        raise
    except Exception as err:  # PyAV raises its own error hierarchy
        raise SourceError(path, f"cannot decode audio: {err}") from err
    if not chunks:
        raise SourceError(path, "audio stream has no samples")
    wave = np.concatenate(chunks, axis=0)
    if length:
        wave = wave[:length]
    return wave, sr


def _why(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[-1] if text else type(err).__name__
