"""media/audio on real audio in containers, and its error messages (issue 17, the survivors of
`scripts/mutation.sh media/audio`).

The truth is the real VGGSound clip (16 kHz mono PCM16 WAV) read with soundfile: the tests put its
samples into containers with PyAV (lossless FLAC in Matroska; AAC in an MP4 behind a video stream,
as VGGSound's own downloads are) and compare what `load_clip` / `load_window` / `probe` give with
the WAV's samples at the same offset. Error messages are stated in full."""

from __future__ import annotations

import re
import sys
import wave as wavmod
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

from avsynth.errors import SourceError
from avsynth.media import audio

SR = 16000
CLIP = "FwVYUHKoLtQ_000034.wav"


@pytest.fixture(scope="module")
def truth(shared_dir):
    samples, sr = sf.read(shared_dir / "data" / "real" / "vggsound" / CLIP, dtype="int16")
    assert sr == SR and samples.ndim == 1  # 16 kHz mono, as ENVIRONMENT.md states
    return samples


def _mux_audio(path, samples, codec, fmt, *, video_first=False, layout="mono"):
    """Write ``samples`` ([channels, n], in PyAV sample format ``fmt``) as the audio stream of a
    container; with ``video_first`` a 3-frame video stream comes first (stream 0)."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        if video_first:
            vs = c.add_stream("mpeg4", rate=1)
            vs.width, vs.height, vs.pix_fmt = 16, 16, "yuv420p"
        st = c.add_stream(codec, rate=SR)
        st.layout = layout
        if video_first:
            for i in range(3):
                f = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 60 * i, np.uint8), format="rgb24")
                f.pts = i
                for pkt in vs.encode(f):
                    c.mux(pkt)
            for pkt in vs.encode():
                c.mux(pkt)
        step = st.codec_context.frame_size or 1024
        for i in range(0, samples.shape[1], step):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i:i + step]), format=fmt, layout=layout)
            fr.sample_rate, fr.pts, fr.time_base = SR, i, Fraction(1, SR)
            for pkt in st.encode(fr):
                c.mux(pkt)
        for pkt in st.encode(None):
            c.mux(pkt)


def _snr_db(got, ref):
    ref = np.asarray(ref, np.float64)
    return 10 * np.log10((ref ** 2).sum() / ((np.asarray(got, np.float64) - ref) ** 2).sum())


def test_lossless_container_window_at_an_offset_is_the_wav_truth(tmp_path, truth):
    path = tmp_path / "clip.mkv"
    _mux_audio(path, truth.reshape(1, -1), "flac", "s16")
    n = truth.size
    assert audio.probe(path) == (SR, n, 1)
    wave, sr = audio.load_clip(path)
    assert sr == SR and wave.dtype == np.float32 and wave.shape == (n,)
    # PCM16 decodes as int / 32767 (the container path's scale): the integers come back exactly
    assert np.array_equal(np.rint(wave * 32767.0).astype(np.int16), truth)
    start = round(1.37 * SR)  # 21920: 1.37 s into the clip
    win = audio.load_window(path, 1.37, 2.0)
    assert win.shape == (2 * SR,) and win.dtype == np.float32
    assert np.array_equal(np.rint(win * 32767.0).astype(np.int16), truth[start:start + 2 * SR])
    # past the end: the last 0.5 s of the clip (n - 9.5 s), then zeros up to 1 s
    tail = audio.load_window(path, 9.5, 1.0)
    have = n - round(9.5 * SR)
    assert np.array_equal(np.rint(tail[:have] * 32767.0).astype(np.int16), truth[round(9.5 * SR):])
    assert not tail[have:].any() and tail.shape == (SR,)


def test_aac_behind_a_video_stream_window_at_an_offset_matches_the_wav(tmp_path, truth):
    path = tmp_path / "clip.mp4"  # video stream 0, AAC audio stream 1, like a VGGSound download
    _mux_audio(path, (truth.astype(np.float32) / 32768.0).reshape(1, -1), "aac", "fltp", video_first=True)
    sr, frames, channels = audio.probe(path)
    assert (sr, channels) == (SR, 1) and abs(frames - truth.size) < 1024  # within one AAC frame
    ref = truth.astype(np.float64) / 32768.0
    start = round(1.37 * SR)
    win = audio.load_window(path, 1.37, 2.0)
    assert win.shape == (2 * SR,)
    assert _snr_db(win, ref[start:start + 2 * SR]) > 25  # lossy, aligned: measured ~40 dB
    assert _snr_db(win, ref[:2 * SR]) < 3  # ... and not the start of the clip
    wave, sr = audio.load_clip(path)
    assert sr == SR and _snr_db(wave[:truth.size], ref[:wave.size]) > 25


def test_stereo_packed_pcm_in_a_container_is_averaged(tmp_path, truth):
    path = tmp_path / "stereo.mov"  # pcm_s16le stereo decodes packed (interleaved) s16
    both = np.stack([truth, np.zeros_like(truth)])  # left = the clip, right = silence
    _mux_audio(path, np.ascontiguousarray(both.T).reshape(1, -1), "pcm_s16le", "s16", layout="stereo")
    assert audio.probe(path) == (SR, truth.size, 2)
    wave, _ = audio.load_clip(path)
    # mean of (x / 32767, 0) = x / 65534, exact in float32
    assert np.array_equal(np.rint(wave * 65534.0).astype(np.int16), truth)


def test_container_errors_are_one_line_and_name_the_file(tmp_path, monkeypatch):
    av = pytest.importorskip("av")
    nan = tmp_path / "nan.mkv"  # float PCM with a NaN: refused like the same samples in a WAV
    x = np.tile(np.array([0.0, np.nan, 0.1, 0.2], np.float32), 250).reshape(1, -1)
    _mux_audio(nan, x, "pcm_f32le", "flt")
    with pytest.raises(SourceError) as err:
        audio.load_clip(nan)
    assert str(err.value) == f"{nan}: audio has non-finite samples"

    silent = tmp_path / "no_samples.mkv"  # an audio stream is declared, no audio packet follows
    with av.open(str(silent), "w") as c:
        vs = c.add_stream("mpeg4", rate=10)
        vs.width, vs.height, vs.pix_fmt = 16, 16, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=SR)
        a.layout = "mono"
        for pkt in vs.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
            c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
    with pytest.raises(SourceError) as err:
        audio.load_clip(silent)
    assert str(err.value) == f"{silent}: audio stream has no samples"

    junk = tmp_path / "junk.m4a"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(SourceError) as err:
        audio.load_window(junk, 0.0, 1.0)
    assert re.fullmatch(rf"{re.escape(str(junk))}: cannot decode audio: .*Invalid data found when processing input.*",
                        str(err.value))

    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    with pytest.raises(SourceError) as err:
        audio.probe(junk)
    assert str(err.value) == f"{junk}: reading this container needs PyAV/FFmpeg (pip install av)"


def test_soundfile_errors_carry_libsndfile_reason_and_the_file(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio, whatever its name says")
    for call in (lambda: audio.probe(junk), lambda: audio.load_window(junk, 0.0, 1.0), lambda: audio.load_clip(junk)):
        with pytest.raises(SourceError) as err:
            call()
        # "<file>: not a readable audio file (<libsndfile's last line>)", e.g. "... Format not recognised."
        assert re.fullmatch(rf"{re.escape(str(junk))}: not a readable audio file \(.*Format not recognised\.\)",
                            str(err.value)), str(err.value)
    with pytest.raises(SourceError) as err:
        audio.decode_audio(b"junk", "clip.flac")
    assert re.fullmatch(r"clip\.flac: not decodable audio \(.*Format not recognised\.\)", str(err.value))


def test_one_sample_at_one_hertz_is_a_valid_clip(tmp_path):
    path = tmp_path / "one.wav"  # the smallest valid file: 1 frame, 1 Hz (written by the stdlib)
    with wavmod.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1)
        w.writeframes(np.array([16384], "<i2").tobytes())
    assert audio.probe(path) == (1, 1, 1)
    wave, sr = audio.load_clip(path)
    assert sr == 1 and wave.tolist() == [0.5]  # 16384 / 32768 (libsndfile's scale)


def test_pcm16_of_float32_samples_is_the_exactly_rounded_value():
    # for every odd k: the largest float32 x with x * 32767 < k + 1/2 (exactly, in rationals), so
    # the correctly rounded PCM16 value is k; a product rounded to float32 lands on k + 1/2 for
    # about half of them, and half-to-even would then give k + 1
    ks = np.arange(1, 32767, 2)
    xs = np.float32((ks + 0.5) / 32767).astype(np.float32)
    half = [Fraction(float(x)) * 32767 >= k + Fraction(1, 2) for x, k in zip(xs, ks)]
    xs = np.where(half, np.nextafter(xs, np.float32(0)), xs).astype(np.float32)
    assert all(k < Fraction(float(x)) * 32767 < k + Fraction(1, 2) for x, k in zip(xs, ks))
    assert np.array_equal(audio.to_pcm16(xs), ks) and np.array_equal(audio.to_pcm16(-xs), -ks)


def test_a_window_with_non_finite_samples_is_refused_and_names_the_file(tmp_path):
    # load_window (the localization protocol's reader) refuses NaN / inf samples in the window it
    # reads, like load_clip does for the whole clip; a window of finite samples of the same file reads.
    path = tmp_path / "nan.wav"
    x = np.zeros(2 * SR, np.float32)
    x[SR + 10] = np.nan  # inside second 1 only
    x[SR + 20] = np.inf
    sf.write(str(path), x, SR, subtype="FLOAT")
    with pytest.raises(SourceError) as err:
        audio.load_window(path, 1.0, 0.5)
    assert str(err.value) == f"{path}: audio has non-finite samples"
    ok = audio.load_window(path, 0.0, 0.5)
    assert ok.shape == (SR // 2,) and not ok.any()
    pytest.importorskip("av")
    mkv = tmp_path / "nan.mkv"  # the container path refuses it too
    _mux_audio(mkv, x.reshape(1, -1), "pcm_f32le", "flt")
    with pytest.raises(SourceError) as err:
        audio.load_window(mkv, 1.0, 0.5)
    assert str(err.value) == f"{mkv}: audio has non-finite samples"
