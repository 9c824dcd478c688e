"""Mask overlays and contact sheets (PIL): the shared drawing used by ``stats``, the dataset card's
example images and the benchmark reports.

``overlay`` tints the mask's pixels and outlines its boundary; ``captioned`` adds a caption bar
(one line per ``\n``); ``spectrogram_strip`` draws a clip as a small spectrogram; ``tile`` is one
contact-sheet cell (overlay, caption, and the audio's spectrogram when the item has audio);
``contact_sheet`` lays out tiles on a grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]

#: A fixed, high-contrast palette (tab10-like); ``category_color`` cycles through it.
PALETTE: tuple[Color, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (23, 190, 207),
    (188, 189, 34),
    (127, 127, 127),
)
DEFAULT_COLOR: Color = (255, 40, 40)
BACKGROUND: Color = (24, 24, 24)
CAPTION_FG: Color = (240, 240, 240)
SHEET_DIM = 0.45  # background darkening (and greying) on contact sheets and card examples
SHEET_ALPHA = 0.45  # opacity of the object's colour on contact sheets and card examples
STRIP_HEIGHT = 48  # spectrogram strip under a tile, pixels


def category_color(category_id: int) -> Color:
    """The palette colour of a category id (stable across runs)."""
    return PALETTE[int(category_id) % len(PALETTE)]


def _fit_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``mask`` as a bool array of PIL ``size`` (width, height); nearest-neighbour if it differs."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    m = m != 0
    if (m.shape[1], m.shape[0]) != size:
        img = Image.fromarray(m.astype(np.uint8) * 255, mode="L")
        m = np.asarray(img.resize(size, Image.Resampling.NEAREST)) != 0
    return m


def _boundary(m: np.ndarray, width: int = 1) -> np.ndarray:
    """The mask outline: pixels of ``m`` with a 4-neighbour outside ``m``, grown inwards and
    outwards to about ``width`` pixels."""
    padded = np.pad(m, 1, mode="constant", constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & m
    edge = m & ~interior
    for _ in range(max(0, width - 1) // 2 + (width > 1)):
        p = np.pad(edge, 1, mode="constant", constant_values=False)
        edge = edge | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
    return edge


def outline_width(size: tuple[int, int]) -> int:
    """A visible outline width for an image of PIL ``size``: 1 px per ~250 px of the short side."""
    return max(1, round(min(size) / 250))


def overlay(
    image: Image.Image,
    mask: np.ndarray,
    color: Color = DEFAULT_COLOR,
    alpha: float = 0.5,
    dim: float = 0.0,
    outline: int | None = None,
    grey_outside: bool = False,
) -> Image.Image:
    """An RGB copy of ``image`` with ``mask`` (non-zero = object) tinted ``color`` at opacity
    ``alpha`` and outlined in full ``color`` (``outline`` px; default scales with the image).
    ``dim`` darkens the pixels outside the mask by that fraction and ``grey_outside`` turns them
    grey, so the object (the only coloured thing left) stands out. A mask of another size is
    resized (nearest)."""
    if not 0.0 <= alpha <= 1.0 or not 0.0 <= dim <= 1.0:
        raise ValueError(f"alpha and dim must be in [0, 1], got alpha={alpha}, dim={dim}")
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    m = _fit_mask(mask, image.size)
    tint = np.asarray(color, dtype=np.float32)
    out = rgb.copy()
    out[m] = (1.0 - alpha) * rgb[m] + alpha * tint
    if grey_outside:
        out[~m] = (rgb[~m] @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[:, None]
    if dim > 0.0:
        out[~m] *= 1.0 - dim
    out[_boundary(m, outline if outline is not None else outline_width(image.size))] = tint
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode="RGB")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return int(right - left)


def _ellipsize(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` shortened with "..." so that it fits ``width`` pixels."""
    if _text_width(draw, text, font) <= width:
        return text
    while text and _text_width(draw, text + "...", font) > width:
        text = text[:-1]
    return text + "..."


def captioned(image: Image.Image, caption: str, font_size: int = 12) -> Image.Image:
    """``image`` (RGB) with a dark caption bar holding ``caption`` (one line per ``\n``, each
    shortened with "..." to fit) added below it."""
    img = image.convert("RGB")
    font = _font(font_size)
    lines = caption.split("\n")
    line_h = font_size + 4
    bar = font_size + 8 + (len(lines) - 1) * line_h
    out = Image.new("RGB", (img.width, img.height + bar), BACKGROUND)
    out.paste(img, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        text = _ellipsize(draw, line, font, max(1, img.width - 8))
        draw.text((4, img.height + 4 + i * line_h), text, fill=CAPTION_FG, font=font)
    return out


def spectrogram_strip(wave: np.ndarray, sample_rate: int, width: int, height: int = STRIP_HEIGHT,
                      top_db: float = 60.0) -> Image.Image:
    """The clip as a ``width`` x ``height`` spectrogram (time left to right, 0 Hz at the bottom up
    to 8 kHz; magnitude in dB, the loudest ``top_db`` dB mapped onto the magma colour map)."""
    from matplotlib import colormaps

    w = np.asarray(wave, dtype=np.float64).reshape(-1)
    n_fft = 512
    if w.size < n_fft:
        w = np.pad(w, (0, n_fft - w.size))
    hop = max(1, (w.size - n_fft) // max(1, 2 * width - 1))
    frames = np.lib.stride_tricks.sliding_window_view(w, n_fft)[::hop] * np.hanning(n_fft)
    spec = np.abs(np.fft.rfft(frames, axis=1)).T  # [freq, time]
    keep = max(2, int(round(spec.shape[0] * min(1.0, 8000.0 / (sample_rate / 2)))))
    db = 20 * np.log10(np.maximum(spec[:keep], 1e-10))
    level = np.clip((db - (db.max() - top_db)) / top_db, 0.0, 1.0)[::-1]
    rgb = (colormaps["magma"](level)[..., :3] * 255).astype(np.uint8)
    return Image.fromarray(rgb, mode="RGB").resize((width, height), Image.Resampling.BILINEAR)


@dataclass(frozen=True)
class SheetItem:
    """One cell of a contact sheet: an image, an optional mask to overlay, and a caption."""

    image: Image.Image
    mask: np.ndarray | None
    caption: str
    color: Color = DEFAULT_COLOR
    audio: np.ndarray | None = None  # mono wave in [-1, 1]: drawn as a spectrogram strip
    sample_rate: int = 16_000


def _thumbnail(item: SheetItem, thumb: int) -> Image.Image:
    """The item's overlay, scaled to fit a ``thumb`` x ``thumb`` box and centred on it."""
    img = item.image.convert("RGB")
    if item.mask is not None:
        # the outline must survive the downscale to the thumbnail (about 3 px there)
        width = max(outline_width(img.size), round(4 * max(img.size) / thumb))
        img = overlay(img, item.mask, item.color, alpha=SHEET_ALPHA, dim=SHEET_DIM, outline=width,
                      grey_outside=True)
    scale = min(thumb / img.width, thumb / img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    img = img.resize(size, Image.Resampling.BILINEAR)
    cell = Image.new("RGB", (thumb, thumb), BACKGROUND)
    cell.paste(img, ((thumb - size[0]) // 2, (thumb - size[1]) // 2))
    return cell


def tile(item: SheetItem, thumb: int, font_size: int = 12) -> Image.Image:
    """One cell: the overlay fitted in ``thumb`` x ``thumb``, the item's audio as a spectrogram
    strip under it (when it has audio), then the caption."""
    cell = _thumbnail(item, thumb)
    if item.audio is not None:
        strip = spectrogram_strip(item.audio, item.sample_rate, thumb)
        both = Image.new("RGB", (thumb, thumb + 2 + strip.height), BACKGROUND)
        both.paste(cell, (0, 0))
        both.paste(strip, (0, thumb + 2))
        cell = both
    return captioned(cell, item.caption, font_size=font_size)


def contact_sheet(items: Sequence[SheetItem], cols: int = 4, thumb: int = 192,
                  title: str | None = None) -> Image.Image:
    """A grid of ``cols`` columns of ``thumb``-pixel tiles (row-major, in order), under ``title``
    (a caption bar at the top) when given."""
    if cols < 1 or thumb < 16:
        raise ValueError(f"need cols >= 1 and thumb >= 16, got cols={cols}, thumb={thumb}")
    if not items:
        raise ValueError("contact_sheet needs at least one item")
    cells = [tile(it, thumb) for it in items]
    cw, ch = max(c.width for c in cells), max(c.height for c in cells)
    ncols = min(cols, len(cells))
    nrows = -(-len(cells) // ncols)
    gap = 4
    sheet = Image.new(
        "RGB", (ncols * cw + (ncols + 1) * gap, nrows * ch + (nrows + 1) * gap), BACKGROUND
    )
    for i, cell in enumerate(cells):
        r, c = divmod(i, ncols)
        sheet.paste(cell, (gap + c * (cw + gap), gap + r * (ch + gap)))
    if title:
        head = captioned(Image.new("RGB", (sheet.width, 0), BACKGROUND), title, font_size=16)
        full = Image.new("RGB", (sheet.width, head.height + sheet.height), BACKGROUND)
        full.paste(head, (0, 0))
        full.paste(sheet, (0, head.height))
        return full
    return sheet
