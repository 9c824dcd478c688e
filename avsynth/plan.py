"""The deterministic join: image instances × audio clips → splits → shards of row specs.

A plan is a pure function of (instances, clips, manifest, seed, options). It decides, for every
output row, which instance(s) give the image and mask, which clip and which window give the audio,
and which shard the row lands in. Workers then turn each shard's row specs into bytes without any
further choice, so a shard is a pure function of its slice of the plan.

Rules (DESIGN §4):
- splits are disjoint in images and in audio clips; train audio comes from VGGSound's train split,
  validation and test audio from its test split (whose clips are divided between the two);
- default sizes follow AVS-Synthetic (52,609 / 5,000 / 5,000); when the sources give fewer usable
  units, all three targets shrink in proportion and the shortfall is reported per category;
- categories are balanced: each category gets an equal share of a split, and the share a category
  cannot fill is handed to the others (water-filling);
- ``mask_mode="instance"`` makes one row per instance, ``"category"`` one row per (image, category)
  with the union of that category's instances.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections import defaultdict
from itertools import accumulate
from dataclasses import dataclass, field, replace
from typing import Iterable, Literal, Sequence

from avsynth.manifest import Manifest
from avsynth.shards.schema import SPLITS, shard_relpath
from avsynth.sources.records import AudioClip, ImageInstance, ImageLabels

DEFAULT_SIZES = {"train": 52_609, "validation": 5_000, "test": 5_000}
VGGSOUND_SPLIT = {"train": "train", "validation": "test", "test": "test"}
CLIP_LENGTH_S = 10.0  # VGGSound clips are 10 s


def stable_hash(*parts: object) -> int:
    """A 64-bit hash that is the same on every machine and Python run (unlike ``hash``)."""
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(str(p).encode("utf-8"))
        h.update(b"\x1f")
    return int.from_bytes(h.digest(), "big")


def seeded_offset(audio_id: str, seed: int, window_s: float, clip_s: float = CLIP_LENGTH_S) -> float:
    """Start of the ``window_s`` window inside a ``clip_s`` clip, fixed by (seed, audio_id), in ms."""
    span_ms = int(round(max(0.0, clip_s - window_s) * 1000))
    if span_ms == 0:
        return 0.0
    return (stable_hash("offset", seed, audio_id) % (span_ms + 1)) / 1000.0


@dataclass(frozen=True)
class PlanOptions:
    seed: int = 0
    sizes: dict = field(default_factory=lambda: dict(DEFAULT_SIZES))
    mask_mode: Literal["instance", "category"] = "instance"
    min_mask_area: float = 0.0  # fraction of the image
    max_per_category: int | None = None  # per split
    clip_seconds: float = 3.0
    rows_per_shard: int = 1000
    balance: bool = True
    sources_per_row: int | str = 1  # K > 1: one row per image with K categories, their K clips mixed;
    # "K1,K2" or "K1:W1,K2:W2": a seeded, weighted choice of K per image (see parse_sources_per_row)
    negatives: float = 0.0  # fraction of each split made of off-screen (verified-negative) rows
    mix_keep_silent: bool = False  # K > 1 rows only on images keeping >= 1 usable category silent


@dataclass(frozen=True)
class Unit:
    """One candidate row: an image-side sample (one instance, or all instances of a category)."""

    key: str  # row id
    category: str
    category_id: int
    image_key: str  # "{source}:{image_id}"
    instances: tuple[ImageInstance, ...]
    mix: tuple = ()  # K > 1: ((category, category_id, instances), ...) in the seeded order

    @property
    def first(self) -> ImageInstance:
        return self.instances[0]


@dataclass(frozen=True)
class RowSpec:
    """Everything a worker needs to produce one row, with no choice left to make."""

    id: str
    split: str
    category: str
    category_id: int
    instances: tuple[ImageInstance, ...]
    clip: AudioClip
    audio_offset_s: float
    audio_seconds: float
    sources: tuple = ()  # SourceSpec per sounding source (extended builds); () = single source
    negative: bool = False  # off-screen row: the audio's category is verified absent
    image: ImageLabels | None = None  # the image of a negative row (which has no instances)


@dataclass(frozen=True)
class SourceSpec:
    """One sound of a row: its category, clip, window start and mix gain, and its instances."""

    category: str
    category_id: int
    clip: AudioClip
    audio_offset_s: float
    gain_db: float
    instances: tuple[ImageInstance, ...]  # () for the sound of a negative row


@dataclass(frozen=True)
class PoolSpec:
    """One clip of a category's train audio pool (for same-category re-pairing at load time)."""

    category: str
    category_id: int
    clip: AudioClip
    audio_offset_s: float
    audio_seconds: float


@dataclass(frozen=True)
class ShardSpec:
    kind: Literal["rows", "pool"]
    split: str
    index: int
    num_shards: int
    items: tuple  # RowSpec | PoolSpec

    @property
    def relpath(self) -> str:
        return shard_relpath(self.kind, self.split, self.index, self.num_shards)


@dataclass
class Plan:
    options: PlanOptions
    categories: list[dict]
    rows: dict[str, list[RowSpec]]
    pool: list[PoolSpec]
    shards: list[ShardSpec]
    requested: dict[str, int]
    targets: dict[str, int]
    available: dict[str, dict[str, int]]  # category -> {"units", "images", "clips_train", "clips_test"}
    shortfall: dict[str, dict[str, int]]  # split -> category -> rows missing vs the requested share
    filtered: dict[str, int]  # reason -> count (units dropped by the plan's own rules)
    composition: dict = field(default_factory=dict)  # extended builds: mixes / negatives per split

    def counts(self) -> dict[str, dict]:
        out = {}
        for split in SPLITS:
            per_cat: dict[str, int] = defaultdict(int)
            for r in self.rows[split]:
                per_cat[r.category] += 1
            n_shards = sum(1 for s in self.shards if s.kind == "rows" and s.split == split)
            out[split] = {
                "rows": len(self.rows[split]),
                "num_shards": n_shards,
                "per_category": dict(sorted(per_cat.items())),
            }
        return out


# ---------------------------------------------------------------------------------------------


def make_units(
    instances: Iterable[ImageInstance], manifest: Manifest, options: PlanOptions
) -> tuple[list[Unit], dict[str, int]]:
    """Group instances into candidate rows and drop those under ``min_mask_area``."""
    ids = {c.name: c.category_id for c in manifest.categories}
    filtered: dict[str, int] = defaultdict(int)
    groups: dict[tuple, list[ImageInstance]] = defaultdict(list)
    for inst in instances:
        if inst.category not in ids:
            continue
        image_key = f"{inst.source}:{inst.image_id}"
        if options.mask_mode == "instance":
            groups[(image_key, inst.category, inst.annotation_id)].append(inst)
        else:
            groups[(image_key, inst.category)].append(inst)
    units = []
    for gkey, insts in groups.items():
        insts.sort(key=lambda i: i.annotation_id)
        first = insts[0]
        img_area = max(1, first.width * first.height)
        frac = min(1.0, sum(i.area for i in insts) / img_area)
        if frac < options.min_mask_area:
            filtered["mask area below --min-mask-area"] += 1
            continue
        if options.mask_mode == "instance":
            key = f"{first.source}-{first.image_id}-{first.annotation_id}"
        else:
            key = f"{first.source}-{first.image_id}-c{ids[first.category]}"
        units.append(Unit(key, first.category, ids[first.category], gkey[0], tuple(insts)))
    units.sort(key=lambda u: u.key)
    return units, dict(filtered)


def _water_fill(capacity: dict[str, int], total: int, cap: int | None) -> dict[str, int]:
    """Split ``total`` as evenly as possible over categories, none above its capacity (or cap)."""
    limit = {c: min(n, cap) if cap is not None else n for c, n in capacity.items()}
    quota = {c: 0 for c in capacity}
    remaining = total
    open_cats = sorted(c for c in capacity if limit[c] > 0)
    while remaining > 0 and open_cats:
        share, extra = divmod(remaining, len(open_cats))
        next_open = []
        given = 0
        for i, c in enumerate(open_cats):
            want = share + (1 if i < extra else 0)
            take = min(want, limit[c] - quota[c])
            quota[c] += take
            given += take
            if quota[c] < limit[c]:
                next_open.append(c)
        remaining -= given
        if given == 0:
            break
        open_cats = next_open
    return quota


def _split_test_clips(clips: Sequence[AudioClip], seed: int) -> dict[str, list[AudioClip]]:
    """Divide a category's VGGSound test clips between validation and test (disjoint)."""
    out: dict[str, list[AudioClip]] = {"validation": [], "test": []}
    ordered = sorted(clips, key=lambda c: (stable_hash("vt", seed, c.audio_id), c.audio_id))
    for i, clip in enumerate(ordered):
        out["validation" if i % 2 == 0 else "test"].append(clip)
    return out


def make_plan(
    instances: Iterable[ImageInstance],
    clips: Iterable[AudioClip],
    manifest: Manifest,
    options: PlanOptions = PlanOptions(),
    image_labels: Iterable[ImageLabels] = (),
) -> Plan:
    """Join instances and clips into a deterministic, sharded plan.

    ``image_labels``: the sources' verified negatives and not-exhaustive categories per image,
    used by ``sources_per_row`` > 1 and ``negatives`` > 0 (see :func:`make_mix_units`,
    :func:`plan_negatives`).
    """
    seed = options.seed
    labels = {lab.image_key: lab for lab in image_labels}
    choices = parse_sources_per_row(options.sources_per_row)
    extended = options.negatives > 0 or max(k for k, _ in choices) > 1
    if len(choices) > 1:
        units, filtered = make_choice_units(instances, manifest, options, labels)
    elif choices[0][0] > 1:
        units, filtered = make_mix_units(instances, manifest, options, labels)
    else:
        units, filtered = make_units(instances, manifest, options)
    cat_names = [c.name for c in manifest.categories]
    label_to_cat = manifest.by_source_label("vggsound")

    # Audio pools per split and category, in a seeded order.
    by_cat_split: dict[tuple[str, str], list[AudioClip]] = defaultdict(list)
    for clip in clips:
        cat = label_to_cat.get(clip.label)
        if cat is not None:
            by_cat_split[(cat.name, clip.split)].append(clip)
    audio: dict[str, dict[str, list[AudioClip]]] = {s: {} for s in SPLITS}
    for name in cat_names:
        train = sorted(
            by_cat_split.get((name, "train"), []),
            key=lambda c: (stable_hash("a", seed, c.audio_id), c.audio_id),
        )
        audio["train"][name] = train
        vt = _split_test_clips(by_cat_split.get((name, "test"), []), seed)
        audio["validation"][name] = vt["validation"]
        audio["test"][name] = vt["test"]

    # Images in a seeded order; each image goes to exactly one split.
    by_image: dict[str, list[Unit]] = defaultdict(list)
    for u in units:
        by_image[u.image_key].append(u)
    image_order = sorted(by_image, key=lambda k: (stable_hash("img", seed, k), k))

    available = {
        name: {
            "units": 0,
            "images": 0,
            "clips_train": len(audio["train"][name]),
            "clips_test": len(audio["validation"][name]) + len(audio["test"][name]),
        }
        for name in cat_names
    }
    seen_img: dict[str, set] = defaultdict(set)
    for u in units:
        available[u.category]["units"] += 1
        seen_img[u.category].add(u.image_key)
    for name in cat_names:
        available[name]["images"] = len(seen_img[name])

    # Targets: the requested sizes, shrunk in proportion when the sources give fewer units.
    requested = {s: int(options.sizes.get(s, 0)) for s in SPLITS}
    usable = sum(
        available[n]["units"]
        for n in cat_names
        if available[n]["clips_train"] or available[n]["clips_test"]
    )
    total_req = sum(requested.values())
    scale = 1.0 if total_req == 0 or usable >= total_req else usable / total_req
    targets = {s: int(requested[s] * scale) for s in SPLITS}

    def usable_in(split: str, name: str) -> bool:
        return bool(audio[split][name])

    # Per-category quotas for the held-out splits (balanced; only categories with audio there).
    assigned: dict[str, list[Unit]] = {s: [] for s in SPLITS}
    taken_images: set[str] = set()
    for split in ("test", "validation"):
        cap = {n: available[n]["units"] if usable_in(split, n) else 0 for n in cat_names}
        if options.balance:
            quota = _water_fill(cap, targets[split], options.max_per_category)
        else:
            quota = _proportional(cap, targets[split], options.max_per_category)
        count = defaultdict(int)
        for img in image_order:
            if img in taken_images:
                continue
            us = by_image[img]
            useful = [u for u in us if count[u.category] < quota[u.category]]
            if not useful:
                continue
            taken_images.add(img)
            for u in useful:
                if count[u.category] < quota[u.category]:
                    assigned[split].append(u)
                    count[u.category] += 1
            if sum(count.values()) >= targets[split]:
                break

    # Train takes what is left, balanced by water-filling over what remains.
    remaining: dict[str, list[Unit]] = defaultdict(list)
    for img in image_order:
        if img not in taken_images:
            for u in by_image[img]:
                remaining[u.category].append(u)
    cap = {n: len(remaining[n]) if usable_in("train", n) else 0 for n in cat_names}
    if options.balance:
        quota = _water_fill(cap, targets["train"], options.max_per_category)
    else:
        quota = _proportional(cap, targets["train"], options.max_per_category)
    for name in cat_names:
        assigned["train"].extend(remaining[name][: quota[name]])

    # Pair audio and order rows within each split.
    rows: dict[str, list[RowSpec]] = {}
    for split in SPLITS:
        per_cat_index = defaultdict(int)
        specs = []
        for u in sorted(assigned[split], key=lambda u: u.key):
            if u.mix:
                spec = _mixed_row(u, split, audio[split], per_cat_index, options)
                if spec is None:
                    filtered["a chosen category has no audio in the split"] = filtered.get(
                        "a chosen category has no audio in the split", 0) + 1
                else:
                    specs.append(spec)
                continue
            pool = audio[split][u.category]
            k = per_cat_index[u.category]
            per_cat_index[u.category] += 1
            clip = pool[k % len(pool)]
            specs.append(
                RowSpec(
                    id=u.key,
                    split=split,
                    category=u.category,
                    category_id=u.category_id,
                    instances=u.instances,
                    clip=clip,
                    audio_offset_s=seeded_offset(clip.audio_id, seed, options.clip_seconds),
                    audio_seconds=float(options.clip_seconds),
                )
            )
        if extended:
            specs = [_as_extended(r) for r in specs]
        rows[split] = specs
    composition: dict = {}
    if options.negatives > 0:
        composition = plan_negatives(rows, labels.values(), audio, per_split_index(rows), ids_of(manifest),
                                     options)
    for split in SPLITS:
        rows[split].sort(key=lambda r: (stable_hash("row", seed, r.id), r.id))
    if extended:
        composition = {
            split: {
                "rows": len(rows[split]),
                "mixed_rows": sum(1 for r in rows[split] if len(r.sources) > 1),
                "negative_rows": sum(1 for r in rows[split] if r.negative),
                **composition.get(split, {}),
            }
            for split in SPLITS
        }

    # The train audio pool: every train clip of every category present in train.
    train_cats = sorted({r.category for r in rows["train"]} | {src.category for r in rows["train"] for src in r.sources},
                        key=cat_names.index)
    ids = {c.name: c.category_id for c in manifest.categories}
    pool = [
        PoolSpec(
            name,
            ids[name],
            clip,
            seeded_offset(clip.audio_id, seed, options.clip_seconds),
            float(options.clip_seconds),
        )
        for name in train_cats
        for clip in audio["train"][name]
    ]

    shards = make_shards(rows, pool, options.rows_per_shard)

    shortfall: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        share = _water_fill({n: 10**12 for n in cat_names}, requested[split], options.max_per_category)
        got = defaultdict(int)
        for r in rows[split]:
            got[r.category] += 1
        missing = {n: share[n] - got[n] for n in cat_names if share[n] > got[n]}
        if missing:
            shortfall[split] = missing

    categories = [{"name": c.name, "category_id": c.category_id} for c in manifest.categories]
    return Plan(options, categories, rows, pool, shards, requested, targets, available,
                shortfall, filtered, composition)


def _proportional(capacity: dict[str, int], total: int, cap: int | None) -> dict[str, int]:
    """Unbalanced quotas: take units in proportion to what each category has."""
    limit = {c: min(n, cap) if cap is not None else n for c, n in capacity.items()}
    have = sum(limit.values())
    if have <= total:
        return limit
    quota = {c: (limit[c] * total) // have for c in sorted(limit)}
    leftover = total - sum(quota.values())
    for c in sorted(limit, key=lambda c: (-(limit[c] * total % have), c)):
        if leftover <= 0:
            break
        if quota[c] < limit[c]:
            quota[c] += 1
            leftover -= 1
    return quota


def make_shards(rows: dict[str, list[RowSpec]], pool: list[PoolSpec], per_shard: int) -> list[ShardSpec]:
    """Cut each split's rows, then the pool, into shards of ``per_shard`` items, in order."""
    if per_shard < 1:
        raise ValueError("rows_per_shard must be >= 1")
    shards: list[ShardSpec] = []
    for split in SPLITS:
        items = rows[split]
        n = max(1, -(-len(items) // per_shard)) if items else 0
        for i in range(n):
            shards.append(ShardSpec("rows", split, i, n, tuple(items[i * per_shard:(i + 1) * per_shard])))
    n = -(-len(pool) // per_shard) if pool else 0
    for i in range(n):
        shards.append(ShardSpec("pool", "train", i, n, tuple(pool[i * per_shard:(i + 1) * per_shard])))
    return shards


def plan_from_rows(
    rows: dict[str, list[RowSpec]], pool: list[PoolSpec], categories: list[dict], options: PlanOptions
) -> Plan:
    """A plan whose rows were decided elsewhere (e.g. an existing release's own split assignment):
    the requested and target sizes are the row counts, nothing is short, filtered or balanced."""
    counts = {s: len(rows[s]) for s in SPLITS}
    return Plan(
        options=options, categories=categories, rows=rows, pool=pool,
        shards=make_shards(rows, pool, options.rows_per_shard),
        requested=counts, targets=dict(counts), available={}, shortfall={}, filtered={},
    )


# ---------------------------------------------------------------------------------------------
# Multi-source rows (--sources-per-row K) and off-screen negatives (--negatives FRACTION)

SKIP_FEW_CATEGORIES = "image has fewer than --sources-per-row usable categories"
SKIP_NONE_SILENT = "image would keep no usable category silent (--mix-keep-silent)"
GAIN_RANGE_DB = 6.0  # mix gains are drawn in [-6, 0] dB, in 0.1 dB steps


def ids_of(manifest: Manifest) -> dict[str, int]:
    return {c.name: c.category_id for c in manifest.categories}


def parse_sources_per_row(value: int | str) -> tuple[tuple[int, int], ...]:
    """``--sources-per-row``: ``K`` (every row K sources) or a list ``K1,K2,...`` with optional
    weights ``K1:W1,K2:W2`` (each image draws its K, seeded, among the listed K it can fill, with
    probability proportional to W; W defaults to 1). Returns ``((K, W), ...)`` sorted by K;
    ValueError with a one-line message on anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError("--sources-per-row must be at least 1")
        return ((value, 1),)
    out: dict[int, int] = {}
    for part in str(value).split(","):
        k_text, _, w_text = part.strip().partition(":")
        try:
            k, w = int(k_text), int(w_text) if w_text else 1
        except ValueError:
            raise ValueError(f"--sources-per-row: {part.strip()!r} is not K or K:WEIGHT (whole numbers), "
                             "e.g. 2 or 1,2 or 1:3,2:1") from None
        if k < 1 or w < 1:
            raise ValueError(f"--sources-per-row: K and its weight must be at least 1 (got {part.strip()!r})")
        if k in out:
            raise ValueError(f"--sources-per-row: K = {k} is listed twice")
        out[k] = w
    return tuple(sorted(out.items()))


def canonical_sources_per_row(value: int | str) -> int | str:
    """The build record's spelling: an int for one K (as before K lists existed), else ``K:W,...``."""
    choices = parse_sources_per_row(value)
    if len(choices) == 1:
        return choices[0][0]
    return ",".join(f"{k}:{w}" for k, w in choices)


def choose_k(choices: Sequence[tuple[int, int]], usable: int, seed: int, image_key: str,
             keep_silent: bool = False) -> int | None:
    """The K of one image: a seeded draw among the listed K not above ``usable`` (the image's usable
    categories), weighted; None when every listed K is above it. ``keep_silent``: a K > 1 also
    needs one usable category more (left silent, ``--mix-keep-silent``)."""
    fit = [(k, w) for k, w in choices if k + (keep_silent and k > 1) <= usable]
    if not fit:
        return None
    bounds = list(accumulate(w for _, w in fit))  # K i is drawn when x falls in [bounds[i-1], bounds[i])
    x = stable_hash("k", seed, image_key) % bounds[-1]
    return fit[bisect_right(bounds, x)][0]


def _instances_per_image(instances: Iterable[ImageInstance], ids: dict[str, int]
                         ) -> dict[str, dict[str, list[ImageInstance]]]:
    """image key → manifest category → the image's instances of it (other categories dropped)."""
    per_image: dict[str, dict[str, list[ImageInstance]]] = defaultdict(lambda: defaultdict(list))
    for inst in instances:
        if inst.category in ids:
            per_image[f"{inst.source}:{inst.image_id}"][inst.category].append(inst)
    return per_image


def _usable_categories(per_image: dict[str, list[ImageInstance]], lab: ImageLabels | None) -> list[str]:
    excluded = set(lab.not_exhaustive) if lab else set()
    return sorted(c for c in per_image if c not in excluded)


def make_choice_units(
    instances: Iterable[ImageInstance], manifest: Manifest, options: PlanOptions,
    labels: dict[str, ImageLabels],
) -> tuple[list[Unit], dict[str, int]]:
    """Candidate rows of a build with several K (``--sources-per-row 1,2``): each image draws its K
    (:func:`choose_k`) among its usable categories (never a not-exhaustive one); an image with
    K = 1 gives exactly the rows a single-source build makes of it (:func:`make_units`), one with
    K > 1 the one mixed row of a ``--sources-per-row K`` build (:func:`make_mix_units`)."""
    choices = parse_sources_per_row(options.sources_per_row)
    ids = ids_of(manifest)
    per_image = _instances_per_image(instances, ids)
    by_k: dict[int, list[ImageInstance]] = defaultdict(list)
    filtered: dict[str, int] = defaultdict(int)
    for image_key in sorted(per_image):
        k = choose_k(choices, len(_usable_categories(per_image[image_key], labels.get(image_key))),
                     options.seed, image_key, options.mix_keep_silent)
        if k is None:
            filtered[SKIP_FEW_CATEGORIES] += 1
            continue
        by_k[k].extend(i for c in sorted(per_image[image_key]) for i in per_image[image_key][c])
    units: list[Unit] = []
    for k in sorted(by_k):
        if k == 1:
            got, why = make_units(by_k[k], manifest, options)
        else:
            got, why = make_mix_units(by_k[k], manifest, replace(options, sources_per_row=k), labels)
        units += got
        for reason, n in why.items():
            filtered[reason] += n
    units.sort(key=lambda u: u.key)
    return units, dict(filtered)


def make_mix_units(
    instances: Iterable[ImageInstance], manifest: Manifest, options: PlanOptions,
    labels: dict[str, ImageLabels],
) -> tuple[list[Unit], dict[str, int]]:
    """One candidate row per image holding instances of at least K manifest categories (K + 1 with
    ``mix_keep_silent``, so a manifest object of the image stays silent).

    The K categories are a seeded choice among the image's categories, never one the source
    marks not exhaustively annotated (LVIS ``not_exhaustive_category_ids``); the row's mask is
    the union of the chosen categories' instances. The unit's ``category`` is the first chosen.
    """
    ((k, _),) = parse_sources_per_row(options.sources_per_row)
    ids = ids_of(manifest)
    filtered: dict[str, int] = defaultdict(int)
    per_image = _instances_per_image(instances, ids)
    units = []
    for image_key in sorted(per_image):
        cats = _usable_categories(per_image[image_key], labels.get(image_key))
        if len(cats) < k:
            filtered[SKIP_FEW_CATEGORIES] += 1
            continue
        if options.mix_keep_silent and len(cats) == k:
            filtered[SKIP_NONE_SILENT] += 1
            continue
        chosen = sorted(cats, key=lambda c: (stable_hash("mixcat", options.seed, image_key, c), c))[:k]
        mix = tuple(
            (c, ids[c], tuple(sorted(per_image[image_key][c], key=lambda i: i.annotation_id))) for c in chosen
        )
        insts = tuple(i for _, _, group in mix for i in group)
        first = insts[0]
        frac = min(1.0, sum(i.area for i in insts) / max(1, first.width * first.height))
        if frac < options.min_mask_area:
            filtered["mask area below --min-mask-area"] += 1
            continue
        key = f"{first.source}-{first.image_id}-m" + "-".join(str(cid) for _, cid, _ in mix)
        units.append(Unit(key, chosen[0], ids[chosen[0]], image_key, insts, mix))
    units.sort(key=lambda u: u.key)
    return units, dict(filtered)


def mix_gain_db(seed: int, row_id: str, index: int) -> float:
    """The seeded gain of source ``index`` of a mixed row, in [-GAIN_RANGE_DB, 0] dB."""
    steps = int(round(GAIN_RANGE_DB * 10))
    return -float(stable_hash("gain", seed, row_id, index) % (steps + 1)) / 10.0


def _mixed_row(u: Unit, split: str, audio: dict[str, list[AudioClip]], per_cat_index: dict,
               options: PlanOptions) -> RowSpec | None:
    if any(not audio[c] for c, _, _ in u.mix):
        return None
    sources = []
    for i, (cat, cid, insts) in enumerate(u.mix):
        pool = audio[cat]
        clip = pool[per_cat_index[cat] % len(pool)]
        per_cat_index[cat] += 1
        sources.append(SourceSpec(cat, cid, clip, seeded_offset(clip.audio_id, options.seed, options.clip_seconds),
                                  mix_gain_db(options.seed, u.key, i), insts))
    first = sources[0]
    return RowSpec(
        id=u.key, split=split, category=first.category, category_id=first.category_id,
        instances=u.instances, clip=first.clip, audio_offset_s=first.audio_offset_s,
        audio_seconds=float(options.clip_seconds), sources=tuple(sources),
    )


def _as_extended(r: RowSpec) -> RowSpec:
    """A single-source row of an extended build: its one source listed, gain 0 dB."""
    if r.sources:
        return r
    src = SourceSpec(r.category, r.category_id, r.clip, r.audio_offset_s, 0.0, r.instances)
    return RowSpec(r.id, r.split, r.category, r.category_id, r.instances, r.clip, r.audio_offset_s,
                   r.audio_seconds, (src,))


def per_split_index(rows: dict[str, list[RowSpec]]) -> dict[str, dict[str, int]]:
    """How many clips of each category a split's rows already drew (negatives continue from there)."""
    out: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        d: dict[str, int] = defaultdict(int)
        for r in rows[split]:
            for src in r.sources or ():
                d[src.category] += 1
        out[split] = d
    return out


def negative_count(positives: int, fraction: float) -> int:
    """Negatives to add so that they make ``fraction`` of a split: round(f / (1 - f) * positives)."""
    if not 0 <= fraction < 1:
        raise ValueError("negatives fraction must be in [0, 1)")
    return int(round(fraction / (1.0 - fraction) * positives))


def plan_negatives(
    rows: dict[str, list[RowSpec]], labels: Iterable[ImageLabels], audio: dict[str, dict[str, list[AudioClip]]],
    index: dict[str, dict[str, int]], ids: dict[str, int], options: PlanOptions,
) -> dict[str, dict]:
    """Add off-screen rows to each split (in place); return requested / made counts per split.

    A negative row shows an image and plays a clip of a category the source *verified absent*
    from it (``ImageLabels.negatives``), with an empty mask. An image keeps its split: one already
    used by a split's rows gives negatives to that split only; an unused image is given to a split
    by a seeded draw weighted by the splits' sizes. At most one negative per image; the category
    is a seeded choice among its verified negatives that have audio in the split.
    """
    seed = options.seed
    image_split = {f"{i.source}:{i.image_id}": split for split in SPLITS for r in rows[split] for i in r.instances}
    sizes = [max(0, len(rows[s])) for s in SPLITS]
    total = sum(sizes)
    out: dict[str, dict] = {}
    candidates: dict[str, list[ImageLabels]] = {s: [] for s in SPLITS}
    for lab in labels:
        if not lab.negatives:
            continue
        split = image_split.get(lab.image_key)
        if split is None:
            if total == 0:
                continue
            x = stable_hash("negsplit", seed, lab.image_key) % total
            split = SPLITS[0] if x < sizes[0] else SPLITS[1] if x < sizes[0] + sizes[1] else SPLITS[2]
        candidates[split].append(lab)
    for split in SPLITS:
        want = negative_count(len(rows[split]), options.negatives)
        made = 0
        order = sorted(candidates[split], key=lambda lab: (stable_hash("neg", seed, lab.image_key), lab.image_key))
        for lab in order:
            if made >= want:
                break
            cats = [c for c in lab.negatives if c in ids and audio[split].get(c)]
            if not cats:
                continue
            cat = min(cats, key=lambda c: (stable_hash("negcat", seed, lab.image_key, c), c))
            pool = audio[split][cat]
            clip = pool[index[split][cat] % len(pool)]
            index[split][cat] += 1
            offset = seeded_offset(clip.audio_id, seed, options.clip_seconds)
            rid = f"{lab.source}-{lab.image_id}-n{ids[cat]}"
            src = SourceSpec(cat, ids[cat], clip, offset, 0.0, ())
            rows[split].append(RowSpec(rid, split, cat, ids[cat], (), clip, offset, float(options.clip_seconds),
                                       (src,), True, lab))
            made += 1
        out[split] = {"negatives_requested": want}
    return out
