"""Instance masks: rasterise polygons / RLE / PNG sources, encode and decode 1-bit PNGs, stats.

A mask is a 2-D ``numpy.ndarray`` of ``bool`` with shape ``(height, width)`` of the image it
belongs to (the image's stored pixel grid).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as coco_mask

from avsynth.errors import SourceError
from avsynth.sources.records import MaskRef

PNG_COMPRESS_LEVEL = 6


def rasterize(mask: MaskRef, width: int, height: int) -> np.ndarray:
    """Rasterise a :class:`MaskRef` to a bool array of shape ``(height, width)``.

    Polygons are in absolute pixels of the ``width`` x ``height`` image (pycocotools, as COCO/LVIS
    do). RLE and PNG masks of another size are resized to the image with nearest-neighbour.
    """
    if width < 1 or height < 1:
        raise ValueError(f"bad mask size {width}x{height}")
    if mask.polygons is not None:
        return _from_polygons(mask.polygons, width, height)
    if mask.rle is not None:
        (h, w), counts = mask.rle
        return resize_nearest(_from_rle(counts, int(h), int(w)), width, height)
    return resize_nearest(read_png_mask(mask.png, mask.png_member), width, height)


def rasterize_checked(mask: MaskRef, width: int, height: int, where: str) -> np.ndarray:
    """:func:`rasterize` after the build-time checks of :mod:`avsynth.media.checks`: polygons
    within the image, an RLE of the image's size whose counts cover it exactly, a single-channel
    mask image of the image's aspect ratio. Raises ``Rejected`` (a counted skip) or SourceError."""
    from avsynth.media.checks import check_mask_image, check_polygons, check_rle

    if mask.polygons is not None:
        check_polygons(mask.polygons, width, height, where)
        return rasterize(mask, width, height)
    if mask.rle is not None:
        (h, w), counts = mask.rle
        check_rle(counts, h, w, width, height, where)
        return rasterize(mask, width, height)
    data = _png_bytes(Path(mask.png), mask.png_member)
    name = f"{mask.png}!{mask.png_member}" if mask.png_member else str(mask.png)
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode, size = img.mode, img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise SourceError(name, f"not a decodable mask image ({err})") from err
    check_mask_image(mode, size, width, height, f"{where} ({name})")
    return resize_nearest(decode_png(data, name), width, height)


def _from_polygons(polygons: Sequence[Sequence[float]], width: int, height: int) -> np.ndarray:
    polys = []
    for poly in polygons:
        coords = [float(v) for v in poly]
        if len(coords) % 2:
            raise SourceError(None, f"polygon has an odd number of coordinates ({len(coords)})")
        if len(coords) >= 6:  # fewer than 3 points has no area (and 4 values would read as a box)
            polys.append(coords)
    if not polys:
        return np.zeros((height, width), dtype=bool)
    rles = coco_mask.frPyObjects(polys, height, width)
    return coco_mask.decode(coco_mask.merge(rles)).astype(bool)


def _from_rle(counts, h: int, w: int) -> np.ndarray:
    """Decode a COCO RLE: compressed (str/bytes counts) or uncompressed (list of ints)."""
    try:
        if isinstance(counts, (list, tuple)):
            rle = coco_mask.frPyObjects({"size": [h, w], "counts": [int(c) for c in counts]}, h, w)
        else:
            rle = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        out = coco_mask.decode(rle)
    except Exception as err:  # pycocotools raises bare exceptions on malformed counts
        raise SourceError(None, f"malformed RLE mask of size {h}x{w}: {err}") from err
    if out.ndim == 3:
        out = out.max(axis=2)
    return out.astype(bool)


def read_png_mask(path: Path, member: str | None = None) -> np.ndarray:
    """Read a mask PNG from a file, or from ``member`` inside the zip archive at ``path``."""
    path = Path(path)
    name = f"{path}!{member}" if member else path
    return decode_png(_png_bytes(path, member), name)


def _png_bytes(path: Path, member: str | None) -> bytes:
    try:
        if member is None:
            return path.read_bytes()
        with zipfile.ZipFile(path) as zf:
            return zf.read(member)
    except KeyError as err:
        raise SourceError(path, f"zip archive has no member {member!r}") from err
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as err:
        raise SourceError(path, f"cannot read mask: {err}") from err


def decode_png(data: bytes, path: Path | str | None = None) -> np.ndarray:
    """Decode mask image bytes to a bool array: non-zero pixel values are foreground.

    For palette images the palette index is the value (index 0 = background); for RGB(A) images
    a pixel is foreground when any colour channel is non-zero.
    """
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise SourceError(path, f"not a decodable mask image ({err})") from err
    if img.mode == "1":
        return np.asarray(img, dtype=bool).copy()
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA" if img.mode != "LA" else "LA")
        arr = np.asarray(img)[..., :-1]
    else:
        arr = np.asarray(img)
    if arr.ndim == 3:
        return arr.any(axis=2)
    return arr != 0


def encode_png(mask: np.ndarray) -> bytes:
    """Encode a bool mask as a 1-bit PNG (same bytes for the same mask and zlib)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, got shape {mask.shape}")
    img = Image.fromarray(mask.astype(bool), mode=None)
    if img.mode != "1":
        img = img.convert("1")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def resize_nearest(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a bool mask to ``(height, width)`` with nearest-neighbour (no-op if equal)."""
    if mask.shape == (height, width):
        return mask
    img = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    return np.asarray(img.resize((width, height), Image.Resampling.NEAREST)) != 0


def mask_stats(mask: np.ndarray) -> tuple[float, tuple[float, float, float, float]]:
    """(area fraction, bbox as normalised xywh) of a bool mask; an empty mask gives zeros.

    The box spans whole pixels: x = first column / W, w = (last - first + 1) / W (same for y).
    """
    h, w = mask.shape
    area = float(np.count_nonzero(mask)) / float(h * w)
    if area == 0.0:
        return 0.0, (0.0, 0.0, 0.0, 0.0)
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    x0, x1, y0, y1 = int(cols[0]), int(cols[-1]), int(rows[0]), int(rows[-1])
    return area, (x0 / w, y0 / h, (x1 - x0 + 1) / w, (y1 - y0 + 1) / h)


def union(masks: Iterable[np.ndarray]) -> np.ndarray:
    """Pixel-wise OR of masks of one shape (the category mask of several instances)."""
    masks = list(masks)
    if not masks:
        raise ValueError("union of no masks")
    shape = masks[0].shape
    for m in masks[1:]:
        if m.shape != shape:
            raise ValueError(f"mask shapes differ: {shape} vs {m.shape}")
    return np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])
