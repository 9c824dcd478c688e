"""Image bytes for the shards: JPEG passed through untouched, anything else re-encoded to JPEG.

The stored pixel grid is the coordinate frame of every mask: LVIS/COCO polygons and Open Images
mask PNGs refer to the pixels as they are stored in the file, not as an EXIF-aware viewer would
rotate them. ``read_image`` therefore reports the *stored* size. Because Hugging Face ``datasets``
(and most viewers) apply the EXIF orientation when decoding, a JPEG whose EXIF orientation is not
1 would show rotated against its mask; by default the orientation tag's value is rewritten to 1
(two bytes of metadata; the compressed pixel data is untouched), so every reader sees the stored
pixels. ``ImageData.exif_orientation`` keeps the original value.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from avsynth.errors import SourceError

JPEG_QUALITY = 95
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageData:
    """Encoded image bytes ready for a shard, with the stored pixel size and format."""

    bytes: bytes
    width: int
    height: int
    format: str  # "JPEG" always for shard images
    exif_orientation: int | None = None  # the source file's EXIF orientation, if any
    reencoded: bool = False  # True when the pixels were decoded and encoded again


def read_image(path: Path, max_side: int | None = None, *, neutralize_orientation: bool = True) -> ImageData:
    """Read an image file for a shard.

    JPEG files are passed through byte for byte (after checking that they decode), except that an
    EXIF orientation other than 1 is rewritten to 1 when ``neutralize_orientation`` (see module
    docstring). Other formats (PNG, WebP, ...) are converted to RGB and encoded as JPEG with
    quality 95 (deterministic for a given Pillow/libjpeg). With ``max_side``, an image whose longer
    side exceeds it is resized (bicubic, aspect kept) and re-encoded. Unreadable or corrupt files
    raise :class:`SourceError`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SourceError(path, f"cannot read image: {err.strerror or err}") from err
    return image_from_bytes(data, path, max_side, neutralize_orientation=neutralize_orientation)


def image_from_bytes(
    data: bytes, path: Path | str | None = None, max_side: int | None = None, *, neutralize_orientation: bool = True
) -> ImageData:
    """Same as :func:`read_image` for bytes already in memory; ``path`` only names errors."""
    img = _decode(data, path)
    orientation = _orientation(img)
    width, height = img.size
    is_jpeg = img.format in ("JPEG", "MPO")  # MPO: a JPEG with extra frames appended (cameras)
    needs_resize = max_side is not None and max(width, height) > max_side
    if is_jpeg and not needs_resize:
        out = data
        if neutralize_orientation and orientation not in (None, 1):
            out = _set_orientation_to_1(data) or data
        return ImageData(out, width, height, "JPEG", orientation, reencoded=False)
    rgb = _to_rgb(img)
    if needs_resize:
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = rgb.resize(size, Image.Resampling.BICUBIC)
    return ImageData(encode_jpeg(rgb), rgb.width, rgb.height, "JPEG", orientation, reencoded=True)


def encode_jpeg(img: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """Encode an RGB PIL image as a baseline JPEG, without EXIF or ICC data (deterministic)."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=False, progressive=False, subsampling=0)
    return buf.getvalue()


def decode_image_size(data: bytes, path: Path | str | None = None) -> tuple[int, int]:
    """(width, height) of encoded image bytes as stored (no EXIF rotation); SourceError if corrupt."""
    return _decode(data, path).size


def _decode(data: bytes, path: Path | str | None) -> Image.Image:
    """Open and fully decode ``data`` (so truncated files are caught); SourceError on failure."""
    if not data:
        raise SourceError(path, "image file is empty")
    try:
        img = Image.open(io.BytesIO(data))
        fmt = img.format
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise SourceError(path, f"not a decodable image ({err})") from err
    img.format = fmt
    if img.width < 1 or img.height < 1:
        raise SourceError(path, f"image has no pixels ({img.width}x{img.height})")
    return img


def _orientation(img: Image.Image) -> int | None:
    try:
        value = img.getexif().get(_ORIENTATION_TAG)
    except Exception:  # malformed EXIF: the pixels are still fine; ignore the metadata
        return None
    return int(value) if isinstance(value, int) else None


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB version of any PIL image; transparency is composited on black."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        img = Image.fromarray((arr * (255.0 / hi)).round().astype("uint8"), mode="L")
    return img.convert("RGB")


def _set_orientation_to_1(data: bytes) -> bytes | None:
    """Return ``data`` with the EXIF IFD0 orientation value set to 1, or None if not found.

    Walks the JPEG marker segments up to the first APP1 "Exif" segment, parses its TIFF header
    and IFD0 entries, and rewrites only the orientation SHORT value.
    """
    pos = 2  # after SOI
    n = len(data)
    while pos + 4 <= n and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # EOI / start of scan: no more metadata
            return None
        seg_len = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        body = pos + 4
        if marker == 0xE1 and data[body : body + 6] == b"Exif\x00\x00":
            tiff = body + 6
            order = data[tiff : tiff + 2]
            if order not in (b"II", b"MM"):
                return None
            e = "<" if order == b"II" else ">"
            ifd = tiff + struct.unpack(e + "I", data[tiff + 4 : tiff + 8])[0]
            if ifd + 2 > n:
                return None
            count = struct.unpack(e + "H", data[ifd : ifd + 2])[0]
            for k in range(count):
                entry = ifd + 2 + 12 * k
                if entry + 12 > n:
                    return None
                tag, typ = struct.unpack(e + "HH", data[entry : entry + 4])
                if tag == _ORIENTATION_TAG and typ == 3:  # SHORT
                    out = bytearray(data)
                    out[entry + 8 : entry + 10] = struct.pack(e + "H", 1)
                    return bytes(out)
            return None
        pos = body + seg_len - 2
    return None
