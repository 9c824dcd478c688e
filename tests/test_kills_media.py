"""Focused tests of media/{mix,video,checks,image,audio} written against the survivors of
mutation testing (issue 17, `scripts/mutation.sh media/...`). Every expected value comes from the
construction of the input (constant waves, hand-built frames and files), not from the code."""

from __future__ import annotations

import io
import math
import struct

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avsynth.errors import SourceError
from avsynth.media import audio, checks, image, mix, video

SR = 16000

# ------------------------------------------------------------------------------------------ mix


def test_rms_normalise_scales_to_minus_20_dbfs_and_keeps_silence_silent():
    # constant 0.5 has RMS 0.5; -20 dBFS is an RMS of 10**(-20/20) = 0.1, so every sample -> 0.1
    out = mix.rms_normalise(np.full(100, 0.5, np.float32))
    assert out.dtype == np.float64 and np.allclose(out, 0.1, rtol=1e-12)
    # a sine of amplitude 0.8 has RMS 0.8/sqrt(2); at -6 dBFS (RMS 10**-0.3) the amplitude is
    # 10**-0.3 * sqrt(2)
    t = np.arange(16000) / 16000
    sine = 0.8 * np.sin(2 * np.pi * 100 * t)
    out = mix.rms_normalise(sine, target_dbfs=-6.0)
    assert np.abs(out).max() == pytest.approx(10 ** -0.3 * math.sqrt(2), rel=1e-6)
    # RMS 1e-7 (below the 1e-6 silence threshold) -> zeros, RMS 2e-6 (above) -> scaled to 0.1
    assert not mix.rms_normalise(np.full(10, 1e-7)).any()
    assert np.allclose(mix.rms_normalise(np.full(10, 2e-6)), 0.1)
    empty = mix.rms_normalise(np.zeros(0))
    assert empty.shape == (0,)
    # silent means an RMS *below* 1e-6: a wave of RMS exactly 1e-6 is normalised
    assert np.allclose(mix.rms_normalise(np.full(10, 1e-6)), 0.1)


def test_mix_sums_normalised_windows_with_gains_and_guards_the_peak():
    a = np.full(8, 0.5, np.float32)    # normalised -> +0.1
    b = np.full(10, -0.25, np.float32)  # normalised -> -0.1; two samples longer: cut to 8
    # gains 0 dB and 20*log10(2) dB: 0.1 - 2 * 0.1 = -0.1
    out = mix.mix([a, b], [0.0, 20 * math.log10(2)])
    assert out.dtype == np.float32 and out.shape == (8,)
    assert np.allclose(out, -0.1, atol=1e-7)
    # +20 dB on one window: 0.1 * 10 = 1.0 > 0.99, so the whole sum is scaled to peak 0.99
    loud = mix.mix([a], [20.0])
    assert np.allclose(loud, 0.99, atol=1e-7)
    # +19 dB: 0.1 * 10**(19/20) ~ 0.891 <= 0.99, left alone
    assert np.allclose(mix.mix([a], [19.0]), 0.1 * 10 ** (19 / 20), atol=1e-7)
    # the guard scales the whole sum (ratios kept): two windows at +20 dB and +14 dB
    two = mix.mix([a, -a], [20.0, 14.0])
    expected = 1.0 - 10 ** (14 / 20) * 0.1
    assert np.allclose(two, expected, atol=1e-6)  # 0.498 < 0.99: no guard
    big = mix.mix([a, a], [20.0, 14.0])
    assert np.allclose(big, 0.99, atol=1e-6)


def test_mix_of_empty_windows_is_empty():
    out = mix.mix([np.zeros(0), np.ones(5)], [0.0, -3.0])  # the shortest window sets the length
    assert out.shape == (0,) and out.dtype == np.float32


def test_mix_refuses_missing_or_mismatched_gains():
    with pytest.raises(ValueError, match=r"one gain per wave \(got 0 waves, 0 gains\)"):
        mix.mix([], [])
    with pytest.raises(ValueError, match=r"got 2 waves, 1 gains"):
        mix.mix([np.ones(4), np.ones(4)], [0.0])


# ---------------------------------------------------------------------------------------- video


def _write_video(path, levels, codec="mpeg4", options=None):
    import av

    with av.open(str(path), "w", options=options or {}) as c:
        st = c.add_stream(codec, rate=10)
        st.width, st.height, st.pix_fmt = 32, 16, "yuv420p"
        for lv in levels:  # frame i is uniformly grey at levels[i]
            frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), lv, np.uint8), format="rgb24")
            for pkt in st.encode(frame):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])  # mkv: no frame count in the header
@pytest.mark.parametrize("levels", [[20, 60, 100, 140, 180, 220], [20, 60, 100, 140, 180, 220, 250]])
def test_middle_frame_is_frame_n_over_2(tmp_path, suffix, levels):
    pytest.importorskip("av")
    # 6 or 7 frames: the middle one is index 3 (level 140) for both (n // 2)
    path = tmp_path / f"clip{suffix}"
    _write_video(path, levels)
    frame = video.middle_frame(path)
    assert frame.shape == (16, 32, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
    assert abs(float(frame.mean()) - 140) < 6


def test_middle_frame_errors_name_the_file(tmp_path):
    av = pytest.importorskip("av")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(SourceError, match=r"bad\.mp4.*not a decodable video"):
        video.middle_frame(bad)
    sound = tmp_path / "sound.mp4"  # an audio-only container
    with av.open(str(sound), "w") as c:
        st = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for pkt in st.encode(frame):
            c.mux(pkt)
        for pkt in st.encode(None):
            c.mux(pkt)
    with pytest.raises(SourceError) as err:
        video.middle_frame(sound)
    assert str(err.value) == f"{sound}: container has no video stream"


def test_middle_frame_without_pyav_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(SourceError) as err:
        video.middle_frame(tmp_path / "clip.mp4")
    assert str(err.value) == f"{tmp_path / 'clip.mp4'}: reading a video needs PyAV/FFmpeg (pip install av)"


# --------------------------------------------------------------------------------------- checks


def _noise(seconds, amp=0.1, seed=0):
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def test_rms_dbfs_of_constants_and_its_floor():
    assert checks.rms_dbfs(np.full(10, 0.1)) == pytest.approx(-20.0, abs=1e-9)
    assert checks.rms_dbfs(np.full(10, -0.5)) == pytest.approx(20 * math.log10(0.5), abs=1e-9)
    assert checks.rms_dbfs(np.zeros(0)) == -120.0
    assert checks.rms_dbfs(np.zeros(5)) == -120.0
    assert checks.rms_dbfs(np.full(5, 1e-9)) == -120.0  # -180 dBFS, floored


def test_window_exactly_at_the_end_and_exactly_at_the_threshold_is_kept():
    loud = _noise(10)
    w = checks.choose_window(loud, SR, 7.0, 3.0, key="k")  # [7 s, 10 s) ends at the clip's end
    assert (w.offset_s, w.moved, w.padded) == (7.0, False, False)
    level = checks.rms_dbfs(loud[2 * SR : 5 * SR])
    kept = checks.choose_window(loud, SR, 2.0, 3.0, key="k", min_rms_dbfs=level)  # level >= min
    assert (kept.offset_s, kept.moved, kept.rms_dbfs) == (2.0, False, level)


def test_clip_within_a_millisecond_of_the_window_is_the_whole_clip():
    clip = _noise(3)[: 3 * SR - 10]  # 10 samples (0.6 ms) short of 3 s
    w = checks.choose_window(clip, SR, 0.5, 3.0, key="k")
    assert (w.offset_s, w.padded, w.moved) == (0.0, False, True)
    assert w.rms_dbfs == checks.rms_dbfs(clip)
    assert checks.choose_window(clip, SR, 0.0, 3.0, key="k").moved is False
    with pytest.raises(checks.Rejected) as err:
        checks.choose_window(np.zeros(3 * SR - 10, np.float32), SR, 0.0, 3.0, key="q.wav")
    assert err.value.reason == checks.SILENT_AUDIO
    assert err.value.detail == "q.wav: -120.0 dBFS over the whole clip"
    # 17 samples short (> 1 ms at 16 kHz) is a short clip
    with pytest.raises(checks.Rejected) as err:
        checks.choose_window(_noise(3)[: 3 * SR - 17], SR, 0.0, 3.0, key="s.wav")
    assert err.value.reason == checks.SHORT_AUDIO
    assert err.value.detail == f"s.wav: {(3 * SR - 17) / SR:.3f} s decoded, window 3 s"
    assert str(err.value) == f"audio shorter than window: {err.value.detail}"


def test_padded_short_clip_level_and_moved_flag():
    clip = _noise(1)
    w = checks.choose_window(clip, SR, 0.0, 2.0, key="k", pad_short=True)
    assert (w.offset_s, w.padded, w.moved) == (0.0, True, False)
    # 1 s of the clip + 1 s of zeros: mean square halves, -3.01 dB below the clip's level
    assert w.rms_dbfs == pytest.approx(checks.rms_dbfs(clip) + 10 * math.log10(0.5), abs=1e-6)
    with pytest.raises(checks.Rejected) as err:
        checks.choose_window(np.zeros(SR, np.float32), SR, 0.0, 2.0, key="z.wav", pad_short=True)
    assert err.value.reason == checks.SILENT_AUDIO and err.value.detail.startswith("z.wav: -120.0 dBFS")


def test_loud_window_starts_lie_on_the_10ms_grid_over_the_loud_part():
    wave = _noise(10)
    wave[: 6 * SR] = 0.0  # sound only in [6 s, 10 s)
    starts = checks._loud_starts(wave, SR, 3 * SR, -60.0)
    assert np.all(starts % 160 == 0)  # 10 ms at 16 kHz
    # windows of 3 s with at least 1.5 s of sound start in [4.5 s, 7 s]; the last fits exactly
    assert starts.max() == 7 * SR
    assert abs(starts.min() - 4.5 * SR) <= 0.05 * SR
    assert np.array_equal(starts, np.arange(starts.min(), 7 * SR + 1, 160))
    # the moved window is one of them, chosen by the key: different keys spread over the set
    picks = {checks.choose_window(wave, SR, 1.0, 3.0, key=f"clip{i}").offset_s for i in range(20)}
    assert len(picks) > 5 and all(round(p * SR) in set(starts.tolist()) for p in picks)
    # silent everywhere: no start; a clip shorter than the window: no start
    assert checks._loud_starts(np.zeros(5 * SR, np.float32), SR, 3 * SR, -60.0).size == 0
    assert checks._loud_starts(_noise(2), SR, 3 * SR, -60.0).size == 0
    with pytest.raises(checks.Rejected) as err:
        checks.choose_window(np.zeros(5 * SR, np.float32), SR, 0.0, 3.0, key="n.wav")
    assert err.value.detail == "n.wav: no 3 s window reaches -60 dBFS"


def test_rle_length_parses_pycocotools_strings_and_refuses_malformed_counts():
    from pycocotools import mask as coco_mask

    m = np.zeros((6, 5), np.uint8, order="F")
    m[1:4, 2:4] = 1
    counts = coco_mask.encode(m)["counts"]
    assert checks.rle_length(counts) == 30 and checks.rle_length(counts.decode()) == 30
    assert checks.rle_length([3, 4, 23]) == 30 and checks.rle_length((0, 30)) == 30
    assert checks.rle_length([3, -1, 28]) is None  # negative run
    assert checks.rle_length([3, "x"]) is None and checks.rle_length([None]) is None
    assert checks.rle_length(b"\xff\xfe") is None  # not ASCII
    assert checks.rle_length(30) is None  # neither list nor string
    assert checks.rle_length(" ") is None  # below the alphabet ('0' = 48)
    assert checks.rle_length("\x7f") is None  # above it (48 + 63)
    assert checks.rle_length("P") is None  # "more" bit set on the last char: truncated
    assert checks.rle_length("") == 0
    # hand-encoded, each char = value + 48; from the FOURTH count on a value is a delta to the
    # count two before (pycocotools' rleFrString; its decode of "1234" into a 3x4 mask gives the
    # runs 1, 2, 3, 6 = 0 11 000 111111)
    assert checks.rle_length("123") == 1 + 2 + 3
    assert checks.rle_length("1234") == 1 + 2 + 3 + (4 + 2)
    assert checks.rle_length("5?") == 5 + 15  # '?' = 15: no sign bit (0x10 clear)
    assert checks.rle_length("5@") is None  # '@' = 16: sign bit -> -16


def test_check_rle_messages_name_sizes():
    with pytest.raises(checks.Rejected) as err:
        checks.check_rle([200], 10, 20, 30, 10, "lvis:1:2")
    assert (err.value.reason, err.value.detail) == ("RLE size differs from its image",
                                                    "lvis:1:2: RLE 20x10, image 30x10")
    with pytest.raises(checks.Rejected) as err:
        checks.check_rle(5, 10, 20, 20, 10, "lvis:1:2")
    assert (err.value.reason, err.value.detail) == ("malformed RLE",
                                                    "lvis:1:2: counts are not a COCO RLE string or list")
    with pytest.raises(checks.Rejected) as err:
        checks.check_rle([199], 10, 20, 20, 10, "lvis:1:2")
    assert (err.value.reason, err.value.detail) == ("malformed RLE",
                                                    "lvis:1:2: counts cover 199 pixels, size 20x10 has 200")
    checks.check_rle(["100", 100], "10", "20", 20, 10, "ok")  # numbers as strings are read


def test_check_mask_image_modes_emptiness_and_aspect_tolerance():
    for mode in ("1", "L", "P", "I", "I;16"):
        checks.check_mask_image(mode, (100, 100), 1000, 1000, "oi")
    with pytest.raises(checks.Rejected) as err:
        checks.check_mask_image("LA", (100, 100), 1000, 1000, "oi:m.png")
    assert (err.value.reason, err.value.detail) == ("mask image is not single-channel",
                                                    "oi:m.png: mode LA (expected 1, L or P)")
    for size in ((0, 5), (5, 0)):
        with pytest.raises(checks.Rejected) as err:
            checks.check_mask_image("L", size, 1000, 1000, "oi:m.png")
        assert (err.value.reason, err.value.detail) == ("mask image is empty",
                                                        f"oi:m.png: {size[0]}x{size[1]}")
    # tolerance 0.02 + 1/min side (100 -> 0.03): ratio 1/1.029 passes, 1/1.032 does not
    checks.check_mask_image("L", (100, 100), 1029, 1000, "oi")
    checks.check_mask_image("L", (100, 100), 1000, 1029, "oi")
    with pytest.raises(checks.Rejected) as err:
        checks.check_mask_image("L", (100, 100), 1032, 1000, "oi")
    assert (err.value.reason, err.value.detail) == ("mask aspect ratio differs from its image",
                                                    "oi: mask 100x100, image 1032x1000")
    with pytest.raises(checks.Rejected):
        checks.check_mask_image("L", (100, 100), 1000, 1032, "oi")
    # the slack follows the smallest side of all four: one side of 40 (the others >= 1000) gives
    # 0.02 + 1/40 = 0.045, so a deviation of ~0.025 passes; with 1000 as the smallest side the
    # tolerance would be 0.021 and it would not
    for mask_size, image_size in [((40, 1000), (1025, 25000)), ((1000, 40), (25000, 1025)),
                                  ((1025, 25000), (40, 1000)), ((25000, 1025), (1000, 40))]:
        checks.check_mask_image("L", mask_size, *image_size, "oi")
        with pytest.raises(checks.Rejected):  # the same shapes, the image 20 % wider
            checks.check_mask_image("L", mask_size, round(image_size[0] * 1.2), image_size[1], "oi")
    # a mask one pixel wide or high is not empty
    checks.check_mask_image("1", (1, 2), 10, 20, "oi")
    checks.check_mask_image("1", (2, 1), 20, 10, "oi")


def test_check_polygons_limits_per_axis():
    # image 100 x 80: x in [-100, 200], y in [-80, 160]
    checks.check_polygons([(-100, -80, 200, 160, 0, 0)], 100, 80, "ok")
    for poly, v in [((-100.5, 0), "-100.5"), ((200.5, 0), "200.5"), ((0, -80.5), "-80.5"),
                    ((0, 160.5), "160.5"), ((0, float("nan")), "nan"), ((float("inf"), 0), "inf")]:
        with pytest.raises(checks.Rejected) as err:
            checks.check_polygons([(1, 1, 2, 2), poly], 100, 80, "lvis:3")
        assert err.value.reason == "polygon outside its image"
        assert err.value.detail == f"lvis:3: coordinate {v} with image 100x80"


# ---------------------------------------------------------------------------------------- image


def _jpeg(w=24, h=16, seed=0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _exif_app1(order: bytes, entries) -> bytes:
    """An APP1 "Exif" segment: TIFF header in byte order ``order`` and one IFD0 of ``entries``
    (tag, type, value) with count 1 and the value left-justified in the 4-byte field."""
    e = "<" if order == b"II" else ">"
    ifd = struct.pack(e + "H", len(entries))
    for tag, typ, value in entries:
        field = struct.pack(e + "H", value) + b"\x00\x00" if typ == 3 else struct.pack(e + "I", value)
        ifd += struct.pack(e + "HHI", tag, typ, 1) + field
    tiff = order + struct.pack(e + "H", 42) + struct.pack(e + "I", 8) + ifd + struct.pack(e + "I", 0)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def _insert_after_app0(jpeg: bytes, segment: bytes) -> bytes:
    assert jpeg[2:4] == b"\xff\xe0"  # Pillow writes a JFIF APP0 first
    end = 4 + struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:end] + segment + jpeg[end:]


@pytest.mark.parametrize("order", [b"II", b"MM"])
def test_orientation_rewritten_in_either_byte_order_after_other_segments(order):
    # IFD0: ImageWidth (LONG) first, then Orientation 8 (SHORT): the walk must pass both
    data = _insert_after_app0(_jpeg(), _exif_app1(order, [(0x0100, 4, 24), (0x0112, 3, 8)]))
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == 8
    out = image.image_from_bytes(data)
    assert out.exif_orientation == 8 and not out.reencoded and (out.width, out.height) == (24, 16)
    assert Image.open(io.BytesIO(out.bytes)).getexif().get(0x0112) == 1
    assert len(out.bytes) == len(data) and sum(a != b for a, b in zip(out.bytes, data)) == 1


def test_orientation_left_alone_when_it_cannot_be_rewritten():
    plain = _jpeg()
    assert image.image_from_bytes(plain).bytes == plain  # no EXIF at all
    one = _insert_after_app0(plain, _exif_app1(b"II", [(0x0112, 3, 1)]))
    out = image.image_from_bytes(one)
    assert out.bytes == one and out.exif_orientation == 1
    # orientation stored as a LONG (not the SHORT the standard says): reported, bytes kept
    long_ = _insert_after_app0(plain, _exif_app1(b"MM", [(0x0112, 4, 6)]))
    out = image.image_from_bytes(long_)
    assert out.bytes == long_
    # an EXIF without an orientation tag
    other = _insert_after_app0(plain, _exif_app1(b"II", [(0x0100, 4, 24)]))
    out = image.image_from_bytes(other)
    assert out.bytes == other and out.exif_orientation is None


def test_resize_only_above_max_side_and_never_to_zero():
    data = _jpeg(40, 20)
    same = image.image_from_bytes(data, max_side=40)  # longer side == max_side: pass-through
    assert same.bytes == data and not same.reencoded
    small = image.image_from_bytes(data, max_side=10)
    assert (small.width, small.height) == (10, 5) and small.reencoded
    assert Image.open(io.BytesIO(small.bytes)).size == (10, 5)
    thin = image.image_from_bytes(_jpeg(400, 2), max_side=100)  # 2 * 0.25 = 0.5 -> at least 1 px
    assert (thin.width, thin.height) == (100, 1)


def test_encoded_jpeg_is_baseline_444_without_metadata():
    from PIL import JpegImagePlugin

    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8), "RGB")
    data = image.encode_jpeg(img)
    back = Image.open(io.BytesIO(data))
    assert back.format == "JPEG" and back.mode == "RGB"
    assert not back.info.get("progressive") and not back.info.get("progression")
    assert JpegImagePlugin.get_sampling(back) == 0  # 4:4:4
    assert "exif" not in back.info and "icc_profile" not in back.info
    assert len(image.encode_jpeg(img, quality=50)) < len(data)  # the quality is used


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparency_is_composited_on_black(mode):
    rgba = Image.new("RGBA", (4, 2), (200, 100, 50, 255))
    rgba.putpixel((0, 0), (200, 100, 50, 0))  # fully transparent pixel -> black
    img = rgba if mode == "RGBA" else rgba.convert(mode)
    rgb = image._to_rgb(img)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((0, 0)) == (0, 0, 0)
    assert rgb.getpixel((1, 0)) == img.convert("RGB").getpixel((1, 0))  # opaque pixels unchanged


def test_palette_transparency_and_16_bit_images_become_rgb():
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)
    p.info["transparency"] = 0  # palette index 0 is transparent
    assert image._to_rgb(p).getpixel((0, 0)) == (0, 0, 0) and image._to_rgb(p).getpixel((1, 0)) == (0, 255, 0)
    p.info.pop("transparency")
    assert image._to_rgb(p).getpixel((0, 0)) == (255, 0, 0)
    deep = Image.fromarray(np.array([[0, 1000, 4000]], dtype=np.uint16))  # mode I;16: scaled to its max
    assert deep.mode == "I;16"
    assert [image._to_rgb(deep).getpixel((i, 0))[0] for i in range(3)] == [0, round(1000 * 255 / 4000), 255]
    wide = Image.fromarray(np.array([[0, 20, 100]], dtype=np.int32))  # mode I
    assert [image._to_rgb(wide).getpixel((i, 0))[0] for i in range(3)] == [0, 51, 255]
    black = Image.fromarray(np.zeros((1, 2), dtype=np.uint16))  # all zero: no division by zero
    assert image._to_rgb(black).getpixel((1, 0)) == (0, 0, 0)
    grey = Image.new("L", (1, 1), 77)
    assert image._to_rgb(grey).getpixel((0, 0)) == (77, 77, 77)


def test_png_source_is_reencoded_and_reports_no_orientation(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), (10, 20, 30)).save(buf, format="PNG")
    out = image.image_from_bytes(buf.getvalue(), "x.png")
    assert out.reencoded and out.format == "JPEG" and out.exif_orientation is None and (out.width, out.height) == (6, 4)
    assert image.decode_image_size(buf.getvalue()) == (6, 4)
    with pytest.raises(SourceError, match=r"^x\.png: image file is empty$"):
        image.image_from_bytes(b"", "x.png")
    with pytest.raises(SourceError, match=r"^y\.jpg: not a decodable image \("):
        image.decode_image_size(b"junk", "y.jpg")


def test_mpo_counts_as_jpeg_and_passes_through():
    first = Image.fromarray(np.full((8, 8, 3), 90, np.uint8))
    second = Image.fromarray(np.full((8, 8, 3), 200, np.uint8))
    buf = io.BytesIO()
    first.save(buf, format="MPO", save_all=True, append_images=[second])
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    out = image.image_from_bytes(data)
    assert out.bytes == data and not out.reencoded and out.format == "JPEG"


# ---------------------------------------------------------------------------------------- audio


def test_pcm16_rounds_half_to_even_and_clips():
    scale = 32767.0
    wave = np.array([1.0, -1.0, 2.0, -3.0, 0.5 / scale, 1.5 / scale, 2.5 / scale, -0.5 / scale])
    assert audio.to_pcm16(wave).tolist() == [32767, -32767, 32767, -32767, 0, 2, 2, 0]
    assert audio.to_pcm16(wave).dtype == np.int16


def test_mono_and_length_helpers():
    stereo = np.array([[1.0, 0.0], [0.5, -0.5]], np.float32)
    assert audio.to_mono(stereo).tolist() == [0.5, 0.0]
    assert audio.to_mono(np.array([[0.25], [0.5]])).tolist() == [0.25, 0.5]
    one = audio.to_mono(np.array([0.1, 0.2], np.float64))
    assert one.dtype == np.float32 and one.flags.c_contiguous and one.tolist() == pytest.approx([0.1, 0.2])
    w = np.arange(5, dtype=np.float32)
    cut = audio.fit_length(w, 3)
    assert cut.tolist() == [0, 1, 2]
    cut[0] = 9  # a copy, not a view of the input
    assert w[0] == 0
    padded = audio.fit_length(w, 7)
    assert padded.tolist() == [0, 1, 2, 3, 4, 0, 0] and padded.dtype == np.float32
    assert audio.fit_length(w, 5).tolist() == w.tolist()


def test_window_arguments_and_empty_files_are_errors(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(1600, np.float32), SR)
    for off, sec in [(-0.1, 1.0), (0.0, 0.0), (0.0, -1.0)]:
        with pytest.raises(ValueError, match=f"bad window offset={off} seconds={sec}"):
            audio.load_window(path, off, sec)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    with pytest.raises(SourceError, match=r"empty\.wav: audio file has no samples"):
        audio.probe(empty)


def test_load_clip_and_window_samples_agree_with_the_file(tmp_path):
    t = np.arange(3 * 8000) / 8000
    stereo = np.stack([0.4 * np.sin(2 * np.pi * 300 * t), 0.2 * np.sin(2 * np.pi * 300 * t)], axis=1)
    path = tmp_path / "s.flac"
    sf.write(path, stereo, 8000, subtype="PCM_16")
    wave, sr = audio.load_clip(path)
    assert sr == 8000 and wave.shape == (24000,) and wave.dtype == np.float32
    assert np.abs(wave - stereo.mean(axis=1)).max() < 2 / 32767
    win = audio.window_samples(wave, sr, 1.0, 1.5, target_sr=16000)
    assert win.shape == (24000,)
    assert np.array_equal(win, audio.load_window(path, 1.0, 1.5, target_sr=16000))
    same_rate = audio.window_samples(wave, sr, 0.5, 1.0, target_sr=8000)  # no resampling: a crop
    assert np.array_equal(same_rate, wave[4000:12000])
    tail = audio.window_samples(wave, sr, 2.5, 1.0, target_sr=8000)  # runs past the end: zero-padded
    assert np.array_equal(tail[:4000], wave[20000:]) and not tail[4000:].any()
    assert not audio.window_samples(wave, sr, 5.0, 1.0, target_sr=16000).any()


def test_non_finite_samples_and_unreadable_clips_are_errors(tmp_path):
    bad = tmp_path / "nan.wav"
    sf.write(bad, np.array([0.0, np.nan, 0.1], np.float32), SR, subtype="FLOAT")
    with pytest.raises(SourceError, match=r"nan\.wav: audio has non-finite samples"):
        audio.load_clip(bad)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(SourceError, match=r"junk\.wav: not a readable audio file \(.+\)"):
        audio.load_clip(junk)


def test_encode_audio_formats_and_decode_errors():
    w = np.zeros(160, np.float32)
    assert audio.encode_audio(w, SR, "WAV")[:4] == b"RIFF"
    assert audio.encode_audio(w, SR, "Flac")[:4] == b"fLaC"
    with pytest.raises(ValueError, match="audio format must be 'flac' or 'wav', got 'mp3'"):
        audio.encode_audio(w, SR, "mp3")
    with pytest.raises(SourceError, match=r"^clip\.flac: not decodable audio \(.+: Format not recognised\.\)$"):
        audio.decode_audio(b"junk", "clip.flac")  # libsndfile's reason is passed on
    with pytest.raises(SourceError, match=r"^not decodable audio \("):
        audio.decode_audio(None)
    back, sr = audio.decode_audio(audio.encode_audio(np.full((80, 2), 0.5), 8000, "wav"))
    assert sr == 8000 and back.shape == (80,) and np.allclose(back, 0.5, atol=1e-4)


def test_why_keeps_the_last_line_of_an_error():
    assert audio._why(RuntimeError("first line\nError: the reason")) == "Error: the reason"
    assert audio._why(OSError()) == "OSError"


def test_container_audio_int_samples_and_offsets(tmp_path):
    av = pytest.importorskip("av")
    from fractions import Fraction

    sr = 16000
    path = tmp_path / "tone.mkv"
    # a ramp, not a tone: a window taken at the wrong offset cannot match it by periodicity
    x = (np.linspace(-0.5, 0.5, sr) * 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w") as c:
        st = c.add_stream("pcm_s16le", rate=sr)
        st.layout = "mono"
        for i in range(0, sr, 1000):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + 1000]), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sr, i, Fraction(1, sr)
            for pkt in st.encode(frame):
                c.mux(pkt)
        for pkt in st.encode(None):
            c.mux(pkt)
    assert audio.probe(path) == (sr, sr, 1)
    wave, got_sr = audio.load_clip(path)
    assert got_sr == sr and wave.shape == (sr,)
    assert np.abs(wave - x[0] / 32767).max() < 1e-6  # int16 scaled by 1 / 32767
    win = audio.load_window(path, 0.25, 0.5)
    assert np.array_equal(win, wave[4000:12000])
    no_audio = tmp_path / "video.mp4"
    with av.open(str(no_audio), "w") as c:
        vs = c.add_stream("mpeg4", rate=10)
        vs.width, vs.height, vs.pix_fmt = 16, 16, "yuv420p"
        for pkt in vs.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
            c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
    with pytest.raises(SourceError, match=r"video\.mp4: container has no audio stream"):
        audio.load_clip(no_audio)


def test_checked_window_decodes_checks_and_resamples(tmp_path):
    # 4 s at 8 kHz: silent for 2 s, then noise; the planned window [0.5, 1.5) is silent and moves
    wave = np.zeros(4 * 8000, np.float32)
    wave[2 * 8000:] = 0.1 * np.random.default_rng(2).standard_normal(2 * 8000)
    path = tmp_path / "c.wav"
    sf.write(path, wave, 8000, subtype="FLOAT")
    samples, win = checks.checked_window(path, 0.5, 1.0, target_sr=16000, key="c.wav")
    assert win.moved and 1.5 - 0.05 <= win.offset_s <= 3.0 and not win.padded
    assert win == checks.choose_window(wave, 8000, 0.5, 1.0, key="c.wav")  # the key picks the window
    assert samples.shape == (16000,) and samples.dtype == np.float32
    assert np.array_equal(samples, audio.window_samples(wave, 8000, win.offset_s, 1.0, target_sr=16000))
    kept, w2 = checks.checked_window(path, 2.5, 1.0, target_sr=8000, key="c.wav")
    assert (w2.offset_s, w2.moved) == (2.5, False) and np.array_equal(kept, wave[20000:28000])
    short, w3 = checks.checked_window(path, 0.0, 5.0, target_sr=8000, key="c.wav", pad_short=True)
    assert w3.padded and short.shape == (40000,) and np.array_equal(short[:32000], wave) and not short[32000:].any()
    with pytest.raises(checks.Rejected) as err:
        checks.checked_window(path, 0.0, 5.0, target_sr=8000, key="c.wav")
    assert err.value.reason == checks.SHORT_AUDIO
    with pytest.raises(SourceError, match=r"nope\.wav"):
        checks.checked_window(tmp_path / "nope.wav", 0.0, 1.0, target_sr=8000, key="k")


def test_loud_starts_last_start_fits_exactly_and_threshold_is_absolute():
    # 48,159 samples, window 48,000: only start 0 fits (the next grid start, 160, would not)
    wave = _noise(3)
    wave = np.concatenate([wave, wave[:159]])
    assert checks._loud_starts(wave, SR, 3 * SR, -60.0).tolist() == [0]
    # [0, 5 s) at about -40 dBFS, [5 s, 10 s) at about -10 dBFS; 2 s windows at -30 dBFS: only
    # the loud half counts as non-silent (threshold -30 dB re 1.0, absolute), so the windows with
    # at least 1 s of it start at 4 s ... 8 s
    rng = np.random.default_rng(4)
    two = np.concatenate([10 ** (-40 / 20) * rng.standard_normal(5 * SR),
                          10 ** (-10 / 20) * rng.standard_normal(5 * SR)]).astype(np.float32)
    starts = checks._loud_starts(two, SR, 2 * SR, -30.0)
    assert abs(starts.min() - 4 * SR) <= 0.1 * SR and starts.max() == 8 * SR
    # with the quiet half at -27 dBFS (above -30) every window qualifies
    two[: 5 * SR] *= 10 ** (13 / 20)
    starts = checks._loud_starts(two, SR, 2 * SR, -30.0)
    assert starts.min() == 0 and starts.max() == 8 * SR and starts.size == 8 * 100 + 1


def test_rle_length_alphabet_limits_long_runs_and_a_leading_foreground_pixel():
    from pycocotools import mask as coco_mask

    assert checks.rle_length("o0") == 31  # 'o' = 63: the largest char (continuation, 31)
    assert checks.rle_length("p") is None  # 'p' = 64: outside the alphabet
    big = np.zeros((200, 200), np.uint8, order="F")
    big[150:, 190:] = 1  # runs of tens of thousands: values spread over 3+ chars
    counts = coco_mask.encode(big)["counts"]
    assert len(counts) > 6 and checks.rle_length(counts) == 40_000
    first = np.zeros((3, 4), np.uint8, order="F")
    first[0, 0] = 1  # the first run (background) is empty: a count of 0
    rle = coco_mask.encode(first)
    assert checks.rle_length(rle["counts"]) == 12
    assert checks.rle_length([0, 1, 11]) == 12


def test_rms_dbfs_of_one_sample_and_window_boundaries():
    assert checks.rms_dbfs(np.array([0.5])) == pytest.approx(20 * math.log10(0.5), abs=1e-12)
    # 16 samples short of 3 s at 16 kHz is exactly the 1 ms allowance: the whole clip, not short
    clip = _noise(3)[: 3 * SR - 16]
    w = checks.choose_window(clip, SR, 0.0, 3.0, key="k")
    assert (w.offset_s, w.padded) == (0.0, False)
    level = checks.rms_dbfs(clip)
    # a level exactly at the threshold is loud enough, for the whole clip and for a padded one
    assert checks.choose_window(clip, SR, 0.0, 3.0, key="k", min_rms_dbfs=level).rms_dbfs == level
    short = _noise(1)
    padded = checks.choose_window(short, SR, 1.0, 2.0, key="k", pad_short=True,
                                  min_rms_dbfs=checks.rms_dbfs(short))
    assert padded.padded and padded.moved and padded.offset_s == 0.0  # planned at 1 s: moved to 0
    # a silent clip exactly as long as the window has no loud window at all
    with pytest.raises(checks.Rejected) as err:
        checks.choose_window(np.zeros(3 * SR, np.float32), SR, 0.0, 3.0, key="s.wav")
    assert err.value.detail == "s.wav: no 3 s window reaches -60 dBFS"


def test_loud_starts_follow_each_loud_part_and_the_mean_level():
    # sound in [2 s, 3 s) and [6 s, 7 s) of 10 s; 3 s windows need >= 0.5 s of sound (half the
    # most any window has, 1 s): starts 0 ... 2.5 s and 3.5 ... 6.5 s
    wave = np.zeros(10 * SR, np.float32)
    noise = _noise(10)
    wave[2 * SR : 3 * SR] = noise[2 * SR : 3 * SR]
    wave[6 * SR : 7 * SR] = noise[6 * SR : 7 * SR]
    starts = checks._loud_starts(wave, SR, 3 * SR, -60.0) / SR
    assert starts.min() == 0.0 and abs(starts.max() - 6.5) <= 0.05
    assert not ((starts > 2.5 + 0.05) & (starts < 3.5 - 0.05)).any() and (abs(starts - 3.0) < 0.05).sum() == 0
    # a constant wave just above -30 dBFS: every 2 s window, the first one included
    flat = np.full(4 * SR, 10 ** (-29.99 / 20), np.float32)
    starts = checks._loud_starts(flat, SR, 2 * SR, -30.0)
    assert starts.min() == 0 and starts.max() == 2 * SR and starts.size == 201
    # sound at -29 dBFS in [5 s, 10 s): a 2 s window needs 79.4 % of it to reach -30 dBFS on
    # average (10**-0.1), so the first start is 4.59 s although half coverage would allow 4 s
    half = np.zeros(10 * SR, np.float32)
    half[5 * SR :] = 10 ** (-29 / 20)
    starts = checks._loud_starts(half, SR, 2 * SR, -30.0) / SR
    first = 5 - 2 * (1 - 10 ** -0.1)
    assert abs(starts.min() - first) <= 0.011 and starts.max() == 8.0
    # a loud second at the very start does not lend its energy to later windows
    half[: SR] = 10 ** (-10 / 20)
    starts = checks._loud_starts(half, SR, 2 * SR, -30.0) / SR
    assert not ((starts > 1.0) & (starts < first - 0.011)).any() and abs(starts[starts > 1].min() - first) <= 0.011


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def test_orientation_found_behind_large_xmp_and_table_segments():
    plain = _jpeg()
    exif = _exif_app1(b"MM", [(0x0112, 3, 3)])
    xmp = _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + b"<x:xmpmeta/>")  # another APP1 first
    comment = _segment(0xFE, b"c" * 40_000)  # a segment longer than 32 KiB (length above 0x7FFF)
    data = _insert_after_app0(plain, comment + xmp + exif)
    out = image.image_from_bytes(data)
    assert out.exif_orientation == 3 and Image.open(io.BytesIO(out.bytes)).getexif().get(0x0112) == 1
    assert sum(a != b for a, b in zip(out.bytes, data)) == 1
    # the Exif segment after the quantisation tables (DQT, 0xFFDB), still before the scan
    dqt = plain.index(b"\xff\xdb")
    dqt_end = dqt + 2 + struct.unpack(">H", plain[dqt + 2 : dqt + 4])[0]
    late = plain[:dqt_end] + exif + plain[dqt_end:]
    assert Image.open(io.BytesIO(late)).getexif().get(0x0112) == 3
    out = image.image_from_bytes(late)
    assert Image.open(io.BytesIO(out.bytes)).getexif().get(0x0112) == 1


def test_missing_image_message_and_semi_transparency_on_black(tmp_path):
    with pytest.raises(SourceError) as err:
        image.read_image(tmp_path / "gone.jpg")
    assert str(err.value) == f"{tmp_path / 'gone.jpg'}: cannot read image: No such file or directory"
    # alpha 102 of 255 (40 %) over opaque black: each channel times 0.4
    rgba = Image.new("RGBA", (1, 1), (200, 100, 50, 102))
    assert image._to_rgb(rgba).getpixel((0, 0)) == (80, 40, 20)


@pytest.mark.parametrize("mode,fmt", [("I;16B", ">u2"), ("I;16L", "<u2")])
def test_16_bit_modes_of_either_byte_order_are_scaled_to_their_maximum(mode, fmt):
    img = Image.frombytes(mode, (3, 1), np.array([0, 1000, 4000], dtype=fmt).tobytes())
    assert [image._to_rgb(img).getpixel((i, 0)) for i in range(3)] == [(0, 0, 0), (64, 64, 64), (255, 255, 255)]


def test_image_edge_sizes_orientation_2_and_reencoded_orientation():
    for w, h in ((1, 1), (5, 1), (1, 5)):
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (9, 9, 9)).save(buf, format="PNG")
        assert image.decode_image_size(buf.getvalue()) == (w, h)
    tall = image.image_from_bytes(_jpeg(2, 400), max_side=100)  # 2 * 0.25 = 0.5 -> at least 1 px
    assert (tall.width, tall.height) == (1, 100)
    two = _insert_after_app0(_jpeg(), _exif_app1(b"II", [(0x0112, 3, 2)]))  # orientation 2 (mirrored)
    out = image.image_from_bytes(two)
    assert out.exif_orientation == 2 and out.reencoded is False
    assert Image.open(io.BytesIO(out.bytes)).getexif().get(0x0112) == 1
    big = _insert_after_app0(_jpeg(40, 20), _exif_app1(b"II", [(0x0112, 3, 6)]))
    resized = image.image_from_bytes(big, max_side=20)  # re-encoded: the source's orientation is still reported
    assert resized.reencoded is True and resized.exif_orientation == 6 and (resized.width, resized.height) == (20, 10)
