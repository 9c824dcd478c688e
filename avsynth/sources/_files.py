"""Small file-system helpers shared by the source readers (directory indexes, header probes).

Readers never ``stat`` once per row: they list each directory once (``os.scandir``) and look names
up in memory. Image and audio headers are probed only for rows that were selected.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from avsynth.errors import SourceError


class DirIndex:
    """The plain files directly inside a directory, listed once. A missing directory is empty."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._names: set[str] | None = None

    @property
    def names(self) -> set[str]:
        if self._names is None:
            self._names = set()
            try:
                with os.scandir(self.directory) as it:
                    for entry in it:
                        if entry.is_file():
                            self._names.add(entry.name)
            except (FileNotFoundError, NotADirectoryError):
                pass
        return self._names

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def path(self, name: str) -> Path | None:
        """``directory / name`` when that file exists, else None."""
        return self.directory / name if name in self.names else None


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header, or None when it is not a readable image."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None
    return (int(w), int(h)) if w > 0 and h > 0 else None


def decode_mask(data: bytes | Path) -> np.ndarray | None:
    """A mask PNG (path or bytes) as a boolean array (non-zero = foreground); None if unreadable."""
    try:
        src = io.BytesIO(data) if isinstance(data, bytes) else data
        with Image.open(src) as im:
            im.load()
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None
    if arr.ndim == 3:
        arr = arr[..., :3].any(axis=-1) if arr.shape[-1] >= 3 else arr[..., 0]
    return arr != 0


def mask_box_area(
    mask: np.ndarray, width: int, height: int
) -> tuple[tuple[float, float, float, float], float] | None:
    """Bounding box (xywh) and area of a boolean mask, in the pixel frame of a width x height image.

    A mask whose resolution differs from the image's is measured in its own frame and scaled (the
    rasteriser resizes it with nearest-neighbour). Returns None for an empty mask.
    """
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    mh, mw = mask.shape[:2]
    sx, sy = width / mw, height / mh
    x0, x1 = float(xs.min()) * sx, float(xs.max() + 1) * sx
    y0, y1 = float(ys.min()) * sy, float(ys.max() + 1) * sy
    return (x0, y0, x1 - x0, y1 - y0), float(xs.size) * sx * sy


def open_text(path: Path, what: str):
    """Open a UTF-8 text file (streamed) for csv reading, with a clear SourceError if it is missing,
    empty or evidently not text. Decoding errors later in the file surface from ``csv_rows``."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(path, f"{what} not found")
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError as err:
        raise SourceError(path, f"cannot read {what}: {err.strerror or err}") from None
    if not head.strip():
        raise SourceError(path, f"{what} is empty")
    if b"\x00" in head:
        raise SourceError(path, f"{what} contains NUL bytes; it is not a CSV text file")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not just a multi-byte character cut at the boundary
            raise SourceError(
                path, f"{what} is not UTF-8 text (byte {err.start}); it is not a CSV text file"
            ) from None
    return open(path, encoding="utf-8-sig", newline="")


def csv_rows(path: Path, what: str):
    """Yield ``(line_number, fields)`` of a CSV file (quoted fields with commas handled).

    Raises SourceError naming the file when it is missing, empty, not text, or undecodable.
    """
    fh = open_text(path, what)
    reader = csv.reader(fh)
    try:
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise SourceError(path, f"malformed CSV at line {reader.line_num}: {err}") from None
            yield reader.line_num, fields
    except UnicodeDecodeError as err:
        raise SourceError(
            path, f"{what} is not UTF-8 text near line {reader.line_num}: {err.reason}"
        ) from None
    finally:
        fh.close()
