"""The demo corpora: small, generated, deterministic datasets in the REAL source formats.

No real dataset can be downloaded where avsynth is tested, so ``avsynth demo DIR`` writes, from a
seed and a category manifest:

- ``lvis/lvis_v1_{train,val}.json`` (LVIS v1 format: real category ids, synsets and names of the
  manifest's LVIS labels; images with ``coco_url``, ``neg_category_ids``,
  ``not_exhaustive_category_ids``; polygon annotations) and the JPEGs in ``coco/{train,val}2017/``;
- ``openimages/`` (Open Images V7 segmentation layout: ``oidv7-class-descriptions-boxable.csv``,
  ``{split}-annotations-object-segmentation.csv``, ``{split}-masks/{split}-masks-{0..f}.zip``,
  ``{split}/{ImageID}.jpg``) for the categories that have an Open Images class (all of the images
  of categories without an LVIS name come from here);
- ``vggsound/vggsound.csv`` (no header: ``ytid,start_seconds,label,split``, labels with commas
  quoted) and ``vggsound/audio/{ytid}_{start:06d}.wav`` (10 s, 16 kHz mono PCM16); a few rows have
  no file (link rot) and a few carry labels outside the manifest;
- ``avsbench/`` (AVSBench-semantic layout: ``metadata.csv``, ``v1s|v1m/{uid}/frames/{i}.jpg``,
  ``audio.wav``, ``labels_rgb/{i}.png`` in the VOC palette of the AVSS classes);
- ``avs_synthetic/`` (AVS-Synthetic release layout: ``annotations.csv``, ``images/``, ``masks/``,
  ``audios/``, ``category_for_vggsound_audios.pkl``).

Every category gets its own procedural object and sound (:mod:`avsynth.demo.procedural`);
every image shows one object of a category plus 1-3 objects of other categories, every one
annotated, so that only a model that listens can tell which object a clip belongs to. Each file
is a pure function of (seed, manifest, scale, item index): the output is byte-identical whatever
the number of worker processes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import shutil
import string
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from avsynth.engines import run_tasks
from avsynth.errors import AvsynthError
from avsynth.io import atomic_write_text
from avsynth.io import cache_dir as io_cache_dir
from avsynth.manifest import Category, Manifest, load_manifest
from avsynth.demo import procedural as proc

DEMO_FORMAT = "avsynth-demo/1"
DEMO_VERSION = "v1"
SR = proc.SAMPLE_RATE
JPEG_QUALITY = 90

ProgressFn = Callable[[str, int, int], None]  # (phase, done, total)


class DemoError(AvsynthError):
    """The demo corpus cannot be written or re-opened."""


# ---------------------------------------------------------------------------------------------
# Sizes


@dataclass(frozen=True)
class DemoSize:
    """How much to generate (the default scale stays under about 300 MB on disk)."""

    name: str
    images_per_category: int = 40  # LVIS images whose first object is of the category
    oi_images_per_category: int = 3  # Open Images images for categories that also have LVIS
    val_every: int = 5  # every val_every-th round of images goes to lvis_v1_val.json
    clips_train: int = 9  # VGGSound train clips per category
    clips_test: int = 3  # VGGSound test clips per category
    clip_seconds: float = 10.0
    missing_rows: int = 12  # VGGSound rows whose file is absent (link rot)
    extra_label_rows: int = 5  # VGGSound rows with labels outside the manifest
    v1s: tuple[int, int, int] | None = None  # AVSBench S4 videos (train, val, test);
    # None: one per category in train and test, one per two categories in val
    v1m: tuple[int, int, int] = (10, 5, 5)  # AVSBench MS3 videos (train, val, test)
    avs_images: int | None = None  # AVS-Synthetic images; None = 3 per category
    max_categories: int | None = None  # use only the first N categories of the manifest
    width: tuple[int, int] = (320, 480)
    height: tuple[int, int] = (240, 360)


SCALES: dict[str, DemoSize] = {
    "default": DemoSize("default"),
    "test": DemoSize(
        "test",
        images_per_category=4,
        oi_images_per_category=0,
        val_every=4,
        clips_train=2,
        clips_test=2,  # >= 2: validation and test need disjoint clips
        missing_rows=3,
        extra_label_rows=2,
        v1s=(3, 2, 2),
        v1m=(2, 1, 1),
        avs_images=4,
        width=(200, 280),
        height=(160, 220),
    ),
    "tiny": DemoSize(
        "tiny",
        images_per_category=8,
        oi_images_per_category=2,
        val_every=4,
        clips_train=3,
        clips_test=2,  # >= 2: validation and test need disjoint clips
        missing_rows=2,
        extra_label_rows=1,
        v1s=(2, 2, 2),
        v1m=(1, 1, 1),
        avs_images=6,
        max_categories=5,
    ),
}


def resolve_size(scale: str | DemoSize) -> DemoSize:
    """A :class:`DemoSize` from a scale name ("default", "test", "tiny") or itself."""
    if isinstance(scale, DemoSize):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise DemoError(f"unknown demo scale {scale!r}; choose one of {', '.join(SCALES)}") from None


# ---------------------------------------------------------------------------------------------
# The corpus handle


@dataclass(frozen=True)
class DemoCorpus:
    """A written demo corpus: where each source lives, and the category names it covers."""

    root: Path
    lvis_train_json: Path
    lvis_val_json: Path
    coco_root: Path  # holds train2017/ and val2017/
    vggsound_csv: Path
    vggsound_audio: Path
    avsbench_root: Path
    avs_synthetic_root: Path
    openimages_root: Path  # Open Images V7 segmentation layout
    categories: list[str]
    seed: int = 0
    scale: str = "default"
    manifest: str = ""

    @property
    def info(self) -> dict:
        """The parsed ``demo.json`` record (seed, sizes, version, counts, per-category styles)."""
        return json.loads((self.root / "demo.json").read_text(encoding="utf-8"))

    @classmethod
    def at(cls, root: Path, record: dict) -> DemoCorpus:
        root = Path(root)
        p = record["paths"]
        return cls(
            root=root,
            lvis_train_json=root / p["lvis_train_json"],
            lvis_val_json=root / p["lvis_val_json"],
            coco_root=root / p["coco_root"],
            vggsound_csv=root / p["vggsound_csv"],
            vggsound_audio=root / p["vggsound_audio"],
            avsbench_root=root / p["avsbench_root"],
            avs_synthetic_root=root / p["avs_synthetic_root"],
            openimages_root=root / p["openimages_root"],
            categories=[c["name"] for c in record["categories"]],
            seed=int(record["seed"]),
            scale=str(record["scale"]["name"]),
            manifest=str(record["manifest"]),
        )

    @classmethod
    def load(cls, root: str | Path) -> DemoCorpus:
        """Re-open a corpus written by :func:`write_demo` (its ``demo.json`` must say complete)."""
        root = Path(root)
        rec_path = root / "demo.json"
        try:
            record = json.loads(rec_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DemoError(f"{rec_path}: not found; {root} is not a (complete) demo corpus") from None
        except (OSError, json.JSONDecodeError) as err:
            raise DemoError(f"{rec_path}: unreadable demo record: {err}") from None
        if record.get("format") != DEMO_FORMAT or not record.get("complete"):
            raise DemoError(f"{rec_path}: not a complete {DEMO_FORMAT} record")
        return cls.at(root, record)


_PATHS = {
    "lvis_train_json": "lvis/lvis_v1_train.json",
    "lvis_val_json": "lvis/lvis_v1_val.json",
    "coco_root": "coco",
    "vggsound_csv": "vggsound/vggsound.csv",
    "vggsound_audio": "vggsound/audio",
    "avsbench_root": "avsbench",
    "avs_synthetic_root": "avs_synthetic",
    "openimages_root": "openimages",
}
OI_SPLITS = ("train", "validation", "test")
OI_CLASS_FILE = "oidv7-class-descriptions-boxable.csv"


# ---------------------------------------------------------------------------------------------
# Label data: real LVIS categories and the AVSBench-semantic classes


@lru_cache(maxsize=1)
def lvis_category_table() -> dict[str, dict]:
    """The 1,203 real LVIS v1 categories by name (shipped as package data)."""
    text = (resources.files("avsynth.demo") / "demo_data" / "lvis_v1_categories.csv").read_text(
        encoding="utf-8"
    )
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        out[row["name"]] = {
            "id": int(row["id"]),
            "name": row["name"],
            "synset": row["synset"],
            "synonyms": [s for s in row["synonyms"].split("|") if s],
            "def": row["def"],
            "frequency": row["frequency"],
        }
    return out


@lru_cache(maxsize=1)
def oi_class_table() -> dict[str, str]:
    """Open Images V7 boxable classes, display name -> MID (shipped as package data)."""
    text = (resources.files("avsynth.demo") / "demo_data" / OI_CLASS_FILE).read_text(
        encoding="utf-8"
    )
    rows = list(csv.reader(io.StringIO(text)))
    return {r[1]: r[0] for r in rows[1:] if len(r) == 2}


# AVSBench-semantic's 71 classes in model-index order (0 = background); colour = VOC palette[idx].
AVSS_CLASSES = (
    "background", "accordion", "airplane", "axe", "baby", "bassoon", "bell", "bird", "boat",
    "boy", "bus", "car", "cat", "cello", "clarinet", "clipper", "clock", "dog", "donkey", "drum",
    "duck", "elephant", "emergency-car", "erhu", "flute", "frying-food", "girl", "goose",
    "guitar", "gun", "guzheng", "hair-dryer", "handpan", "harmonica", "harp", "helicopter", "hen",
    "horse", "keyboard", "leopard", "lion", "man", "marimba", "missile-rocket", "motorcycle",
    "mower", "parrot", "piano", "pig", "pipa", "saw", "saxophone", "sheep", "sitar", "sorna",
    "squirrel", "tabla", "tank", "tiger", "tractor", "train", "trombone", "truck", "trumpet",
    "tuba", "ukulele", "utv", "vacuum-cleaner", "violin", "wolf", "woman",
)  # fmt: skip
# Manifest-style names whose AVSS class has another name.
_AVSS_ALIASES = {
    "ambulance": "emergency-car", "fire-engine": "emergency-car", "police-car": "emergency-car",
    "computer-keyboard": "keyboard", "lawn-mower": "mower", "chainsaw": "saw",
    "chicken": "hen", "rocket": "missile-rocket", "motorbike": "motorcycle", "aeroplane":
    "airplane", "automobile": "car", "coyote": "wolf", "glockenspiel": "marimba",
}  # fmt: skip
# Real LVIS categories outside most manifests, drawn now and then as silent clutter.
_CLUTTER = ("cup", "book", "bottle", "vase", "lamp", "pillow", "umbrella", "backpack")
# Real VGGSound labels used for rows outside the manifest (the reader must ignore them).
_OTHER_VGGSOUND = (
    "playing violin, fiddle", "rowboat, canoe, kayak rowing", "people coughing", "wind noise",
    "typing on typewriter", "playing harpsichord", "sea waves", "people whistling",
)  # fmt: skip


def _norm(name: str) -> str:
    base = name.split("_(")[0] if "_(" in name else name
    return base.strip().lower().replace("_", "-").replace(" ", "-")


def avss_class_for(cat: Category) -> str | None:
    """The AVSBench-semantic class a manifest category corresponds to, if any."""
    for cand in (cat.name, *cat.lvis):
        n = _norm(cand)
        n = _AVSS_ALIASES.get(n, n)
        if n in AVSS_CLASSES[1:]:
            return n
    return None


# ---------------------------------------------------------------------------------------------
# Planning (main process): what to generate, with per-item seeds


@dataclass(frozen=True)
class CatInfo:
    """Everything the workers need about one category (index = position in the demo)."""

    name: str
    category_id: int
    lvis: dict | None  # LVIS category record (id, name, synset, ...) or None
    lvis_alt: tuple[dict, ...]  # records of the category's other (real) LVIS names
    oi: tuple[str, str] | None  # Open Images (MID, display name) or None
    vggsound: tuple[str, ...]
    avss_name: str  # AVSBench object name (a real AVSS class or the hyphenated name)
    palette_index: int


@dataclass(frozen=True)
class ImageJob:
    index: int
    image_id: int
    folder: str  # "train2017" | "val2017"
    split: str  # "train" | "val" (which LVIS json)
    categories: tuple[int, ...]  # demo category indices (clutter: >= n_categories)
    width: int
    height: int


@dataclass(frozen=True)
class OIImageJob:
    index: int
    image_id: str  # 16 hex chars
    split: str  # "train" | "validation" | "test"
    categories: tuple[int, ...]
    width: int
    height: int


@dataclass(frozen=True)
class ClipJob:
    index: int
    path: str  # relative to the corpus root
    category: int  # -1 for labels outside the manifest
    variant: int
    seconds: float


@dataclass(frozen=True)
class VideoJob:
    index: int
    label: str  # "v1s" | "v1m"
    split: str  # "train" | "val" | "test"
    uid: str
    sounding: tuple[int, ...]
    silent: tuple[int, ...]
    annotated_frames: tuple[int, ...]
    width: int
    height: int


@dataclass(frozen=True)
class AvsImageJob:
    index: int
    img_id: str
    categories: tuple[int, ...]
    width: int
    height: int


@dataclass(frozen=True)
class DemoLayout:
    seed: int
    size: DemoSize
    cats: tuple[CatInfo, ...]
    clutter: tuple[dict, ...]  # LVIS records of the clutter categories
    images: tuple[ImageJob, ...]
    oi_images: tuple[OIImageJob, ...]
    clips: tuple[ClipJob, ...]
    vgg_rows: tuple[tuple[str, int, str, str], ...]
    videos: tuple[VideoJob, ...]
    avs_images: tuple[AvsImageJob, ...]
    avs_audio: dict = field(default_factory=dict)  # category index -> {"train": name, "eval": name}

    @property
    def n_styles(self) -> int:
        return len(self.cats) + len(self.clutter)

    def render_context(self) -> "RenderContext":
        return RenderContext(self.seed, self.cats, self.n_styles)


@dataclass(frozen=True)
class RenderContext:
    """What rendering one job needs besides the job itself (small: it travels with every task)."""

    seed: int
    cats: tuple[CatInfo, ...]
    n_styles: int


_YT_ALPHABET = string.ascii_letters + string.digits + "-_"


def _ytids(rng: np.random.Generator, n: int) -> list[str]:
    seen: set[str] = set()
    out = []
    while len(out) < n:
        s = "".join(_YT_ALPHABET[i] for i in rng.integers(0, len(_YT_ALPHABET), size=11))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def _size_of(rng: np.random.Generator, size: DemoSize) -> tuple[int, int]:
    w = int(rng.integers(size.width[0], size.width[1] + 1)) // 2 * 2
    h = int(rng.integers(size.height[0], size.height[1] + 1)) // 2 * 2
    return w, h


def _cat_infos(manifest: Manifest) -> tuple[tuple[CatInfo, ...], list[str]]:
    table = lvis_category_table()
    infos, notes = [], []
    used_extra = 0
    for cat in manifest.categories:
        rec = None
        if cat.lvis:
            name = cat.lvis[0]
            rec = table.get(name)
            if rec is None:
                # Not a real LVIS name: keep the category, with an id beyond the real range.
                rec = {"id": 2000 + cat.category_id, "name": name, "synset": f"{name}.n.01",
                       "synonyms": [name], "def": f"{name} (not in LVIS v1)", "frequency": "r"}
                notes.append(f"LVIS name {name!r} of {cat.name!r} is not in LVIS v1; id {rec['id']}")
        alt = tuple(table[x] for x in cat.lvis[1:] if x in table and (rec is None or x != rec["name"]))
        oi = None
        for display in cat.openimages:
            mid = oi_class_table().get(display)
            if mid is not None:
                oi = (mid, display)
                break
        if cat.openimages and oi is None:
            notes.append(f"Open Images names {list(cat.openimages)} of {cat.name!r} are not V7 classes")
        if rec is None and oi is None:
            notes.append(f"category {cat.name!r} has no LVIS or Open Images class: no images")
        avss = avss_class_for(cat)
        if avss is not None:
            pal = AVSS_CLASSES.index(avss)
        else:
            pal = len(AVSS_CLASSES) + used_extra
            used_extra += 1
            if pal > 255:
                raise DemoError("too many categories outside the AVSS classes for one palette")
        infos.append(
            CatInfo(
                name=cat.name,
                category_id=cat.category_id,
                lvis=rec,
                lvis_alt=alt if rec is not None else (),
                oi=oi,
                vggsound=cat.vggsound,
                avss_name=avss or _norm(cat.name),
                palette_index=pal,
            )
        )
    return tuple(infos), notes


def make_layout(manifest: Manifest, seed: int, size: DemoSize) -> tuple[DemoLayout, list[str]]:
    """Decide every item of the corpus (ids, categories, splits, sizes) from ``seed``."""
    if size.max_categories:
        manifest = Manifest(manifest.name, manifest.categories[: size.max_categories],
                            manifest.path, manifest.description)  # fmt: skip
    cats, notes = _cat_infos(manifest)
    n = len(cats)
    rng = np.random.default_rng([seed, 7001])
    table = lvis_category_table()
    taken = {c.lvis["name"] for c in cats if c.lvis}
    clutter = tuple(table[c] for c in _CLUTTER if c in table and c not in taken)[:3]

    # LVIS images: round r of images holds one image per category (as first object).
    with_lvis = [i for i, c in enumerate(cats) if c.lvis is not None]
    n_img = size.images_per_category * len(with_lvis)
    ids = (rng.permutation(581_000)[:n_img] + 900).tolist()
    images = []
    for i in range(n_img):
        primary = with_lvis[i % len(with_lvis)]
        rnd = i // len(with_lvis)
        split = "val" if rnd % size.val_every == size.val_every - 1 else "train"
        folder = "train2017" if split == "train" or i % 6 == 0 else "val2017"
        others = [c for c in with_lvis if c != primary]
        k = min(len(others), int(rng.integers(1, 4)))
        chosen = [primary] + [int(c) for c in rng.choice(others, size=k, replace=False)] if k else [primary]
        if rng.random() < 0.05:  # a second instance of the first category
            chosen.append(primary)
        if clutter and rng.random() < 0.12:  # a silent object of a category outside the manifest
            chosen.append(n + int(rng.integers(0, len(clutter))))
        w, h = _size_of(rng, size)
        images.append(ImageJob(i, int(ids[i]), folder, split, tuple(chosen), w, h))

    # Open Images images: every category with an Open Images class and no LVIS name gets the
    # full count; the others a few, so both readers see every kind of category.
    with_oi = [i for i, c in enumerate(cats) if c.oi is not None]
    oi_images = []
    per = {i: size.images_per_category if cats[i].lvis is None else size.oi_images_per_category
           for i in with_oi}  # fmt: skip
    rounds = max(per.values(), default=0)
    everyone = list(range(n))
    for rnd in range(rounds):
        for primary in with_oi:
            if rnd >= per[primary]:
                continue
            i = len(oi_images)
            if rnd % size.val_every == size.val_every - 1:
                split = ("validation", "test")[i % 2]
            else:
                split = "train"
            others = [c for c in everyone if c != primary]
            k = min(len(others), int(rng.integers(1, 4)))
            chosen = [primary] + ([int(c) for c in rng.choice(others, size=k, replace=False)] if k else [])
            w, h = _size_of(rng, size)
            image_id = "".join(f"{b:02x}" for b in rng.integers(0, 256, size=8))
            oi_images.append(OIImageJob(i, image_id, split, tuple(chosen), w, h))

    # VGGSound rows and clips.
    per_cat = size.clips_train + size.clips_test
    n_rows = n * per_cat + size.missing_rows + size.extra_label_rows
    ytids = _ytids(rng, n_rows + 2 * n + 1)  # + AVS-Synthetic audio names
    starts = rng.integers(0, 290, size=len(ytids)).tolist()
    rows, clips = [], []
    j = 0
    for ci, cat in enumerate(cats):
        for m in range(per_cat):
            label_idx = m % len(cat.vggsound)
            split = "train" if m < size.clips_train else "test"
            rows.append((ytids[j], int(starts[j]), cat.vggsound[label_idx], split))
            clips.append((ytids[j], int(starts[j]), ci, label_idx))
            j += 1
    for m in range(size.missing_rows):  # link rot: the row exists, the file does not
        ci = int(rng.integers(0, n))
        rows.append((ytids[j], int(starts[j]), cats[ci].vggsound[0], ("train", "test")[m % 2]))
        j += 1
    manifest_labels = {lab for c in cats for lab in c.vggsound}
    others = [lab for lab in _OTHER_VGGSOUND if lab not in manifest_labels]
    for m in range(size.extra_label_rows if others else 0):
        rows.append((ytids[j], int(starts[j]), others[m % len(others)], ("train", "test")[m % 2]))
        clips.append((ytids[j], int(starts[j]), -1, m))
        j += 1
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    clip_jobs = tuple(
        ClipJob(i, f"vggsound/audio/{y}_{s:06d}.wav", ci, v, size.clip_seconds)
        for i, (y, s, ci, v) in enumerate(clips)
    )

    # AVSBench videos.
    videos = []
    v1s = size.v1s or (n, (n + 1) // 2, n)
    vid_ids = _ytids(rng, sum(v1s) + sum(size.v1m))
    vi = 0
    offset = int(rng.integers(0, n))
    for split, count in zip(("train", "val", "test"), v1s):
        for m in range(count):
            snd = (offset + m) % n
            others = [c for c in range(n) if c != snd]
            k = min(len(others), int(rng.integers(1, 3)))
            silent = tuple(int(c) for c in rng.choice(others, size=k, replace=False)) if k else ()
            start = int(rng.integers(0, 20)) * 1000
            uid = f"{vid_ids[vi]}_{start}_{start + 5000}"
            frames = (0,) if split == "train" else (0, 1, 2, 3, 4)
            w, h = _size_of(rng, size)
            videos.append(VideoJob(vi, "v1s", split, uid, (snd,), silent, frames, w, h))
            vi += 1
        offset += count
    for split, count in zip(("train", "val", "test"), size.v1m):
        for m in range(count):
            k = min(n, 3)
            pick = [int(c) for c in rng.choice(n, size=k, replace=False)]
            sounding = tuple(pick[: min(2, k)])
            silent = tuple(pick[2:])
            uid = f"{vid_ids[vi]}_{m % 3}"
            w, h = _size_of(rng, size)
            videos.append(VideoJob(vi, "v1m", split, uid, sounding, silent, (0, 1, 2, 3, 4), w, h))
            vi += 1

    # AVS-Synthetic images (first object's category round-robin) and one train + one eval clip
    # per category that appears.
    n_avs = 3 * n if size.avs_images is None else size.avs_images
    avs_images = []
    for i in range(n_avs):
        primary = i % n
        others = [c for c in range(n) if c != primary]
        k = min(len(others), int(rng.integers(1, 3)))
        chosen = [primary] + ([int(c) for c in rng.choice(others, size=k, replace=False)] if k else [])
        w, h = _size_of(rng, size)
        img_id = (f"{int(rng.integers(1, 10**12)):012d}" if i % 2 == 0
                  else "".join(f"{b:02x}" for b in rng.integers(0, 256, size=8)))  # fmt: skip
        avs_images.append(AvsImageJob(i, img_id, tuple(chosen), w, h))
    used = sorted({c for job in avs_images for c in job.categories})
    avs_audio = {}
    for c in used:
        avs_audio[c] = {
            "train": f"{ytids[j]}_{int(starts[j]):06d}",
            "eval": f"{ytids[j + 1]}_{int(starts[j + 1]):06d}",
        }
        j += 2

    layout = DemoLayout(
        seed=seed,
        size=size,
        cats=cats,
        clutter=clutter,
        images=tuple(images),
        oi_images=tuple(oi_images),
        clips=clip_jobs,
        vgg_rows=tuple(rows),
        videos=tuple(videos),
        avs_images=tuple(avs_images),
        avs_audio=avs_audio,
    )
    return layout, notes


# ---------------------------------------------------------------------------------------------
# Workers: each job is a pure function of (layout, job) and writes its own files


_KIND = {"image": 1, "clip": 2, "video": 3, "avs_image": 4, "avs_audio": 5, "oi_image": 6}


def _rng(seed: int, kind: str, index: int) -> np.random.Generator:
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


def _png(path: Path, array: np.ndarray) -> int:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG", optimize=False, compress_level=6)
    data = buf.getvalue()
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
    rng = _rng(ctx.seed, "image", job.index)
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


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _run_oi_image(root: Path, ctx: RenderContext, job: OIImageJob) -> tuple[int, list[dict]]:
    """An Open Images image; only objects of categories with an Open Images class are
    annotated (Open Images segmentations are not exhaustive). Half of the mask PNGs are stored
    at another resolution than the image, as in the real release."""
    rng = _rng(ctx.seed, "oi_image", job.index)
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
            "png": _png_bytes(mask),
        })  # fmt: skip
    return nbytes, objs


def _run_clip(root: Path, ctx: RenderContext, job: ClipJob) -> tuple[int, None]:
    rng = _rng(ctx.seed, "clip", job.index)
    audio = _clip_audio(ctx, job.category, job.seconds, rng, job.variant)
    return _wav(root / job.path, audio), None


def _run_video(root: Path, ctx: RenderContext, job: VideoJob) -> tuple[int, None]:
    rng = _rng(ctx.seed, "video", job.index)
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
            nbytes += _png(base / "labels_rgb" / f"{t}.png", lab)
    mix = np.zeros(5 * SR, dtype=np.float32)
    for i, c in enumerate(job.sounding):
        mix += _clip_audio(ctx, c, 5.0, rng, variant=i) / len(job.sounding) ** 0.5
    nbytes += _wav(base / "audio.wav", mix / max(1.0, float(np.max(np.abs(mix)))))
    return nbytes, None


def _run_avs_image(root: Path, ctx: RenderContext, job: AvsImageJob) -> tuple[int, list[dict]]:
    rng = _rng(ctx.seed, "avs_image", job.index)
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
    rng = _rng(ctx.seed, "avs_audio", job.index)
    audio = _clip_audio(ctx, job.category, job.seconds, rng, job.variant)
    return _wav(root / job.path, audio), None


_RUNNERS = {
    "image": _run_image,
    "oi_image": _run_oi_image,
    "clip": _run_clip,
    "video": _run_video,
    "avs_image": _run_avs_image,
    "avs_audio": _run_avs_audio,
}

def _render_chunk(root: str, ctx: RenderContext, chunk: tuple[tuple[str, object], ...]) -> list:
    """Render a chunk of jobs (each a pure function of ``ctx`` and the job, writing its own files);
    ``[(kind, job index, bytes written, payload)]`` per job."""
    out = []
    for kind, job in chunk:
        nbytes, payload = _RUNNERS[kind](Path(root), ctx, job)
        out.append((kind, job.index, nbytes, payload))
    return out


# ---------------------------------------------------------------------------------------------
# Writers of the index files (main process)


_LICENSE = {
    "id": 1,
    "name": "CC0 1.0 (procedurally generated by avsynth demo)",
    "url": "https://creativecommons.org/publicdomain/zero/1.0/",
}


def _lvis_category_records(layout: DemoLayout, image_count, instance_count) -> list[dict]:
    recs = [r for c in layout.cats if c.lvis for r in (c.lvis, *c.lvis_alt)] + list(layout.clutter)
    out = []
    for r in sorted(recs, key=lambda r: r["id"]):
        out.append({
            "id": r["id"], "name": r["name"], "synset": r["synset"], "synonyms": r["synonyms"],
            "def": r["def"], "frequency": r["frequency"],
            "image_count": image_count.get(r["id"], 0),
            "instance_count": instance_count.get(r["id"], 0),
        })  # fmt: skip
    return out


def _write_lvis(root: Path, layout: DemoLayout, results: dict[int, list[dict]]) -> dict:
    lvis_ids = [c.lvis["id"] if c.lvis else None for c in layout.cats] + [r["id"] for r in layout.clutter]
    manifest_ids = [(k, i) for k, i in enumerate(lvis_ids[: len(layout.cats)]) if i is not None]
    counts = {}
    ann_id = 1
    for split in ("train", "val"):
        images, anns = [], []
        image_count: dict[int, int] = {}
        instance_count: dict[int, int] = {}
        for job in layout.images:
            if job.split != split:
                continue
            rng = _rng(layout.seed, "image", 10**7 + job.index)  # metadata draws, independent
            present, present_cats = [], set()
            for a in results[job.index]:
                present_cats.add(a["category"])
                cid = lvis_ids[a["category"]]
                if a["category"] < len(layout.cats):
                    alt = layout.cats[a["category"]].lvis_alt
                    if alt and rng.random() < 0.15:  # annotated under another of its LVIS names
                        cid = alt[int(rng.integers(0, len(alt)))]["id"]
                anns.append({
                    "id": ann_id, "image_id": job.image_id, "category_id": cid,
                    "segmentation": a["segmentation"], "bbox": a["bbox"], "area": a["area"],
                })  # fmt: skip
                ann_id += 1
                instance_count[cid] = instance_count.get(cid, 0) + 1
                if cid not in present:
                    present.append(cid)
            for cid in present:
                image_count[cid] = image_count.get(cid, 0) + 1
            absent = [c for k, c in manifest_ids if k not in present_cats]
            k = min(len(absent), int(rng.integers(1, 5)))
            neg = sorted(int(c) for c in rng.choice(absent, size=k, replace=False)) if k else []
            not_exh = [int(present[int(rng.integers(0, len(present)))])] if (
                present and rng.random() < 0.06) else []  # fmt: skip
            month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
            hh, mm, ss = (int(x) for x in rng.integers(0, [24, 60, 60]))
            images.append({
                "id": job.image_id,
                "coco_url": f"http://images.cocodataset.org/{job.folder}/{job.image_id:012d}.jpg",
                "height": job.height, "width": job.width, "license": 1,
                "date_captured": f"2013-{month:02d}-{day:02d} {hh:02d}:{mm:02d}:{ss:02d}",
                "neg_category_ids": neg, "not_exhaustive_category_ids": not_exh,
            })  # fmt: skip
        doc = {
            "info": {
                "description": "avsynth demo corpus in LVIS v1 format (procedurally generated)",
                "version": DEMO_VERSION, "year": 2026, "contributor": "avsynth",
                "url": "https://github.com/avsynth/avsynth",
            },
            "licenses": [_LICENSE],
            "categories": _lvis_category_records(layout, image_count, instance_count),
            "images": images,
            "annotations": anns,
        }
        path = root / _PATHS[f"lvis_{split}_json"]
        path.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        counts[split] = {"images": len(images), "annotations": len(anns)}
    return counts


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _write_openimages(root: Path, layout: DemoLayout, results: dict[int, list[dict]]) -> dict:
    """Class descriptions, per-split segmentation CSVs and the 16 mask zips of each split."""
    import zipfile

    base = root / "openimages"
    text = (resources.files("avsynth.demo") / "demo_data" / OI_CLASS_FILE).read_text(
        encoding="utf-8"
    )
    (base / OI_CLASS_FILE).write_bytes(text.replace("\r\n", "\n").replace("\n", "\r\n").encode())
    counts = {}
    for split in OI_SPLITS:
        rows, masks = [], {}
        images = 0
        for job in layout.oi_images:
            if job.split != split:
                continue
            images += 1
            for obj in results[job.index]:
                mid = layout.cats[obj["category"]].oi[0]
                name = f"{job.image_id}_{mid.replace('/', '')}_{obj['box_id']}.png"
                x0, x1, y0, y1 = obj["box"]
                rows.append([name, job.image_id, mid, obj["box_id"], x0, x1, y0, y1, obj["iou"],
                             obj["clicks"]])  # fmt: skip
                masks[name] = obj["png"]
        rows.sort(key=lambda r: (r[1], r[0]))
        with open(base / f"{split}-annotations-object-segmentation.csv", "w", newline="",
                  encoding="utf-8") as f:  # fmt: skip
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax",
                        "BoxYMin", "BoxYMax", "PredictedIoU", "Clicks"])  # fmt: skip
            w.writerows(rows)
        mask_dir = base / f"{split}-masks"
        mask_dir.mkdir(parents=True, exist_ok=True)
        for key in "0123456789abcdef":
            with zipfile.ZipFile(mask_dir / f"{split}-masks-{key}.zip", "w") as zf:
                for name in sorted(m for m in masks if m[0] == key):
                    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                    info.compress_type = zipfile.ZIP_STORED
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, masks[name])
        counts[split] = {"images": images, "masks": len(rows)}
    return counts


def _write_vggsound_csv(root: Path, layout: DemoLayout) -> None:
    with open(root / _PATHS["vggsound_csv"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        for row in layout.vgg_rows:
            w.writerow(row)


def _write_avsbench_metadata(root: Path, layout: DemoLayout) -> None:
    with open(root / "avsbench" / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"])
        for job in layout.videos:
            a_obj = "_".join(layout.cats[c].avss_name for c in job.sounding)
            if job.label == "v1s":
                vid = job.uid.rsplit("_", 2)[0]
                s_sec = int(job.uid.rsplit("_", 2)[1]) // 1000
            else:
                vid, s_sec = job.uid, 0
            w.writerow([vid, job.uid, 0, s_sec, a_obj, job.split, job.label])
    names = {name: i + 1 for i, name in enumerate(AVSS_CLASSES)}
    for c in layout.cats:
        names.setdefault(c.avss_name, c.palette_index + 1)
    (root / "avsbench" / "label2idx.json").write_text(json.dumps(names, indent=4), encoding="utf-8")


def _avs_split(i: int, n: int, total: int) -> str:
    """AVS-Synthetic split of image ``i``: by round of categories when there are 3+ rounds."""
    r = i // max(1, n) if total >= 3 * n else i
    return ("train", "validate", "test")[r % 3]


def _write_avs_synthetic(root: Path, layout: DemoLayout, results: dict[int, list[dict]]) -> int:
    base = root / "avs_synthetic"
    n = len(layout.cats)
    rows = []
    inst = 0
    for job in layout.avs_images:
        split = _avs_split(job.index, n, len(layout.avs_images))
        source = "lvis" if job.index % 2 == 0 else "openimages"
        for obj in results[job.index]:
            c = obj["category"]
            inst += 1
            _png(base / "masks" / f"{inst}.png", obj["mask"])
            audio = layout.avs_audio[c]["train" if split == "train" else "eval"]
            cat = layout.cats[c]
            rows.append([inst, job.img_id, cat.name, cat.category_id, source, audio, split])
    with open(base / "annotations.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["inst_id", "img_id", "class_name", "class_id", "source", "audio_name", "split"])
        w.writerows(rows)
    table = {layout.cats[c].category_id: [names["train"], names["eval"]]
             for c, names in sorted(layout.avs_audio.items())}  # fmt: skip
    with open(base / "category_for_vggsound_audios.pkl", "wb") as f:
        pickle.dump(table, f, protocol=4)
    return len(rows)


def _record(layout: DemoLayout, manifest: Manifest, counts: dict, notes: list[str]) -> dict:
    palette = proc.voc_palette(256)
    n = len(layout.cats)
    cats = []
    for k, c in enumerate(layout.cats):
        cats.append({
            "name": c.name, "category_id": c.category_id,
            "lvis_id": c.lvis["id"] if c.lvis else None,
            "lvis_name": c.lvis["name"] if c.lvis else None,
            "openimages": list(c.oi) if c.oi else None,
            "vggsound": list(c.vggsound), "avsbench_object": c.avss_name,
            "palette_index": c.palette_index, "palette_rgb": list(palette[c.palette_index]),
            "object": asdict(proc.object_style(k)), "sound": asdict(proc.sound_style(k, n)),
        })  # fmt: skip
    return {
        "format": DEMO_FORMAT,
        "version": DEMO_VERSION,
        "seed": layout.seed,
        "manifest": manifest.name,
        "scale": asdict(layout.size),
        "categories": cats,
        "clutter_lvis_categories": [r["name"] for r in layout.clutter],
        "paths": dict(_PATHS),
        "counts": counts,
        "notes": notes,
        "complete": True,
    }


# ---------------------------------------------------------------------------------------------
# Public API


def _tasks(layout: DemoLayout) -> list[tuple[str, object]]:
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


def write_demo(
    out: str | Path,
    *,
    seed: int = 0,
    manifest: str | Path | Manifest = "avs-synthetic-46",
    scale: str | DemoSize = "default",
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> DemoCorpus:
    """Write the demo corpora into ``out`` (which must not exist or be empty).

    ``workers`` processes render in parallel (``None``: one per CPU; 1: in this process); the
    bytes written do not depend on it. ``progress(phase, done, total)`` is called as items finish.
    ``demo.json`` is written last and marks the corpus complete.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DemoError(f"{out}: exists and is not an empty directory; choose a new one")
    man = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    size = resolve_size(scale)
    layout, notes = make_layout(man, int(seed), size)
    for d in ("lvis", "coco/train2017", "coco/val2017", *(f"openimages/{s}" for s in OI_SPLITS),
              "vggsound/audio", "avsbench/v1s",
              "avsbench/v1m", "avs_synthetic/images", "avs_synthetic/masks",
              "avs_synthetic/audios"):  # fmt: skip
        (out / d).mkdir(parents=True, exist_ok=True)

    tasks = _tasks(layout)
    results: dict[str, dict[int, object]] = {k: {} for k in _RUNNERS}
    total_bytes = 0
    done = 0
    n_workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    if progress:
        progress("generate", 0, len(tasks))
    per_chunk = 1 if n_workers == 1 else max(1, min(16, len(tasks) // (8 * n_workers)))
    ctx = layout.render_context()
    chunks = [(str(out), ctx, tuple(tasks[i:i + per_chunk])) for i in range(0, len(tasks), per_chunk)]
    for _, rendered in run_tasks("local", _render_chunk, chunks, workers=n_workers):
        for kind, index, nbytes, payload in rendered:
            total_bytes += nbytes
            results[kind][index] = payload
        done += len(rendered)
        if progress:
            progress("generate", done, len(tasks))

    if progress:
        progress("index", 0, 1)
    counts = {"lvis": _write_lvis(out, layout, results["image"])}
    counts["openimages"] = _write_openimages(out, layout, results["oi_image"])
    _write_vggsound_csv(out, layout)
    _write_avsbench_metadata(out, layout)
    avs_rows = _write_avs_synthetic(out, layout, results["avs_image"])
    counts["vggsound"] = {
        "rows": len(layout.vgg_rows),
        "clips": len(layout.clips),
        "missing": layout.size.missing_rows,
        "train_rows": sum(r[3] == "train" for r in layout.vgg_rows),
        "test_rows": sum(r[3] == "test" for r in layout.vgg_rows),
    }
    counts["avsbench"] = {
        "v1s": sum(v.label == "v1s" for v in layout.videos),
        "v1m": sum(v.label == "v1m" for v in layout.videos),
    }
    counts["avs_synthetic"] = {"images": len(layout.avs_images), "rows": avs_rows,
                               "audios": 2 * len(layout.avs_audio)}  # fmt: skip
    record = _record(layout, man, counts, notes)
    atomic_write_text(out / "demo.json", json.dumps(record, indent=2) + "\n")
    if progress:
        progress("index", 1, 1)
    return DemoCorpus.at(out, record)


def cache_name(seed: int, scale: str = "default", manifest: str = "avs-synthetic-46") -> str:
    """Directory name of a cached demo corpus, e.g. ``demo-v1-seed0``."""
    if scale == "default" and manifest == "avs-synthetic-46":
        return f"demo-{DEMO_VERSION}-seed{seed}"
    return f"demo-{DEMO_VERSION}-{Path(str(manifest)).stem}-{scale}-seed{seed}"


def ensure_demo(
    cache_dir: str | Path | None = None,
    seed: int = 0,
    *,
    scale: str | DemoSize = "default",
    manifest: str = "avs-synthetic-46",
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> DemoCorpus:
    """The cached demo corpus ``{cache_dir}/demo-v1-seed{seed}``, generated on first use.

    ``cache_dir`` defaults to :func:`avsynth.io.cache_dir`. A complete corpus is reused; otherwise it
    is generated into a temporary sibling directory and renamed into place atomically, so a
    crash never leaves a half-written corpus under the final name.
    """
    base = Path(cache_dir).expanduser() if cache_dir is not None else io_cache_dir()
    size = resolve_size(scale)
    root = base / cache_name(seed, size.name, str(manifest))
    try:
        return DemoCorpus.load(root)
    except DemoError:
        if root.exists():
            shutil.rmtree(root)  # an incomplete or foreign corpus under our cache name
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=base))
    try:
        write_demo(tmp, seed=seed, manifest=manifest, scale=size, workers=workers,
                   progress=progress)  # fmt: skip
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / "demo.json").exists():  # not another process finishing first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return DemoCorpus.load(root)


def directory_bytes(path: Path) -> int:
    """Total size of the regular files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


__all__ = [
    "AVSS_CLASSES",
    "SCALES",
    "DemoCorpus",
    "DemoError",
    "DemoSize",
    "avss_class_for",
    "cache_name",
    "directory_bytes",
    "ensure_demo",
    "lvis_category_table",
    "make_layout",
    "DemoLayout",
    "resolve_size",
    "write_demo",
]  # fmt: skip
