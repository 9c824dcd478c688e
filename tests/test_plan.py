"""The join rules of DESIGN §4, checked on synthetic records (no media is read by the planner)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from avsynth.manifest import Category, Manifest
from avsynth.plan import PlanOptions, _water_fill, make_plan, seeded_offset, stable_hash
from avsynth.sources.records import AudioClip, ImageInstance, MaskRef

CATS = ["dog", "cat", "piano", "bus"]
MANIFEST = Manifest(
    "t",
    tuple(
        Category(name=n, category_id=i, lvis=(n,), vggsound=(f"{n} sound", f"{n} other"))
        for i, n in enumerate(CATS)
    ),
)


def instances(n_images: int, per_image: int = 2, w: int = 100, h: int = 80) -> list[ImageInstance]:
    out = []
    ann = 0
    for img in range(n_images):
        for k in range(per_image):
            cat = CATS[(img + k) % len(CATS)]
            ann += 1
            out.append(
                ImageInstance(
                    source="lvis", image_id=str(img), annotation_id=str(ann), category=cat,
                    source_label=cat, image_path=Path(f"/x/{img}.jpg"), width=w, height=h,
                    mask=MaskRef(polygons=((0.0, 0.0, 10.0, 0.0, 10.0, 10.0),)),
                    bbox=(0, 0, 10, 10), area=float(10 * (1 + img % 7)),
                )
            )
    return out


def clips(n_train: int, n_test: int) -> list[AudioClip]:
    out = []
    for cat in CATS:
        for i in range(n_train + n_test):
            split = "train" if i < n_train else "test"
            label = f"{cat} sound" if i % 2 == 0 else f"{cat} other"
            out.append(AudioClip("vggsound", f"{cat[:3]}{i:08d}_000000", label, split,
                                 Path(f"/a/{cat}{i}.wav")))
    return out


def opts(**kw) -> PlanOptions:
    base = dict(seed=3, sizes={"train": 200, "validation": 30, "test": 30}, rows_per_shard=50)
    base.update(kw)
    return PlanOptions(**base)


def test_splits_disjoint_in_images_and_audio():
    plan = make_plan(instances(200), clips(12, 8), MANIFEST, opts())
    images = {s: {r.instances[0].image_id for r in plan.rows[s]} for s in plan.rows}
    audio = {s: {r.clip.audio_id for r in plan.rows[s]} for s in plan.rows}
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        assert not images[a] & images[b], (a, b)
        assert not audio[a] & audio[b], (a, b)
    assert all(r.clip.split == "train" for r in plan.rows["train"])
    assert all(r.clip.split == "test" for s in ("validation", "test") for r in plan.rows[s])
    # the pool holds train clips only, each category's all of them
    assert {p.clip.split for p in plan.pool} == {"train"}
    assert Counter(p.category for p in plan.pool) == {c: 12 for c in CATS}


def test_sizes_balance_and_sharding():
    plan = make_plan(instances(200), clips(12, 8), MANIFEST, opts())
    counts = plan.counts()
    assert counts["train"]["rows"] == 200
    assert counts["validation"]["rows"] == 30 and counts["test"]["rows"] == 30
    per_cat = counts["train"]["per_category"]
    assert max(per_cat.values()) - min(per_cat.values()) <= 1  # balanced
    train_shards = [s for s in plan.shards if s.kind == "rows" and s.split == "train"]
    assert [len(s.items) for s in train_shards] == [50, 50, 50, 50]
    assert train_shards[0].relpath == "data/train-00000-of-00004.parquet"
    assert plan.shortfall == {}


def test_deterministic_and_seed_sensitive():
    a = make_plan(instances(120), clips(6, 4), MANIFEST, opts())
    b = make_plan(list(reversed(instances(120))), list(reversed(clips(6, 4))), MANIFEST, opts())
    assert [s.items for s in a.shards] == [s.items for s in b.shards]  # input order is irrelevant
    c = make_plan(instances(120), clips(6, 4), MANIFEST, opts(seed=4))
    assert [r.id for r in a.rows["train"]] != [r.id for r in c.rows["train"]]


def test_shortfall_scales_targets_and_is_reported():
    # 40 images x 2 instances = 80 units, far fewer than requested: targets shrink in proportion.
    plan = make_plan(instances(40), clips(6, 4), MANIFEST,
                     opts(sizes={"train": 800, "validation": 100, "test": 100}))
    total = sum(len(v) for v in plan.rows.values())
    assert 0 < total <= 80
    assert plan.targets["train"] < 800 and plan.targets["validation"] < 100
    assert set(plan.shortfall) == {"train", "validation", "test"}
    assert all(n > 0 for d in plan.shortfall.values() for n in d.values())


def test_category_without_audio_in_a_split_is_reported_not_paired():
    cl = [c for c in clips(6, 4) if not (c.label.startswith("bus") and c.split == "test")]
    plan = make_plan(instances(200), cl, MANIFEST, opts())
    assert all(r.category != "bus" for s in ("validation", "test") for r in plan.rows[s])
    assert plan.shortfall["test"]["bus"] > 0
    assert any(r.category == "bus" for r in plan.rows["train"])


def test_max_per_category_and_min_area():
    plan = make_plan(instances(200), clips(6, 4), MANIFEST, opts(max_per_category=20))
    assert max(plan.counts()["train"]["per_category"].values()) == 20
    # areas are 10..70 px of 8000 px: a threshold of 50/8000 drops areas 10..40 (4 of 7 images,
    # 2 instances each: 70 images -> 40 images x 2 = 80 instances)
    plan = make_plan(instances(70), clips(6, 4), MANIFEST, opts(min_mask_area=50 / 8000))
    kept = [r for s in plan.rows.values() for r in s]
    assert kept and all(r.instances[0].area >= 50 for r in kept)
    assert plan.filtered["mask area below --min-mask-area"] == 80


def test_category_mode_unions_instances_of_a_category():
    insts = instances(60, per_image=2)
    # add a second dog to every image that has one
    extra = [
        ImageInstance(**{**i.__dict__, "annotation_id": i.annotation_id + "b"})
        for i in insts if i.category == "dog"
    ]
    plan = make_plan(insts + extra, clips(6, 4), MANIFEST, opts(mask_mode="category"))
    dogs = [r for s in plan.rows.values() for r in s if r.category == "dog"]
    assert dogs and all(len(r.instances) == 2 for r in dogs)
    assert all(r.id.endswith("-c0") for r in dogs)


def test_audio_windows_are_seeded_and_inside_the_clip():
    offs = {seeded_offset(f"id{i}", 0, 3.0) for i in range(200)}
    assert len(offs) > 150 and min(offs) >= 0 and max(offs) <= 7.0
    assert seeded_offset("x", 0, 3.0) == seeded_offset("x", 0, 3.0)
    assert seeded_offset("x", 0, 3.0) != seeded_offset("x", 1, 3.0)
    assert seeded_offset("x", 0, 10.0) == 0.0
    assert stable_hash("a", 1) == stable_hash("a", 1) != stable_hash("a", 2)
    assert all(round(o, 3) == o for o in offs)  # whole milliseconds
    # the same in another process (no dependence on hash randomisation)
    code = "from avsynth.plan import seeded_offset as s; print(s('clip5', 7, 3.0))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == seeded_offset("clip5", 7, 3.0)


def test_water_fill():
    assert _water_fill({"a": 100, "b": 100}, 50, None) == {"a": 25, "b": 25}
    assert _water_fill({"a": 5, "b": 100}, 50, None) == {"a": 5, "b": 45}
    assert _water_fill({"a": 5, "b": 10}, 50, None) == {"a": 5, "b": 10}
    assert _water_fill({"a": 100, "b": 100}, 50, 10) == {"a": 10, "b": 10}


@pytest.mark.parametrize("per_shard", [0, -1])
def test_bad_rows_per_shard(per_shard):
    with pytest.raises(ValueError):
        make_plan(instances(10), clips(2, 2), MANIFEST, opts(rows_per_shard=per_shard))
