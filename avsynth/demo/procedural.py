"""Procedural objects, scenes and sounds for the demo corpora.

Every category index ``k`` of a manifest gets

- an :class:`ObjectStyle`: a shape family, a base colour and a surface pattern, distinct from every
  other category (the (shape, pattern) pair is unique for up to 80 categories, and hues are spread
  by the golden ratio);
- a :class:`SoundStyle`: a source family (harmonic tone, hollow odd-harmonic tone, band of noise,
  siren-like sweep), a pitch slot on a logarithmic grid and an envelope (steady, pulsed, plucked,
  tremolo, bursts) with its rate, so that categories are well apart in a log-mel spectrogram.

Scenes place several objects of *different* categories on a textured background (position, scale,
rotation, colour jitter, a little occlusion); :func:`render_scene` rasterises them with the same
COCO polygon rasteriser (pycocotools) that readers use on the annotations, and returns the visible
polygons of every object. Everything is a pure function of its arguments and the ``numpy``
generator passed in, so the demo corpora are reproducible byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache, lru_cache

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon, box
from shapely.ops import unary_union

SAMPLE_RATE = 16_000
SHAPES = (
    "circle", "square", "triangle", "star5", "hexagon", "cross", "heart", "crescent",
    "diamond", "sunburst", "arrow", "flower", "pentagon", "tee", "gear", "semicircle",
)  # fmt: skip
PATTERNS = ("solid", "stripes", "dots", "checker", "rings")
SOUND_FAMILIES = ("harmonic", "hollow", "noise", "sweep")
ENVELOPES = ("steady", "pulse", "pluck", "tremolo", "bursts")
_GOLDEN = 0.6180339887498949


# ---------------------------------------------------------------------------------------------
# Category identities


@dataclass(frozen=True)
class ObjectStyle:
    """The visual identity of one category: shape family, colours (RGB 0-255) and pattern."""

    shape: str
    pattern: str
    color: tuple[int, int, int]
    secondary: tuple[int, int, int]
    pattern_freq: float  # pattern cycles per object radius
    aspect: float  # width / height of the unit shape before rotation


@dataclass(frozen=True)
class SoundStyle:
    """The acoustic identity of one category (all frequencies in Hz, rates in Hz)."""

    family: str
    pitch: float  # fundamental (tones, sweeps) or centre frequency (noise)
    envelope: str
    rate: float  # envelope rate
    brightness: float  # spectral tilt exponent of the harmonics (larger = darker)
    partials: int  # number of harmonics for tonal families


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return (round(r * 255), round(g * 255), round(b * 255))


def object_style(k: int) -> ObjectStyle:
    """Visual identity of category index ``k`` (deterministic, distinct across categories)."""
    shape = SHAPES[k % len(SHAPES)]
    j = k // len(SHAPES)
    pattern = PATTERNS[(j + k) % len(PATTERNS)]
    hue = (k * _GOLDEN) % 1.0
    sat = (0.95, 0.75, 0.6)[k % 3]
    val = (0.95, 0.8)[(k // 3) % 2]
    color = _hsv_to_rgb(hue, sat, val)
    if k % 2:
        secondary = _hsv_to_rgb(hue, sat * 0.9, val * 0.35)  # dark shade of the same hue
    else:
        secondary = _hsv_to_rgb((hue + 0.5) % 1.0, 0.25, 0.98)  # pale complementary tint
    return ObjectStyle(
        shape=shape,
        pattern=pattern,
        color=color,
        secondary=secondary,
        pattern_freq=(2.0, 3.0, 4.0)[(k // 5) % 3],
        aspect=(1.0, 0.85, 1.15)[(k // 7) % 3],
    )


def sound_style(k: int, n: int) -> SoundStyle:
    """Acoustic identity of category index ``k`` of ``n``: family x pitch slot x envelope."""
    nf = len(SOUND_FAMILIES)
    family = SOUND_FAMILIES[k % nf]
    slots = max(2, math.ceil(n / nf))
    slot = k // nf
    # Pitch grids per family; hollow tones sit half a step between the harmonic ones.
    lo, hi = {
        "harmonic": (150.0, 2400.0),
        "hollow": (175.0, 2800.0),
        "noise": (400.0, 6000.0),
        "sweep": (260.0, 3000.0),
    }[family]
    ratio = (hi / lo) ** (1.0 / (slots - 1))
    # Interleave the slots so that neighbouring categories in the manifest are far apart in pitch.
    order = list(range(0, slots, 2)) + list(range(1, slots, 2))
    g = order[slot % slots]
    fi = k % nf
    # Envelope and timbre depend on (grid position, family) so that the tones of two families
    # whose pitches are neighbours on their grids never share an envelope.
    return SoundStyle(
        family=family,
        pitch=float(lo * ratio**g),
        envelope=ENVELOPES[(2 * g + fi) % len(ENVELOPES)],
        rate=(1.6, 2.5, 3.7, 5.5)[(g + 2 * fi) % 4],
        brightness=(0.8, 1.3, 1.9)[(g + fi) % 3],
        partials=(10, 6, 4)[(2 * g + fi) % 3],
    )


# ---------------------------------------------------------------------------------------------
# Sounds


def _envelope(style: SoundStyle, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rate = style.rate * rng.uniform(0.88, 1.12)
    phase = rng.uniform(0, 1)
    if style.envelope == "steady":
        drift = 0.8 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + phase * 6.28)
        return drift
    if style.envelope == "tremolo":
        return 0.55 + 0.45 * np.sin(2 * np.pi * rate * t + phase * 6.28)
    cyc = (t * rate + phase) % 1.0  # position inside the current period
    if style.envelope == "pulse":
        on = cyc < 0.5
        edge = np.minimum(cyc, np.abs(0.5 - cyc)) * (1.0 / rate)  # seconds to the nearest edge
        ramp = np.clip(edge / 0.01, 0, 1)
        return np.where(on, ramp, 0.0) + 0.03
    if style.envelope == "pluck":
        since = cyc / rate
        return np.exp(-since / (0.35 / rate)) * np.clip(since / 0.004, 0, 1) + 0.02
    # bursts: random on-segments at about `rate` per second, always some sound in any 1 s window
    env = np.full_like(t, 0.03)
    dur = t[-1] + 1.0 / SAMPLE_RATE
    start = 0.0
    while start < dur:
        length = rng.uniform(0.08, 0.35)
        a, b = int(start * SAMPLE_RATE), int(min(dur, start + length) * SAMPLE_RATE)
        if b > a:
            w = np.hanning(b - a + 2)[1:-1]
            env[a:b] = np.maximum(env[a:b], w)
        start += length + rng.exponential(1.0 / rate) * 0.8 + 0.03
    return env


def _tone(f0: np.ndarray | float, t: np.ndarray, style: SoundStyle, rng, odd_only: bool):
    """Sum of harmonics of an (optionally time-varying) fundamental ``f0``.

    The n-th harmonic is Im(z**n * e^(i theta_n)) with z = e^(i phase): one complex product per
    harmonic instead of one sine evaluation.
    """
    if np.ndim(f0) == 0:
        phase0 = 2 * np.pi * float(f0) * t
    else:
        phase0 = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    top = float(np.max(f0))
    z = np.exp(1j * phase0).astype(np.complex64)
    step = 2 if odd_only else 1
    zstep = z * z if odd_only else z
    zn = z.copy()
    out = np.zeros(t.shape, dtype=np.float32)
    count, n = 0, 1
    while count < style.partials and n * top < 7600.0:
        amp = n ** (-style.brightness) * rng.uniform(0.8, 1.2)
        theta = rng.uniform(0, 2 * np.pi)
        out += np.float32(amp * math.cos(theta)) * zn.imag
        out += np.float32(amp * math.sin(theta)) * zn.real
        count += 1
        n += step
        zn *= zstep
    return out


def _band_noise(center: float, octaves: float, n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    with np.errstate(divide="ignore"):
        dist = np.log2(np.maximum(freqs, 1.0) / center)
    spec *= np.exp(-0.5 * (dist / octaves) ** 2)
    out = np.fft.irfft(spec, n)
    return out / (np.std(out) + 1e-9)


@lru_cache(maxsize=1)
def _pink_table() -> np.ndarray:
    """A fixed 32 s buffer of pink (1/f) noise, unit variance; clips take seeded slices of it."""
    n = 32 * SAMPLE_RATE
    spec = np.fft.rfft(np.random.default_rng(20240601).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spec /= np.sqrt(np.maximum(freqs, 20.0))
    out = np.fft.irfft(spec, n)
    return (out / (np.std(out) + 1e-9)).astype(np.float32)


def _pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of pink noise (a seeded, possibly reversed, slice of a fixed table)."""
    table = _pink_table()
    reps = -(-n // len(table)) + 1
    src = np.tile(table, reps) if reps > 1 else table
    start = int(rng.integers(0, len(src) - n + 1))
    seg = src[start : start + n]
    return seg[::-1].copy() if rng.random() < 0.5 else seg.copy()


def synth_sound(
    style: SoundStyle, seconds: float, rng: np.random.Generator, *, variant: int = 0
) -> np.ndarray:
    """One clip of the category sound: float32 mono at 16 kHz, peak about 0.3-0.8.

    Clips of a category differ in pitch (about +-2 %), envelope rate and phase, loudness and the
    quiet pink background noise; ``variant`` (e.g. the index of the VGGSound label of the
    category) nudges the pitch by a few per cent so the labels of one category are not identical.
    """
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    pitch = style.pitch * math.exp(rng.normal(0, 0.015)) * (1.0 + 0.025 * (variant % 3))
    if style.family == "harmonic":
        src = _tone(pitch, t, style, rng, odd_only=False)
    elif style.family == "hollow":
        vib = pitch * (1 + 0.008 * np.sin(2 * np.pi * rng.uniform(4.5, 6.0) * t))
        src = _tone(vib, t, style, rng, odd_only=True)
    elif style.family == "noise":
        src = _band_noise(pitch, 0.22, n, rng)
    else:  # sweep: siren-like glide between two pitches
        glide = rng.uniform(0.35, 0.6)
        f = pitch * (1 + 0.22 * np.sin(2 * np.pi * glide * t + rng.uniform(0, 6.28)))
        src = _tone(f, t, style, rng, odd_only=False)
    src = src / (np.max(np.abs(src)) + 1e-9)
    sig = src * _envelope(style, t, rng)
    sig = sig / (np.max(np.abs(sig)) + 1e-9) * rng.uniform(0.35, 0.8)
    sig += _pink_noise(n, rng) * rng.uniform(0.004, 0.015)
    return np.clip(sig, -1.0, 1.0).astype(np.float32)


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> int16 with rounding (deterministic)."""
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


# ---------------------------------------------------------------------------------------------
# Shapes


def _regular(n: int, r: float = 1.0, start: float = -math.pi / 2) -> list[tuple[float, float]]:
    return [(r * math.cos(start + 2 * math.pi * i / n), r * math.sin(start + 2 * math.pi * i / n))
            for i in range(n)]  # fmt: skip


def _star(points: int, inner: float) -> list[tuple[float, float]]:
    out = []
    for i in range(2 * points):
        r = 1.0 if i % 2 == 0 else inner
        a = -math.pi / 2 + math.pi * i / points
        out.append((r * math.cos(a), r * math.sin(a)))
    return out


def _polar(fn, n: int = 72) -> list[tuple[float, float]]:
    pts = []
    for i in range(n):
        a = 2 * math.pi * i / n
        r = fn(a)
        pts.append((r * math.cos(a), r * math.sin(a)))
    return pts


@cache
def unit_shape(name: str) -> Polygon:
    """The shape family ``name`` as a polygon of radius about 1 centred on the origin (y down)."""
    if name == "circle":
        p = Polygon(_regular(48))
    elif name == "square":
        p = Polygon([(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)])
    elif name == "triangle":
        p = Polygon([(0, -1.0), (0.95, 0.75), (-0.95, 0.75)])
    elif name == "star5":
        p = Polygon(_star(5, 0.45))
    elif name == "hexagon":
        p = Polygon(_regular(6, start=0.0))
    elif name == "cross":
        w = 0.34
        p = unary_union([box(-1, -w, 1, w), box(-w, -1, w, 1)])
    elif name == "heart":
        pts = []
        for i in range(64):
            s = 2 * math.pi * i / 64
            x = 16 * math.sin(s) ** 3
            y = 13 * math.cos(s) - 5 * math.cos(2 * s) - 2 * math.cos(3 * s) - math.cos(4 * s)
            pts.append((x / 17.0, -y / 17.0 + 0.1))
        p = Polygon(pts)
    elif name == "crescent":
        p = Point(0, 0).buffer(1.0, 24).difference(Point(0.5, -0.15).buffer(0.82, 24))
    elif name == "diamond":
        p = Polygon([(0, -1.0), (0.62, 0), (0, 1.0), (-0.62, 0)])
    elif name == "sunburst":
        p = Polygon(_star(8, 0.62))
    elif name == "arrow":
        p = Polygon([(-1, -0.3), (0.15, -0.3), (0.15, -0.75), (1, 0), (0.15, 0.75), (0.15, 0.3),
                     (-1, 0.3)])  # fmt: skip
    elif name == "flower":
        p = Polygon(_polar(lambda a: 0.68 + 0.32 * math.cos(6 * a)))
    elif name == "pentagon":
        p = Polygon(_regular(5))
    elif name == "tee":
        p = unary_union([box(-1, -0.95, 1, -0.35), box(-0.3, -0.95, 0.3, 1.0)])
    elif name == "gear":
        p = Polygon(_polar(lambda a: 1.0 if math.cos(10 * a) > 0 else 0.78, n=160))
    elif name == "semicircle":
        pts = [(math.cos(a), math.sin(a) + 0.2) for a in np.linspace(math.pi, 2 * math.pi, 33)]
        p = Polygon(pts)
    else:
        raise ValueError(f"unknown shape {name!r}")
    if not p.is_valid:
        p = p.buffer(0)
    return p


# ---------------------------------------------------------------------------------------------
# Scenes


@dataclass(frozen=True)
class Placement:
    """One object of a scene: category index, centre, radius (px), rotation (deg) and motion."""

    category: int
    cx: float
    cy: float
    radius: float
    angle: float
    jitter: tuple[float, float]  # (hue-ish colour shift, brightness factor)
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)  # px/frame, px/frame, deg/frame


@dataclass(frozen=True)
class Background:
    """A textured background: a smooth colour field plus a faint pattern and grain."""

    seed: int
    base: tuple[int, int, int]
    kind: str  # "field" | "tiles" | "stripes"


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    background: Background
    placements: tuple[Placement, ...]  # drawing order: later ones occlude earlier ones


@dataclass
class RenderedObject:
    """An object as drawn: its visible polygons (COCO flat lists), bbox xywh and pixel area."""

    category: int
    polygons: list[list[float]]
    bbox: list[float]
    area: float
    visible: np.ndarray = field(repr=False)  # bool HxW


@dataclass
class RenderedScene:
    image: np.ndarray  # uint8 HxWx3
    objects: list[RenderedObject]  # same order as the scene's placements


def placed_polygon(p: Placement, style: ObjectStyle, t: float = 0.0) -> Polygon:
    """The object's polygon in pixel coordinates at frame ``t``."""
    geom = unit_shape(style.shape)
    geom = affinity.scale(geom, p.radius * style.aspect, p.radius, origin=(0, 0))
    geom = affinity.rotate(geom, p.angle + p.velocity[2] * t, origin=(0, 0))
    return affinity.translate(geom, p.cx + p.velocity[0] * t, p.cy + p.velocity[1] * t)


def plan_scene(
    rng: np.random.Generator,
    width: int,
    height: int,
    categories: list[int],
    styles: list[ObjectStyle],
    *,
    radius_frac: tuple[float, float] = (0.11, 0.22),
    max_overlap: float = 0.18,
    motion: float = 0.0,
) -> Scene:
    """Place one object per entry of ``categories`` with little overlap, in random draw order.

    ``max_overlap`` bounds the area shared with any earlier object as a fraction of the smaller
    one (so occlusion stays partial); ``motion`` > 0 gives each object a drift per frame of up to
    that fraction of the image width.
    """
    short = min(width, height)
    placed: list[tuple[Placement, Polygon]] = []
    frame = box(0, 0, width, height)
    for cat in categories:
        style = styles[cat]
        r = short * rng.uniform(*radius_frac)
        best = None
        for attempt in range(40):
            if attempt and attempt % 10 == 0:
                r *= 0.85
            margin = 0.55 * r
            pl = Placement(
                category=cat,
                cx=float(rng.uniform(margin, width - margin)),
                cy=float(rng.uniform(margin, height - margin)),
                radius=float(r),
                angle=float(rng.uniform(-35, 35)),
                jitter=(float(rng.normal(0, 0.04)), float(rng.uniform(0.88, 1.1))),
                velocity=(
                    float(rng.uniform(-motion, motion) * width),
                    float(rng.uniform(-motion, motion) * height),
                    float(rng.uniform(-4, 4) if motion else 0.0),
                ),
            )
            poly = placed_polygon(pl, style).intersection(frame)
            worst = max(
                (poly.intersection(q).area / max(1e-6, min(poly.area, q.area)) for _, q in placed),
                default=0.0,
            )
            if best is None or worst < best[0]:
                best = (worst, pl, poly)
            if worst <= max_overlap:
                break
        placed.append((best[1], best[2]))
    order = rng.permutation(len(placed))
    bg = Background(
        seed=int(rng.integers(0, 2**31 - 1)),
        base=_hsv_to_rgb(float(rng.uniform(0, 1)), float(rng.uniform(0.05, 0.3)),
                         float(rng.uniform(0.35, 0.85))),
        kind=("field", "tiles", "stripes")[int(rng.integers(0, 3))],
    )
    return Scene(width, height, bg, tuple(placed[i][0] for i in order))


def _render_background(bg: Background, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(bg.seed)
    small = rng.normal(0, 22, size=(4, 5, 3)) + np.array(bg.base, dtype=np.float64)
    small = np.clip(small, 0, 255).astype(np.uint8)
    field_ = np.asarray(
        Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32
    )
    xx = np.arange(width, dtype=np.float32)[None, :]
    yy = np.arange(height, dtype=np.float32)[:, None]
    if bg.kind == "tiles":
        s = float(rng.uniform(24, 48))
        tex = (((xx // s) + (yy // s)) % 2) * 2 - 1
        field_ += (tex * np.float32(rng.uniform(4, 9)))[..., None]
    elif bg.kind == "stripes":
        a = rng.uniform(0, math.pi)
        period = rng.uniform(18, 40)
        tex = np.sin((xx * math.cos(a) + yy * math.sin(a)) * np.float32(2 * math.pi / period))
        field_ += (tex * np.float32(rng.uniform(4, 9)))[..., None]
    field_ += rng.standard_normal((height, width, 1), dtype=np.float32) * np.float32(2.0)
    return field_


def _pattern(style: ObjectStyle, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pattern weight in [0, 1] (1 = secondary colour) at object coordinates (u, v) in radii."""
    f = style.pattern_freq
    if style.pattern == "solid":
        return np.zeros_like(u)
    if style.pattern == "stripes":
        return (np.sin(2 * np.pi * f * u) > 0.2).astype(np.float32)
    if style.pattern == "dots":
        gu, gv = (u * f) % 1.0 - 0.5, (v * f) % 1.0 - 0.5
        return ((gu * gu + gv * gv) < 0.09).astype(np.float32)
    if style.pattern == "checker":
        return ((np.floor(u * f) + np.floor(v * f)) % 2).astype(np.float32)
    return (np.sin(2 * np.pi * f * np.sqrt(u * u + v * v)) > 0).astype(np.float32)  # rings


def _rasterise(poly, width: int, height: int) -> tuple[np.ndarray, list[list[float]]]:
    flat = polygons_of(poly)
    if not flat:
        return np.zeros((height, width), dtype=bool), []
    rle = mask_utils.merge(mask_utils.frPyObjects(flat, height, width))
    return mask_utils.decode(rle).astype(bool), flat


def polygons_of(geom) -> list[list[float]]:
    """COCO flat polygons (exterior rings, 2-decimal floats) of a shapely (Multi)Polygon."""
    parts = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    out = []
    for part in parts:
        if not isinstance(part, Polygon) or part.is_empty or part.area < 4.0:
            continue
        ring = list(part.exterior.coords)[:-1]
        if len(ring) < 3:
            continue
        out.append([round(float(c), 2) for xy in ring for c in xy])
    return out


def _paint(canvas: np.ndarray, mask: np.ndarray, p: Placement, style: ObjectStyle, t: float):
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return
    cx, cy = p.cx + p.velocity[0] * t, p.cy + p.velocity[1] * t
    ang = math.radians(p.angle + p.velocity[2] * t)
    dx, dy = (xs - cx) / p.radius, (ys - cy) / p.radius
    u = dx * math.cos(ang) + dy * math.sin(ang)
    v = -dx * math.sin(ang) + dy * math.cos(ang)
    w = _pattern(style, u.astype(np.float32), v.astype(np.float32))[:, None]
    c1 = np.array(style.color, dtype=np.float32)
    c2 = np.array(style.secondary, dtype=np.float32)
    shift, gain = p.jitter
    c1 = np.clip(c1 * gain + shift * 255 * np.array([1, -0.5, -0.5]), 0, 255)
    c2 = np.clip(c2 * gain, 0, 255)
    col = c1 * (1 - w) + c2 * w
    shade = 1.0 + 0.16 * np.clip(-(u + v) * 0.7, -1, 1)  # light from the top left
    canvas[ys, xs] = col * shade[:, None]


def render_scene(scene: Scene, styles: list[ObjectStyle], t: float = 0.0) -> RenderedScene:
    """Draw ``scene`` at frame ``t``: image plus each object's visible polygons and mask."""
    w, h = scene.width, scene.height
    canvas = _render_background(scene.background, w, h)
    frame = box(0, 0, w, h)
    geoms = [placed_polygon(p, styles[p.category], t).intersection(frame)
             for p in scene.placements]  # fmt: skip
    full = []
    for p, g in zip(scene.placements, geoms):
        m, _ = _rasterise(g, w, h)
        _paint(canvas, m, p, styles[p.category], t)
        full.append(m)
    objects = []
    for i, p in enumerate(scene.placements):
        later = [geoms[j] for j in range(i + 1, len(geoms))]
        vis_geom = geoms[i].difference(unary_union(later)) if later else geoms[i]
        vis_geom = vis_geom.buffer(0) if not vis_geom.is_valid else vis_geom
        vis = full[i].copy()
        for j in range(i + 1, len(geoms)):
            vis &= ~full[j]
        flat = polygons_of(vis_geom.simplify(0.35, preserve_topology=True))
        if flat:
            rle = mask_utils.merge(mask_utils.frPyObjects(flat, h, w))
            area = float(mask_utils.area(rle))
            xs_, ys_ = [v for f in flat for v in f[0::2]], [v for f in flat for v in f[1::2]]
            x, y = min(xs_), min(ys_)
            bw, bh = max(xs_) - x, max(ys_) - y
        else:
            area, x, y, bw, bh = 0.0, 0.0, 0.0, 0.0, 0.0
        objects.append(
            RenderedObject(
                category=p.category,
                polygons=flat,
                bbox=[round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                area=area,
                visible=vis,
            )
        )
    image = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return RenderedScene(image=image, objects=objects)


def voc_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """The VOC bit-interleaved colour map (AVSBench-semantic's palette for its 71 classes)."""
    out = []
    for lab in range(n):
        r = g = b = 0
        c, i = lab, 0
        while c:
            r |= ((c >> 0) & 1) << (7 - i)
            g |= ((c >> 1) & 1) << (7 - i)
            b |= ((c >> 2) & 1) << (7 - i)
            i += 1
            c >>= 3
        out.append((r, g, b))
    return out
