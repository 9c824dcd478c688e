"""Media codecs: images (JPEG pass-through / re-encode), masks (polygon/RLE/PNG), audio windows."""

from __future__ import annotations

import io
import struct
import sys
import zipfile

import numpy as np
import pytest

from avsynth.plan import seeded_offset
import soundfile as sf
from PIL import Image
from pycocotools import mask as coco_mask

from avsynth.errors import SourceError
from avsynth.media import audio, image, mask
from avsynth.sources.records import MaskRef

# ---------------------------------------------------------------------------------------- image


def test_real_jpeg_passes_through_byte_equal(real_dir):
    src = real_dir / "images" / "dog.jpg"
    data = image.read_image(src)
    assert data.bytes == src.read_bytes()
    assert (data.width, data.height) == Image.open(src).size
    assert data.format == "JPEG" and not data.reencoded


def test_png_is_reencoded_to_jpeg_deterministically(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, size=(20, 30, 4), dtype=np.uint8)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    a = image.read_image(tmp_path / "a.png")
    b = image.read_image(tmp_path / "a.png")
    assert a.bytes == b.bytes and a.bytes[:3] == b"\xff\xd8\xff"
    assert (a.width, a.height) == (30, 20) and a.reencoded
    assert Image.open(io.BytesIO(a.bytes)).mode == "RGB"


def test_max_side_resizes_jpeg(real_dir):
    data = image.read_image(real_dir / "images" / "truck.jpg", max_side=300)
    assert max(data.width, data.height) == 300 and data.reencoded
    assert Image.open(io.BytesIO(data.bytes)).size == (data.width, data.height)
    assert data.bytes == image.read_image(real_dir / "images" / "truck.jpg", max_side=300).bytes


@pytest.mark.parametrize("payload", [b"", b"not an image at all", None])
def test_corrupt_images_raise_source_error(tmp_path, real_dir, payload):
    path = tmp_path / "bad.jpg"
    if payload is None:  # a truncated real JPEG
        payload = (real_dir / "images" / "dog.jpg").read_bytes()[:2000]
    path.write_bytes(payload)
    with pytest.raises(SourceError, match="bad.jpg"):
        image.read_image(path)


def test_missing_image_raises_source_error(tmp_path):
    with pytest.raises(SourceError, match="missing.jpg"):
        image.read_image(tmp_path / "missing.jpg")


def _with_orientation(jpeg: bytes, value: int) -> bytes:
    """Insert a little-endian EXIF APP1 with IFD0 Orientation=value after SOI."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, value, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    body = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def test_exif_orientation_is_neutralised_and_reported(real_dir, tmp_path):
    raw = (real_dir / "images" / "dog.jpg").read_bytes()
    rotated = _with_orientation(raw, 6)
    path = tmp_path / "rot.jpg"
    path.write_bytes(rotated)
    assert Image.open(path).getexif().get(0x0112) == 6
    data = image.read_image(path)
    assert data.exif_orientation == 6
    assert (data.width, data.height) == (800, 534)  # stored size, not the rotated view
    assert Image.open(io.BytesIO(data.bytes)).getexif().get(0x0112) == 1
    assert len(data.bytes) == len(rotated)
    diff = [i for i, (x, y) in enumerate(zip(data.bytes, rotated, strict=True)) if x != y]
    assert len(diff) == 1  # only the orientation value changed
    kept = image.read_image(path, neutralize_orientation=False)
    assert kept.bytes == rotated


# ----------------------------------------------------------------------------------------- mask


def test_polygon_png_roundtrip_equals_pycocotools():
    polys = ((5.5, 3.0, 40.0, 4.0, 30.0, 25.0, 8.0, 20.0), (50.0, 10.0, 60.0, 10.0, 55.0, 20.0))
    w, h = 64, 32
    m = mask.rasterize(MaskRef(polygons=polys), w, h)
    ref = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects([list(p) for p in polys], h, w))).astype(bool)
    assert m.shape == (h, w) and m.dtype == bool
    assert np.array_equal(m, ref) and m.sum() > 100
    png = mask.encode_png(m)
    assert png == mask.encode_png(m.copy())
    assert Image.open(io.BytesIO(png)).mode == "1"
    assert np.array_equal(mask.decode_png(png), m)


def test_degenerate_polygons_give_empty_mask_and_odd_is_an_error():
    assert not mask.rasterize(MaskRef(polygons=((1.0, 1.0, 5.0, 5.0),)), 10, 10).any()
    with pytest.raises(SourceError, match="odd"):
        mask.rasterize(MaskRef(polygons=((1.0, 1.0, 5.0, 5.0, 3.0),)), 10, 10)


def test_rle_compressed_and_resized():
    m = np.zeros((20, 30), dtype=bool)
    m[5:15, 10:20] = True
    rle = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
    ref = MaskRef(rle=((20, 30), rle["counts"].decode()))
    assert np.array_equal(mask.rasterize(ref, 30, 20), m)
    big = mask.rasterize(ref, 60, 40)
    assert big.shape == (40, 60) and big.sum() == 4 * m.sum()


def test_uncompressed_rle_counts():
    # 2x3 mask in column-major order: 1 zero, 3 ones, 2 zeros
    got = mask.rasterize(MaskRef(rle=((2, 3), [1, 3, 2])), 3, 2)
    assert got.tolist() == [[False, True, False], [True, True, False]]


def test_png_from_zip_member_resized_nearest(tmp_path):
    small = np.zeros((10, 16), dtype=np.uint8)
    small[2:6, 4:12] = 255
    buf = io.BytesIO()
    Image.fromarray(small, "L").save(buf, format="PNG")
    archive = tmp_path / "train-masks-a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a0b1_m0k_abc.png", buf.getvalue())
    got = mask.rasterize(MaskRef(png=archive, png_member="a0b1_m0k_abc.png"), 32, 20)
    assert got.shape == (20, 32)
    expected = np.kron(small != 0, np.ones((2, 2), dtype=bool))
    assert np.array_equal(got, expected)
    with pytest.raises(SourceError, match="no member"):
        mask.rasterize(MaskRef(png=archive, png_member="nope.png"), 32, 20)


def test_palette_and_rgb_masks_nonzero_is_foreground(tmp_path):
    p = Image.new("P", (4, 2), 0)
    p.putpixel((1, 0), 3)
    p.save(tmp_path / "p.png")
    rgb = Image.new("RGB", (4, 2), (0, 0, 0))
    rgb.putpixel((2, 1), (0, 0, 9))
    rgb.save(tmp_path / "rgb.png")
    assert mask.rasterize(MaskRef(png=tmp_path / "p.png"), 4, 2).sum() == 1
    assert mask.rasterize(MaskRef(png=tmp_path / "rgb.png"), 4, 2)[1, 2]


def test_corrupt_png_raises_source_error(tmp_path):
    (tmp_path / "m.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(SourceError, match="m.png"):
        mask.rasterize(MaskRef(png=tmp_path / "m.png"), 4, 4)


def test_mask_stats_and_union():
    a = np.zeros((10, 20), dtype=bool)
    a[2:4, 5:10] = True
    b = np.zeros((10, 20), dtype=bool)
    b[8, 19] = True
    area, bbox = mask.mask_stats(a)
    assert area == pytest.approx(10 / 200)
    assert bbox == pytest.approx((5 / 20, 2 / 10, 5 / 20, 2 / 10))
    u = mask.union([a, b])
    assert u.sum() == 11
    assert mask.mask_stats(u)[1] == pytest.approx((0.25, 0.2, 0.75, 0.7))
    assert mask.mask_stats(np.zeros((3, 3), bool)) == (0.0, (0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError):
        mask.union([a, np.zeros((3, 3), bool)])


# ---------------------------------------------------------------------------------------- audio


def _stereo_44k(path, seconds=2.0):
    sr = 44100
    t = np.arange(int(seconds * sr)) / sr
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.25 * np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([left, right], axis=1), sr, subtype="PCM_16")
    return sr


def test_window_resamples_44k_stereo_to_16k_mono(tmp_path):
    path = tmp_path / "tone.wav"
    _stereo_44k(path)
    assert audio.probe(path) == (44100, 88200, 2)
    w = audio.load_window(path, 0.5, 1.0)
    assert w.dtype == np.float32 and w.shape == (16000,)
    # downmix of 0.5 and 0.25 amplitude tones = 0.375 amplitude 440 Hz tone
    assert np.abs(w[100:-100]).max() == pytest.approx(0.375, abs=0.01)
    spectrum = np.abs(np.fft.rfft(w))
    assert np.argmax(spectrum) * 16000 / w.size == pytest.approx(440, abs=2)


def test_window_pads_short_clip(tmp_path):
    path = tmp_path / "short.flac"
    sf.write(path, np.full(8000, 0.5, dtype=np.float32), 16000, subtype="PCM_16")
    w = audio.load_window(path, 0.25, 1.0)
    assert w.shape == (16000,)
    assert np.allclose(w[:4000], 0.5, atol=1e-3) and not w[4000:].any()
    assert not audio.load_window(path, 5.0, 1.0).any()


def test_real_vggsound_clip(real_dir):
    path = real_dir / "vggsound" / "FwVYUHKoLtQ_000034.wav"
    sr, frames, ch = audio.probe(path)
    assert sr == 16000 and ch == 1 and frames >= 159000
    off = seeded_offset("FwVYUHKoLtQ_000034", 0, 3.0)
    w = audio.load_window(path, off, 3.0)
    full, _ = sf.read(path, dtype="float32")
    start = round(off * 16000)
    assert np.array_equal(w, full[start : start + 48000])  # 16 kHz mono: a pure crop
    data = audio.encode_audio(w, 16000)
    assert data[:4] == b"fLaC" and data == audio.encode_audio(w, 16000)
    back, back_sr = audio.decode_audio(data)
    assert back_sr == 16000 and np.abs(back - w).max() <= 1 / 32767 + 1e-7


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_encode_is_deterministic_pcm16_and_clips(fmt):
    w = np.linspace(-1.5, 1.5, 4000, dtype=np.float32)
    a = audio.encode_audio(w, 16000, fmt)
    assert a == audio.encode_audio(w.copy(), 16000, fmt)
    info = sf.info(io.BytesIO(a))
    assert info.subtype == "PCM_16" and info.samplerate == 16000 and info.frames == 4000
    back, _ = audio.decode_audio(a)
    assert back.max() == pytest.approx(1.0, abs=1e-4) and back.min() == pytest.approx(-1.0, abs=1e-4)


def test_corrupt_audio_raises_source_error(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(SourceError, match="bad.wav"):
        audio.probe(path)
    with pytest.raises(SourceError, match="bad.wav"):
        audio.load_window(path, 0.0, 1.0)
    with pytest.raises(SourceError):
        audio.decode_audio(b"garbage")


def _write_aac_mp4(path, sr=44100, seconds=2.0):
    import av
    from fractions import Fraction

    t = np.arange(int(seconds * sr)) / sr
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 440 * t)]).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=sr)
        stream.layout = "stereo"
        for i in range(0, x.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + 1024]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = sr, i, Fraction(1, sr)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_mp4_audio_via_pyav(tmp_path):
    pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    _write_aac_mp4(path)
    assert audio.probe(path) == (44100, 88200, 2)
    w = audio.load_window(path, 0.5, 1.0)
    assert w.shape == (16000,) and w.dtype == np.float32
    assert np.abs(w[1000:-1000]).max() == pytest.approx(0.375, abs=0.03)
    assert np.argmax(np.abs(np.fft.rfft(w))) * 16000 / w.size == pytest.approx(440, abs=2)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(SourceError, match="bad.mp4"):
        audio.load_window(bad, 0.0, 1.0)


def test_mp4_without_pyav_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` fail as if not installed
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(SourceError, match="PyAV"):
        audio.load_window(path, 0.0, 1.0)
