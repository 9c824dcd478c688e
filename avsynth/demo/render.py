"""Rendering a demo corpus's jobs: :class:`RenderContext` and one renderer per job kind, each a
pure function of (context, job) that draws with :mod:`avsynth.demo.procedural` and writes its own
JPEG / PNG / WAV files; :func:`render_chunk` is what runs on :mod:`avsynth.engines`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from avsynth.demo import procedural as proc
from avsynth.demo.layout import AvsImageJob, CatInfo, ClipJob, DemoLayout, ImageJob, OIImageJob, VideoJob

SR = proc.SAMPLE_RATE
JPEG_QUALITY = 90


@dataclass(frozen=True)
class RenderContext:
    """What rendering one job needs besides the job itself (small: it travels with every task)."""

    seed: int
    cats: tuple[CatInfo, ...]
    n_styles: int

    @classmethod
    def of(cls, layout: DemoLayout) -> RenderContext:
        return cls(layout.seed, layout.cats, layout.n_styles)


# ---------------------------------------------------------------------------------------------
# Workers: each job is a pure function of (layout, job) and writes its own files


_KIND = {"image": 1, "clip": 2, "video": 3, "avs_image": 4, "avs_audio": 5, "oi_image": 6}


def job_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _KIND[kind], index])


@lru_cache(maxsize=4)
def _object_styles(n_styles: int) -> list[proc.ObjectStyle]:
    return [proc.object_style(k) for k in range(n_styles)]


@lru_cache(maxsize=4)
def _sound_styles(n: int) -> list[proc.SoundStyle]:
    return [proc.sound_style(k, n) for k in range(n)]


def _jpeg(path: Path, image: np.ndarray) -> int:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=JPEG_QUALITY)
    data = buf.getvalue()
    path.write_bytes(data)
    return len(data)


def write_png(path: Path, array: np.ndarray) -> int:
    data = png_bytes(array)
    path.write_bytes(data)
    return len(data)


def _wav(path: Path, audio: np.ndarray) -> int:
    buf = io.BytesIO()
    sf.write(buf, proc.to_pcm16(audio), SR, format="WAV", subtype="PCM_16")
    data = buf.getvalue()
    path.write_bytes(data)
    return len(data)


def _clip_audio(ctx: RenderContext, category: int, seconds: float, rng, variant: int) -> np.ndarray:
    n = len(ctx.cats)
    if category < 0:  # a label outside the manifest: a quiet wash of noise
        x = proc._pink_noise(int(seconds * SR), rng) * 0.05
        return np.clip(x, -1, 1).astype(np.float32)
    return proc.synth_sound(_sound_styles(n)[category], seconds, rng, variant=variant)


def _run_image(root: Path, ctx: RenderContext, job: ImageJob) -> tuple[int, list[dict]]:
    rng = job_rng(ctx.seed, "image", job.index)
    styles = _object_styles(ctx.n_styles)
    scene = proc.plan_scene(rng, job.width, job.height, list(job.categories), styles)
    out = proc.render_scene(scene, styles)
    nbytes = _jpeg(root / "coco" / job.folder / f"{job.image_id:012d}.jpg", out.image)
    anns = [
        {"category": o.category, "segmentation": o.polygons, "bbox": o.bbox, "area": o.area}
        for o in out.objects
        if o.polygons
    ]
    return nbytes, anns


def png_bytes(array: np.ndarray) -> bytes:
    """``array`` as PNG bytes (the demo's one PNG encoding: zlib level 6, not optimised)."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _run_oi_image(root: Path, ctx: RenderContext, job: OIImageJob) -> tuple[int, list[dict]]:
    """An Open Images image; only objects of categories with an Open Images class are
    annotated (Open Images segmentations are not exhaustive). Half of the mask PNGs are stored
    at another resolution than the image, as in the real release."""
    rng = job_rng(ctx.seed, "oi_image", job.index)
    styles = _object_styles(ctx.n_styles)
    scene = proc.plan_scene(rng, job.width, job.height, list(job.categories), styles)
    out = proc.render_scene(scene, styles)
    nbytes = _jpeg(root / "openimages" / job.split / f"{job.image_id}.jpg", out.image)
    objs = []
    for o in out.objects:
        cat = ctx.cats[o.category] if o.category < len(ctx.cats) else None
        if cat is None or cat.oi is None or o.area < 16:
            continue
        ys, xs = np.nonzero(o.visible)
        box = (xs.min() / job.width, (xs.max() + 1) / job.width,
               ys.min() / job.height, (ys.max() + 1) / job.height)  # fmt: skip
        mask = (o.visible * 255).astype(np.uint8)
        if rng.random() < 0.5:
            f = float(rng.choice([0.5, 0.75, 1.5, 2.0]))
            size = (max(8, round(job.width * f)), max(8, round(job.height * f)))
            mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
        pick = rng.integers(0, len(xs), size=3)
        clicks = [(xs[i] / job.width, ys[i] / job.height, 1) for i in pick]
        clicks.append((float(rng.uniform(0, 1)), float(rng.uniform(0, 1)), 0))
        objs.append({
            "category": o.category,
            "box_id": "".join(f"{b:02x}" for b in rng.integers(0, 256, size=4)),
            "box": [round(float(v), 6) for v in box],
            "iou": round(float(rng.uniform(0.6, 0.98)), 5),
            "clicks": ";".join(f"{x:.5f} {y:.5f} {lab}" for x, y, lab in clicks),
            "png": png_bytes(mask),
        })  # fmt: skip
    return nbytes, objs


def _run_clip(root: Path, ctx: RenderContext, job: ClipJob) -> tuple[int, None]:
    rng = job_rng(ctx.seed, "clip", job.index)
    audio = _clip_audio(ctx, job.category, job.seconds, rng, job.variant)
    return _wav(root / job.path, audio), None


def _run_video(root: Path, ctx: RenderContext, job: VideoJob) -> tuple[int, None]:
    rng = job_rng(ctx.seed, "video", job.index)
    styles = _object_styles(ctx.n_styles)
    cats = list(job.sounding) + list(job.silent)
    scene = proc.plan_scene(rng, job.width, job.height, cats, styles, motion=0.015)
    base = root / "avsbench" / job.label / job.uid
    (base / "frames").mkdir(parents=True, exist_ok=True)
    (base / "labels_rgb").mkdir(parents=True, exist_ok=True)
    palette = proc.voc_palette(256)
    nbytes = 0
    for t in range(5):
        out = proc.render_scene(scene, styles, t=float(t))
        nbytes += _jpeg(base / "frames" / f"{t}.jpg", out.image)
        if t in job.annotated_frames:
            lab = np.zeros((job.height, job.width, 3), dtype=np.uint8)
            for o in out.objects:
                if o.category in job.sounding:
                    lab[o.visible] = palette[ctx.cats[o.category].palette_index]
            nbytes += write_png(base / "labels_rgb" / f"{t}.png", lab)
    mix = np.zeros(5 * SR, dtype=np.float32)
    for i, c in enumerate(job.sounding):
        mix += _clip_audio(ctx, c, 5.0, rng, variant=i) / len(job.sounding) ** 0.5
    nbytes += _wav(base / "audio.wav", mix / max(1.0, float(np.max(np.abs(mix)))))
    return nbytes, None


def _run_avs_image(root: Path, ctx: RenderContext, job: AvsImageJob) -> tuple[int, list[dict]]:
    rng = job_rng(ctx.seed, "avs_image", job.index)
    styles = _object_styles(ctx.n_styles)
    scene = proc.plan_scene(rng, job.width, job.height, list(job.categories), styles)
    out = proc.render_scene(scene, styles)
    nbytes = _jpeg(root / "avs_synthetic" / "images" / f"{job.img_id}.jpg", out.image)
    objs = []
    for o in out.objects:
        if o.area > 0:
            objs.append({"category": o.category, "mask": (o.visible * 255).astype(np.uint8)})
    return nbytes, objs


def _run_avs_audio(root: Path, ctx: RenderContext, job: ClipJob) -> tuple[int, None]:
    rng = job_rng(ctx.seed, "avs_audio", job.index)
    audio = _clip_audio(ctx, job.category, job.seconds, rng, job.variant)
    return _wav(root / job.path, audio), None


RUNNERS = {
    "image": _run_image,
    "oi_image": _run_oi_image,
    "clip": _run_clip,
    "video": _run_video,
    "avs_image": _run_avs_image,
    "avs_audio": _run_avs_audio,
}


def render_chunk(root: str, ctx: RenderContext, chunk: tuple[tuple[str, object], ...]) -> list:
    """Render a chunk of jobs (each a pure function of ``ctx`` and the job, writing its own files);
    ``[(kind, job index, bytes written, payload)]`` per job."""
    out = []
    for kind, job in chunk:
        nbytes, payload = RUNNERS[kind](Path(root), ctx, job)
        out.append((kind, job.index, nbytes, payload))
    return out


def render_tasks(layout: DemoLayout) -> list[tuple[str, object]]:
    """Every job of ``layout`` as ``(kind, job)``, in the order they are rendered."""
    tasks: list[tuple[str, object]] = [("video", j) for j in layout.videos]
    tasks += [("image", j) for j in layout.images]
    tasks += [("oi_image", j) for j in layout.oi_images]
    tasks += [("avs_image", j) for j in layout.avs_images]
    tasks += [("clip", j) for j in layout.clips]
    i = 0
    for c, names in sorted(layout.avs_audio.items()):
        for v, key in enumerate(("train", "eval")):
            tasks.append(("avs_audio", ClipJob(i, f"avs_synthetic/audios/{names[key]}.wav", c, v,
                                               layout.size.clip_seconds)))  # fmt: skip
            i += 1
    return tasks
