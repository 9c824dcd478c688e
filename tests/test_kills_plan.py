"""Multi-source rows (--sources-per-row K) and off-screen negatives (--negatives F) of the plan,
on small hand-built records (no media is read by the planner). Written against the mutation
survivors of `plan` (issue 17); the builds that exercise the same rules end to end are in
tests/test_mixing.py, too slow to run for every mutant. Expected values come from the records'
construction and the documented rules."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from avsynth.manifest import Category, Manifest
from avsynth.plan import (GAIN_RANGE_DB, SKIP_FEW_CATEGORIES, PlanOptions, make_plan, mix_gain_db,
                          negative_count, seeded_offset)
from avsynth.sources.records import AudioClip, ImageInstance, ImageLabels, MaskRef

CATS = ["dog", "cat", "piano", "bus"]
MANIFEST = Manifest("t", tuple(Category(name=n, category_id=10 + i, lvis=(n,), vggsound=(f"{n} sound",))
                               for i, n in enumerate(CATS)))
ID = {n: 10 + i for i, n in enumerate(CATS)}


def inst(image: int, cat: str, ann: int, area: float = 100.0, source: str = "lvis") -> ImageInstance:
    return ImageInstance(source=source, image_id=str(image), annotation_id=f"{ann:04d}", category=cat,
                         source_label=cat, image_path=Path(f"/x/{image}.jpg"), width=100, height=50,
                         mask=MaskRef(polygons=((0.0, 0.0, 5.0, 0.0, 5.0, 5.0),)), bbox=(0, 0, 5, 5), area=area)


def clips(n_train: int, n_test: int, cats=CATS) -> list[AudioClip]:
    return [AudioClip("vggsound", f"{c}{i:03d}", f"{c} sound", "train" if i < n_train else "test",
                      Path(f"/a/{c}{i}.wav")) for c in cats for i in range(n_train + n_test)]


def labels(image: int, negatives=(), not_exhaustive=(), source: str = "lvis") -> ImageLabels:
    return ImageLabels(source, str(image), Path(f"/x/{image}.jpg"), 100, 50, tuple(negatives), tuple(not_exhaustive))


def opts(**kw) -> PlanOptions:
    base = dict(seed=5, sizes={"train": 1000, "validation": 0, "test": 0}, rows_per_shard=1000, clip_seconds=3.0)
    base.update(kw)
    return PlanOptions(**base)


def all_rows(plan):
    return [r for s in ("train", "validation", "test") for r in plan.rows[s]]


# ------------------------------------------------------------------------------- mixed rows (K)


def test_mixed_rows_choose_k_exhaustive_categories_and_union_their_instances():
    # image 1: dog (2 instances), cat, piano; piano not exhaustive -> the row mixes dog and cat
    # image 2: dog only -> too few categories; image 3: cat + a category outside the manifest
    # image 4: three categories, all allowed: K = 2 of them
    recs = [inst(1, "dog", 3), inst(1, "dog", 1), inst(1, "cat", 2), inst(1, "piano", 4),
            inst(2, "dog", 5), inst(3, "cat", 6), inst(3, "horse", 7),
            inst(4, "dog", 8), inst(4, "cat", 9), inst(4, "bus", 10)]
    plan = make_plan(recs, clips(4, 0), MANIFEST, opts(sources_per_row=2),
                     [labels(1, not_exhaustive=("piano",))])
    rows = {r.id.split("-m")[0]: r for r in all_rows(plan)}
    assert sorted(rows) == ["lvis-1", "lvis-4"]
    assert plan.filtered == {SKIP_FEW_CATEGORIES: 2}
    one = rows["lvis-1"]
    assert {s.category for s in one.sources} == {"dog", "cat"}
    order = [s.category for s in one.sources]
    assert one.id == "lvis-1-m" + "-".join(str(ID[c]) for c in order)
    assert one.category == order[0] and one.category_id == ID[order[0]]
    by_cat = {s.category: [i.annotation_id for i in s.instances] for s in one.sources}
    assert by_cat == {"dog": ["0001", "0003"], "cat": ["0002"]}  # sorted by annotation id
    assert [i.annotation_id for i in one.instances] == [a for c in order for a in by_cat[c]]
    assert len(rows["lvis-4"].sources) == 2 and {s.category for s in rows["lvis-4"].sources} < {"dog", "cat", "bus"}
    # not exhaustive on a category the image lacks changes nothing; on one of two -> too few
    plan = make_plan(recs[:4], clips(4, 0), MANIFEST, opts(sources_per_row=2),
                     [labels(1, not_exhaustive=("cat", "piano"))])
    assert all_rows(plan) == [] and plan.filtered == {SKIP_FEW_CATEGORIES: 1}
    plan = make_plan(recs[:4], clips(4, 0), MANIFEST, opts(sources_per_row=3))
    assert [len(r.sources) for r in all_rows(plan)] == [3]


def test_the_chosen_categories_are_a_seeded_choice_among_all_of_the_image():
    # 40 images with the same four categories: the chosen pair varies with the image and the seed
    recs = [inst(img, c, 10 * img + k) for img in range(40) for k, c in enumerate(CATS)]
    pairs = {}
    for seed in (0, 1):
        plan = make_plan(recs, clips(10, 0), MANIFEST, opts(seed=seed, sources_per_row=2))
        pairs[seed] = {r.id.split("-m")[0]: tuple(s.category for s in r.sources) for r in all_rows(plan)}
        assert len(pairs[seed]) == 40
        firsts = Counter(p[0] for p in pairs[seed].values())
        assert set(firsts) == set(CATS)  # every category comes first somewhere (not sorted order)
        assert len({frozenset(p) for p in pairs[seed].values()}) >= 5  # of the 6 possible pairs
    assert pairs[0] != pairs[1]


def test_mixed_rows_draw_clips_round_robin_with_seeded_gains_and_offsets():
    recs = [inst(img, c, 10 * img + k) for img in range(30) for k, c in enumerate(("dog", "cat"))]
    plan = make_plan(recs, clips(4, 0), MANIFEST, opts(sources_per_row=2, clip_seconds=2.5))
    rows = plan.rows["train"]
    assert len(rows) == 30
    use = Counter()
    for r in rows:
        assert [s.category for s in r.sources] in (["dog", "cat"], ["cat", "dog"])
        for i, s in enumerate(r.sources):
            assert s.category_id == ID[s.category] and s.clip.split == "train"
            assert s.clip.label == f"{s.category} sound"
            assert s.audio_offset_s == seeded_offset(s.clip.audio_id, 5, 2.5)
            assert s.gain_db == mix_gain_db(5, r.id, i)
            use[s.clip.audio_id] += 1
        assert (r.clip, r.audio_offset_s, r.audio_seconds) == (r.sources[0].clip, r.sources[0].audio_offset_s, 2.5)
        assert isinstance(r.audio_seconds, float) and not r.negative and r.split == "train"
    # 30 rows draw 30 clips of each category from its 4 train clips in turn: 8, 8, 7, 7 uses
    for c in ("dog", "cat"):
        assert sorted(n for a, n in use.items() if a.startswith(c)) == [7, 7, 8, 8]
    assert plan.composition["train"] == {"rows": 30, "mixed_rows": 30, "negative_rows": 0}
    assert plan.composition["test"] == {"rows": 0, "mixed_rows": 0, "negative_rows": 0}
    # the gains differ between the sources and rows (seeded, not constant)
    assert len({s.gain_db for r in rows for s in r.sources}) > 10


def test_a_mixed_row_whose_category_has_no_audio_in_the_split_is_counted():
    # 10 images with dog + piano; piano has no audio. A unit counts under its first category:
    # those led by piano have no train audio and are not planned; those led by dog are planned,
    # then dropped (and counted) because piano has no clip
    recs = [inst(img, c, 10 * img + k) for img in range(10) for k, c in enumerate(("dog", "piano"))]
    plan = make_plan(recs, clips(3, 0, cats=("dog",)), MANIFEST, opts(sources_per_row=2))
    led = {c: plan.available[c]["units"] for c in ("dog", "piano")}
    assert all_rows(plan) == [] and led["dog"] + led["piano"] == 10 and min(led.values()) > 0
    assert plan.filtered == {"a chosen category has no audio in the split": led["dog"]}


def test_mixed_units_min_mask_area_counts_the_union():
    # image 100 x 50 = 5000 px; two instances of 1250 px each: union fraction 0.5
    recs = [inst(1, "dog", 1, area=1250), inst(1, "cat", 2, area=1250)]
    keep = make_plan(recs, clips(2, 0), MANIFEST, opts(sources_per_row=2, min_mask_area=0.5))
    assert len(all_rows(keep)) == 1 and keep.filtered == {}
    drop = make_plan(recs, clips(2, 0), MANIFEST, opts(sources_per_row=2, min_mask_area=0.51))
    assert all_rows(drop) == [] and drop.filtered == {"mask area below --min-mask-area": 1}
    # every small image is counted (and does not stop the others): images 1, 2 too small, 3 kept
    many = recs + [inst(2, "dog", 3, area=10), inst(2, "cat", 4, area=10),
                   inst(3, "dog", 5, area=3000), inst(3, "cat", 6, area=3000)]
    plan = make_plan(many, clips(2, 0), MANIFEST, opts(sources_per_row=2, min_mask_area=0.51))
    assert [r.id.split("-m")[0] for r in all_rows(plan)] == ["lvis-3"]
    assert plan.filtered == {"mask area below --min-mask-area": 2}
    one_px = [inst(9, c, k, area=0.5) for k, c in enumerate(("dog", "cat"))]  # together the whole pixel
    one_px = [i.__class__(**{**i.__dict__, "width": 1, "height": 1}) for i in one_px]  # a 1 x 1 image, full
    assert len(all_rows(make_plan(one_px, clips(2, 0), MANIFEST, opts(sources_per_row=2, min_mask_area=0.99)))) == 1
    huge = [inst(1, "dog", 1, area=9000), inst(1, "cat", 2, area=9000)]  # above the image: capped at 1
    assert len(all_rows(make_plan(huge, clips(2, 0), MANIFEST, opts(sources_per_row=2, min_mask_area=1.0)))) == 1


def test_mix_gains_cover_minus_6_to_0_db_in_tenths():
    gains = [mix_gain_db(0, f"row{i}", 0) for i in range(3000)]
    assert GAIN_RANGE_DB == 6.0
    assert set(gains) == {-k / 10 for k in range(61)}  # 61 values from 0.0 to -6.0
    assert mix_gain_db(0, "row1", 0) == mix_gain_db(0, "row1", 0)
    assert len({mix_gain_db(s, "row1", i) for s in range(5) for i in range(5)}) > 5


# ---------------------------------------------------------------------------------- negatives


def test_negative_count_is_the_fraction_of_the_grown_split():
    assert negative_count(80, 0.2) == 20  # 20 / (80 + 20) = 0.2
    assert negative_count(10, 0.3) == 4  # 0.3 / 0.7 * 10 = 4.29
    assert negative_count(10, 0.0) == 0
    assert negative_count(3, 0.5) == 3
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError) as err:
            negative_count(10, bad)
        assert str(err.value) == "negatives fraction must be in [0, 1)"


def test_negative_rows_play_a_verified_absent_category_over_an_empty_mask():
    # 10 positive dog rows in train (images 0..9); images 0..9 verify piano (and horse, not in the
    # manifest) absent; images 20..29 have no instances and verify cat absent (unused images)
    recs = [inst(i, "dog", i) for i in range(10)]
    labs = [labels(i, negatives=("horse", "piano")) for i in range(10)]
    labs += [labels(20 + i, negatives=("cat",)) for i in range(10)]
    labs += [labels(40, negatives=("bus",)), labels(41, negatives=())]  # bus: no audio at all
    cl = clips(3, 0, cats=("dog", "cat", "piano"))
    plan = make_plan(recs, cl, MANIFEST, opts(negatives=0.5), labs)
    train = plan.rows["train"]
    neg = [r for r in train if r.negative]
    pos = [r for r in train if not r.negative]
    assert len(pos) == 10 and len(neg) == 10  # 0.5 / 0.5 * 10
    for r in neg:
        img = int(r.image.image_id)
        cat = "piano" if img < 10 else "cat"
        assert r.id == f"lvis-{img}-n{ID[cat]}" and r.category == cat and r.category_id == ID[cat]
        assert r.instances == () and r.image == labs[img if img < 10 else img - 10]
        assert r.clip.label == f"{cat} sound" and r.clip.split == "train"
        assert r.audio_offset_s == seeded_offset(r.clip.audio_id, 5, 3.0) and r.audio_seconds == 3.0
        assert len(r.sources) == 1
        s = r.sources[0]
        assert (s.category, s.category_id, s.clip, s.audio_offset_s, s.gain_db, s.instances) == (
            cat, ID[cat], r.clip, r.audio_offset_s, 0.0, ())
    # single-source positives of an extended build list their one source at 0 dB
    for r in pos:
        img = r.instances[0].image_id
        assert (r.id, r.split, r.category, r.category_id, r.audio_seconds) == (f"lvis-{img}-{int(img):04d}", "train",
                                                                            "dog", ID["dog"], 3.0)
        assert len(r.sources) == 1 and r.sources[0].gain_db == 0.0
        assert (r.sources[0].category, r.sources[0].clip, r.sources[0].instances) == ("dog", r.clip, r.instances)
        assert r.sources[0].audio_offset_s == r.audio_offset_s and r.sources[0].category_id == ID["dog"]
    # 20 candidates with usable audio, 10 wanted: chosen by a seeded order, one per image
    assert len({r.image.image_key for r in neg}) == 10
    assert {int(r.image.image_id) < 10 for r in neg} == {True, False}
    assert plan.composition["train"] == {"rows": 20, "mixed_rows": 0, "negative_rows": 10,
                                         "negatives_requested": 10}
    assert plan.composition["validation"] == {"rows": 0, "mixed_rows": 0, "negative_rows": 0,
                                              "negatives_requested": 0}
    # negatives continue the positives' round robin: piano and cat clips are used evenly
    use = Counter(r.clip.audio_id for r in neg)
    for c in ("cat", "piano"):
        n = [use[f"{c}{i:03d}"] for i in range(3)]
        assert max(n) - min(n) <= 1
    # the same inputs in another order give the same plan
    again = make_plan(list(reversed(recs)), list(reversed(cl)), MANIFEST, opts(negatives=0.5), list(reversed(labs)))
    assert again.rows == plan.rows


def test_negatives_continue_each_categorys_clip_rotation_after_the_positives():
    # 5 dog rows use dog clips 0..4 of 6 in turn; one negative dog row then takes the sixth clip
    recs = [inst(i, "dog", i) for i in range(5)]
    labs = [labels(100, negatives=("dog",))]
    plan = make_plan(recs, clips(6, 0, cats=("dog",)), MANIFEST, opts(negatives=0.2), labs)
    train = plan.rows["train"]
    assert sum(r.negative for r in train) == 1  # round(0.25 * 5)
    assert len({r.clip.audio_id for r in train}) == 6  # no clip played twice


def test_an_image_keeps_its_split_and_unused_images_follow_the_split_sizes():
    # images 0..59 give positives; the plan puts each in one split; their negatives stay there
    recs = [inst(i, "dog", i) for i in range(60)]
    labs = [labels(i, negatives=("cat",)) for i in range(60)]
    cl = clips(20, 20, cats=("dog", "cat"))
    plan = make_plan(recs, cl, MANIFEST, opts(negatives=0.25, sizes={"train": 40, "validation": 10, "test": 10}),
                     labs)
    for split in ("train", "validation", "test"):
        rows = plan.rows[split]
        pos_images = {r.instances[0].image_id for r in rows if not r.negative}
        neg_images = {r.image.image_id for r in rows if r.negative}
        assert neg_images <= pos_images, split
        assert sum(r.negative for r in rows) == negative_count(len(pos_images), 0.25)
        assert all(r.clip.split == ("train" if split == "train" else "test") for r in rows)
    # unused images (no instances) go to splits in proportion to their sizes; an empty split
    # gets none: here validation has no rows
    recs = [inst(i, "dog", i) for i in range(20)]
    labs = [labels(100 + i, negatives=("cat",)) for i in range(200)]
    plan = make_plan(recs, cl, MANIFEST, opts(negatives=0.9, sizes={"train": 10, "validation": 0, "test": 10}), labs)
    made = {s: sum(r.negative for r in plan.rows[s]) for s in ("train", "validation", "test")}
    assert made == {"train": 90, "validation": 0, "test": 90}  # 0.9 / 0.1 * 10 each, enough images
    # with one row in train and one in test, an unused image goes to either with probability 1/2
    recs = [inst(0, "dog", 0), inst(1, "dog", 1)]
    labs = [labels(100 + i, negatives=("cat",)) for i in range(40)]
    plan = make_plan(recs, cl, MANIFEST, opts(negatives=0.95, sizes={"train": 1, "validation": 0, "test": 1}), labs)
    made = {s: sum(r.negative for r in plan.rows[s]) for s in ("train", "validation", "test")}
    assert made["validation"] == 0 and made["train"] >= 5 and made["test"] >= 5
    # no positive row at all: nothing to attach negatives to
    plan = make_plan([], cl, MANIFEST, opts(negatives=0.5), labs)
    assert all_rows(plan) == []


# ------------------------------------------------------------------- unbalanced quotas, given rows


def test_leftover_rows_go_to_the_largest_remainders_not_by_name():
    from avsynth.plan import _proportional

    # a: 2 * 2 / 3 = 1.33 (remainder 1/3), b: 1 * 2 / 3 = 0.67 (remainder 2/3): b gets the leftover
    assert _proportional({"a": 2, "b": 1}, 2, None) == {"a": 1, "b": 1}
    # z: 5 * 4 / 7 = 2.86, a: 2 * 4 / 7 = 1.14: z first although a sorts first by name
    assert _proportional({"a": 2, "z": 5}, 4, None) == {"a": 1, "z": 3}


def test_plan_from_rows_keeps_its_options_and_categories():
    from avsynth.plan import plan_from_rows

    options = PlanOptions(rows_per_shard=7, seed=11)
    cats = [{"name": "dog", "category_id": 10}]
    plan = plan_from_rows({"train": [], "validation": [], "test": []}, [], cats, options)
    assert plan.options is options and plan.categories is cats and plan.shards == []


def test_mixed_rows_keep_each_image_in_one_split_and_count_units_by_their_first_category():
    recs = [inst(img, c, 10 * img + k) for img in range(24) for k, c in enumerate(CATS)]
    plan = make_plan(recs, clips(6, 6), MANIFEST,
                     opts(sources_per_row=2, sizes={"train": 12, "validation": 4, "test": 4}))
    images = {s: {r.instances[0].image_id for r in plan.rows[s]} for s in ("train", "validation", "test")}
    assert [len(plan.rows[s]) for s in ("train", "validation", "test")] == [12, 4, 4]
    assert not (images["train"] & images["validation"] or images["train"] & images["test"]
                or images["validation"] & images["test"])
    assert all(len({i.image_id for i in r.instances}) == 1 for r in all_rows(plan))
    # available units, by the first chosen category, add up to the 24 images
    firsts = Counter()
    for r in all_rows(plan):
        firsts[r.sources[0].category] += 1
    assert sum(plan.available[c]["units"] for c in CATS) == 24
    assert all(plan.available[c]["images"] == plan.available[c]["units"] for c in CATS)
    full = make_plan(recs, clips(6, 6), MANIFEST, opts(sources_per_row=2))  # everything in train
    led = Counter(r.sources[0].category for r in full.rows["train"])
    assert {c: full.available[c]["units"] for c in CATS} == {c: led[c] for c in CATS}


def test_negatives_after_mixed_rows_keep_every_clip_in_turn():
    # 2 mixed dog + cat rows use dog clips 0, 1 and cat clips 0, 1 of 4; two negatives playing dog
    # continue with dog clips 2, 3: every dog clip once
    recs = [inst(img, c, 10 * img + k) for img in range(2) for k, c in enumerate(("dog", "cat"))]
    labs = [labels(50, negatives=("dog",)), labels(51, negatives=("dog",))]
    plan = make_plan(recs, clips(4, 0, cats=("dog", "cat")), MANIFEST,
                     opts(sources_per_row=2, negatives=0.5), labs)
    dog = Counter(s.clip.audio_id for r in plan.rows["train"] for s in r.sources if s.category == "dog")
    assert sum(r.negative for r in plan.rows["train"]) == 2
    assert dog == {f"dog{i:03d}": 1 for i in range(4)}


def test_negative_choices_are_seeded_per_image_and_category():
    # 40 dog rows in train; 40 unused images each verifying cat and piano absent; 10 negatives
    recs = [inst(i, "dog", i) for i in range(40)]
    labs = [labels(100 + i, negatives=("cat", "piano")) for i in range(40)]
    cl = clips(10, 0, cats=("dog", "cat", "piano"))
    chosen = {}
    for seed in (0, 1, 2):
        plan = make_plan(recs, cl, MANIFEST, opts(seed=seed, negatives=0.2), labs)
        neg = [r for r in plan.rows["train"] if r.negative]
        assert len(neg) == 10 and all(r.split == "train" for r in neg)
        chosen[seed] = {(r.image.image_id, r.category) for r in neg}
        # the category is drawn per image: both verified-absent categories are played
        assert {r.category for r in neg} == {"cat", "piano"}
    # which images (and which category per image) move with the seed
    assert len({frozenset(v) for v in chosen.values()}) == 3
    assert len({frozenset(i for i, _ in v) for v in chosen.values()}) == 3


def test_unused_images_are_spread_over_all_three_splits_by_size():
    # one row in each split... train twice as big: an unused image goes to train with p = 1/2
    recs = [inst(i, "dog", i) for i in range(4)]
    labs = [labels(100 + i, negatives=("cat",)) for i in range(120)]
    cl = clips(10, 10, cats=("dog", "cat"))
    plan = make_plan(recs, cl, MANIFEST, opts(negatives=0.95, sizes={"train": 2, "validation": 1, "test": 1}), labs)
    assert [sum(not r.negative for r in plan.rows[s]) for s in ("train", "validation", "test")] == [2, 1, 1]
    made = [sum(r.negative for r in plan.rows[s]) for s in ("train", "validation", "test")]
    # want 0.95 / 0.05 * rows = 38 per train, 19 per held-out split; 120 images suffice for each
    assert made == [38, 19, 19]
    assert all(r.split == s for s in ("train", "validation", "test") for r in plan.rows[s])
    # which unused image goes to which split moves with the seed
    held_out = []
    for seed in (1, 2):
        other = make_plan(recs, cl, MANIFEST, opts(seed=seed, negatives=0.95,
                                                    sizes={"train": 2, "validation": 1, "test": 1}), labs)
        held_out.append({r.image.image_id for r in other.rows["validation"] if r.negative})
    assert held_out[0] != held_out[1]


def test_images_without_negatives_or_usable_audio_are_skipped_not_stopping_the_others():
    recs = [inst(i, "dog", i) for i in range(10)]
    labs = [labels(99)]  # no verified negative, first in the list
    labs += [labels(100 + i, negatives=("bus",)) for i in range(10)]  # bus: no audio anywhere
    labs += [labels(200 + i, negatives=("bus", "horse", "cat")) for i in range(10)]  # only cat is usable
    plan = make_plan(recs, clips(10, 0, cats=("dog", "cat")), MANIFEST, opts(negatives=0.5), labs)
    neg = [r for r in plan.rows["train"] if r.negative]
    assert len(neg) == 10  # 0.5 / 0.5 * 10, all from the images 200..209
    assert {r.image.image_id for r in neg} == {str(200 + i) for i in range(10)}
    assert {r.category for r in neg} == {"cat"}


def test_several_negatives_of_a_category_take_its_clips_in_turn():
    # 5 dog rows use dog clips 0..4 of 7; two dog negatives take clips 5 and 6
    recs = [inst(i, "dog", i) for i in range(5)]
    labs = [labels(100, negatives=("dog",)), labels(101, negatives=("dog",))]
    plan = make_plan(recs, clips(7, 0, cats=("dog",)), MANIFEST, opts(negatives=0.3), labs)
    train = plan.rows["train"]
    assert sum(r.negative for r in train) == 2  # round(0.3 / 0.7 * 5) = 2
    assert sorted(r.clip.audio_id for r in train) == [f"dog{i:03d}" for i in range(7)]


def test_train_clips_are_drawn_in_a_seeded_order():
    # one train row per category, ten train clips each: the clip a row gets is the first of a
    # seeded order of the category's clips, different between seeds and not the name order
    recs = [inst(i, c, i) for i, c in enumerate(CATS)]
    firsts = {}
    for seed in range(6):
        plan = make_plan(recs, clips(10, 0), MANIFEST, opts(seed=seed))
        firsts[seed] = tuple(sorted((r.category, r.clip.audio_id) for r in plan.rows["train"]))
        assert len(firsts[seed]) == 4
    assert len(set(firsts.values())) == 6
    named_first = tuple(sorted((c, f"{c}000") for c in CATS))
    assert sum(v == named_first for v in firsts.values()) <= 1
