"""The seeded plan of a demo corpus: its sizes (:class:`DemoSize`, :data:`SCALES`), the label tables
it draws names from (real LVIS v1 categories, Open Images V7 classes, the AVSBench-semantic
classes), the per-item jobs, and :func:`make_layout`, which decides every item (ids, categories,
splits, image sizes) from a seed before anything is drawn. Every image shows one object of a
category plus 1-3 objects of other categories, so only a model that listens can tell which object
a clip belongs to.
"""

from __future__ import annotations

import csv
import io
import string
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources

import numpy as np

from avsynth.errors import AvsynthError
from avsynth.manifest import Category, Manifest


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


_S4_AUDIO = DemoSize(
    "s4-audio",
    images_per_category=4,
    oi_images_per_category=0,
    val_every=4,
    clips_train=2,
    clips_test=2,
    missing_rows=2,
    extra_label_rows=1,
    v1s=(80, 16, 40),
    v1m=(2, 1, 1),
    avs_images=8,
    max_categories=8,
)

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
    # AVSBench S4 where the audio decides: 8 categories, 10 train S4 videos each (frame 0 holds the
    # sounding object and 1-2 silent objects of other categories, random places and sizes), so a
    # model can learn which sound goes with which object; the rest of the corpus is kept small.
    # benchmark/bench_aavs.py --part s4 trains on it.
    "s4-audio": _S4_AUDIO,
    # s4-audio's S4 shape (8 categories, 80 / 16 / 40 S4 videos, same styles and procedural sounds)
    # with a synthetic part large enough to pre-train on: 40 LVIS images and 9 VGGSound train clips
    # per category, so the shards hold the same image with different sounding categories and masks.
    # The S4 videos are drawn from the same seeded stream after the larger image / clip parts, so
    # they are other videos than s4-audio's (same counts per split). benchmark/bench_aavs.py --part
    # s4-pretrain pre-trains on its shards and fine-tunes on its S4 train videos.
    "s4-pretrain": replace(_S4_AUDIO, name="s4-pretrain", images_per_category=40, clips_train=9),
    # The demo AVSS tree: the first 8 categories of the manifest (for avs-synthetic-46 all 8 are
    # AVSBench-semantic classes) in 6 S4 train videos each plus 24 MS3 train videos, so every class
    # sounds in about 9 train videos (the default tree: 1-4 videos for each of 34 classes, and 11
    # of its 46 categories are no AVSS class, i.e. background in the semantic masks). The other
    # corpora are kept small. benchmark/bench_aavs.py --part avss trains on it.
    # (s4-audio's small image / clip parts, more S4 and MS3 videos)
    "avss": replace(_S4_AUDIO, name="avss", v1s=(48, 16, 16), v1m=(24, 8, 8)),
}


def resolve_size(scale: str | DemoSize) -> DemoSize:
    """A :class:`DemoSize` from a scale name ("default", "test", "tiny") or itself."""
    if isinstance(scale, DemoSize):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise DemoError(f"unknown demo scale {scale!r}; choose one of {', '.join(SCALES)}") from None



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
