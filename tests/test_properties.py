"""Property-based tests (hypothesis) where the rule is an invariant: the AVSBench metrics, the
plan's join, the restricted unpickler and the mask codecs. Example counts are kept small (the
whole file runs in well under half a minute on one core); ``derandomize`` makes every run draw
the same examples, so CI is reproducible."""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pycocotools import mask as coco_mask

from avsynth.errors import SourceError
from avsynth.evaluation.metrics import AVSBenchMetric, fscore, miou
from avsynth.manifest import Category, Manifest
from avsynth.media.mask import decode_png, encode_png, mask_stats, rasterize, union
from avsynth.plan import PlanOptions, make_plan
from avsynth.sources import avs_synthetic as A
from avsynth.sources.records import AudioClip, ImageInstance, MaskRef
from tests.test_metrics import oracle_fscore, oracle_iou

FEW = settings(max_examples=25, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# --------------------------------------------------------------------------------- metrics


@st.composite
def frames(draw, max_n: int = 3, max_side: int = 7):
    """(logits, gt): N x H x W float32 logits (some exactly 0, i.e. p = 0.5) and a binary gt."""
    n = draw(st.integers(1, max_n))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    logits = draw(hnp.arrays(np.float32, (n, h, w), elements=st.one_of(
        st.floats(-8, 8, width=32), st.sampled_from([0.0, -20.0, 20.0]))))
    gt = draw(hnp.arrays(np.bool_, (n, h, w)))
    return torch.from_numpy(logits), torch.from_numpy(gt).float()


@FEW
@given(frames())
def test_metrics_equal_the_loop_oracle_on_random_shapes(case):
    logits, gt = case
    assert miou(logits, gt) == pytest.approx(oracle_iou(logits, gt), abs=1e-6)
    assert fscore(logits, gt) == pytest.approx(oracle_fscore(logits, gt), abs=1e-6)
    assert 0.0 <= miou(logits, gt) <= 1.0 and 0.0 <= fscore(logits, gt) <= 1.0


@FEW
@given(hnp.arrays(np.bool_, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))))
def test_perfect_and_inverted_predictions(gt_np):
    gt = torch.from_numpy(gt_np).float()
    perfect = gt * 40 - 20
    nonempty = bool(gt.flatten(1).any(1).any())
    # perfect: every frame scores 1 (an empty frame by the correctly-empty rule)
    assert miou(perfect, gt) == pytest.approx(1.0, abs=1e-6)
    assert fscore(perfect, gt) == pytest.approx(1.0 if nonempty else 0.0, abs=1e-6)
    # inverted: no true positive anywhere, and an empty frame is predicted full
    assert miou(-perfect, gt) == 0.0
    # F-score of the inverted call: at threshold 0 every pixel is predicted (sigmoid(-20) > 0):
    # precision |G| / HW, recall 1; at every later threshold only background is predicted (F 0).
    # The call's score is the mean over non-empty frames of F at threshold 0.
    h, w = gt.shape[1:]
    valid = gt.flatten(1).any(1)
    prec = gt.sum(dim=(1, 2)) / (h * w)
    f0 = 1.3 * prec / (0.3 * prec + 1)
    expected = float(f0[valid].mean()) if bool(valid.any()) else 0.0
    assert fscore(-perfect, gt) == pytest.approx(expected, abs=1e-6)


@settings(FEW, max_examples=10)
@given(st.integers(1, 4), st.integers(2, 6), st.randoms(use_true_random=False),
       st.sampled_from(["video", "batch4"]))
def test_metric_is_invariant_to_frame_order_within_a_video(n_videos, n_frames, rnd, f_group):
    g = torch.Generator().manual_seed(rnd.randrange(1 << 30))
    videos = [(f"v{i}", torch.randn(n_frames, 6, 5, generator=g) * 3,
               (torch.rand(n_frames, 6, 5, generator=g) > 0.6).float()) for i in range(n_videos)]

    def score(vs):
        metric = AVSBenchMetric(f_group=f_group)
        for vid, x, y in vs:
            metric.update(x, y, [vid] * x.shape[0])
        return metric.compute()

    base = score(videos)
    shuffled = []
    for vid, x, y in videos:
        perm = torch.tensor(rnd.sample(range(n_frames), n_frames))
        shuffled.append((vid, x[perm], y[perm]))
    again = score(shuffled)
    assert again["miou"] == pytest.approx(base["miou"], abs=1e-9)
    assert again["fscore"] == pytest.approx(base["fscore"], abs=1e-9)
    # and the figure is the official loop's: calls of 4 videos (batch4) or 1 video (video)
    per = 4 if f_group == "batch4" else 1
    calls = [(torch.cat([x for _, x, _ in videos[i:i + per]]), torch.cat([y for _, _, y in videos[i:i + per]]))
             for i in range(0, n_videos, per)]
    assert base["miou"] == pytest.approx(np.mean([oracle_iou(x, y) for x, y in calls]), abs=1e-6)
    assert base["fscore"] == pytest.approx(np.mean([oracle_fscore(x, y) for x, y in calls]), abs=1e-6)


# ------------------------------------------------------------------------------------ plan

CATS = ["dog", "cat", "piano", "bus"]
MANIFEST = Manifest("p", tuple(Category(name=n, category_id=i, lvis=(n,), vggsound=(f"{n} sound",))
                               for i, n in enumerate(CATS)))


@st.composite
def sources(draw, one_per_image: bool = False):
    """Random instances (images with 1-3 instances of random categories) and clips."""
    n_images = draw(st.integers(1, 40))
    insts = []
    for img in range(n_images):
        per = 1 if one_per_image else draw(st.integers(1, 3))
        for k in range(per):
            cat = draw(st.sampled_from(CATS))
            insts.append(ImageInstance(
                source=draw(st.sampled_from(["lvis", "openimages"])), image_id=str(img),
                annotation_id=f"{img}-{k}", category=cat, source_label=cat,
                image_path=Path(f"/x/{img}.jpg"), width=50, height=40,
                mask=MaskRef(polygons=((0.0, 0.0, 9.0, 0.0, 9.0, 9.0),)), bbox=(0, 0, 9, 9),
                area=float(draw(st.integers(1, 2000)))))
    clips = []
    for cat in CATS:
        for split, hi in (("train", 6), ("test", 6)):
            for i in range(draw(st.integers(0, hi))):
                clips.append(AudioClip("vggsound", f"{cat}-{split}-{i}", f"{cat} sound", split,
                                       Path(f"/a/{cat}{split}{i}.wav")))
    sizes = {"train": draw(st.integers(0, 60)), "validation": draw(st.integers(0, 15)),
             "test": draw(st.integers(0, 15))}
    mode = draw(st.sampled_from(["instance", "category"]))
    return insts, clips, PlanOptions(seed=draw(st.integers(0, 5)), sizes=sizes, mask_mode=mode,
                                     rows_per_shard=draw(st.integers(1, 30)))


def _summary(plan) -> dict:
    return {s: [(r.id, r.category, r.clip.audio_id, r.audio_offset_s,
                 tuple(i.annotation_id for i in r.instances)) for r in plan.rows[s]]
            for s in plan.rows}


@FEW
@given(sources(), st.randoms(use_true_random=False))
def test_plan_splits_are_disjoint_and_permutation_invariant(src, rnd):
    insts, clips, opts = src
    plan = make_plan(insts, clips, MANIFEST, opts)
    images = {s: {(i.source, i.image_id) for r in rows for i in r.instances} for s, rows in plan.rows.items()}
    audio = {s: {r.clip.audio_id for r in rows} for s, rows in plan.rows.items()}
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not images[a] & images[b] and not audio[a] & audio[b]
    for split, vgg in (("train", "train"), ("validation", "test"), ("test", "test")):
        assert all(r.clip.split == vgg and r.clip.label == f"{r.category} sound" for r in plan.rows[split])
        assert all(len({i.image_id for i in r.instances}) == 1 for r in plan.rows[split])
        assert len(plan.rows[split]) <= opts.sizes[split]
    # every row lands in exactly one shard, no shard above rows_per_shard
    in_shards = Counter(r.id for s in plan.shards if s.kind == "rows" for r in s.items)
    assert in_shards == Counter(r.id for rows in plan.rows.values() for r in rows)
    assert all(len(s.items) <= opts.rows_per_shard for s in plan.shards)
    # the same plan from the inputs in another order
    shuffled_i, shuffled_c = list(insts), list(clips)
    rnd.shuffle(shuffled_i)
    rnd.shuffle(shuffled_c)
    assert _summary(make_plan(shuffled_i, shuffled_c, MANIFEST, opts)) == _summary(plan)


@FEW
@given(sources(one_per_image=True))
def test_plan_balances_categories_in_test_and_train(src):
    """A category ends more than one row below the fullest one only when it has nothing left to
    give: for test (filled first) its units, for train its units not taken by the held-out
    splits. (One instance per image, so an image never carries two categories.)"""
    insts, clips, opts = src
    opts = PlanOptions(seed=opts.seed, sizes=opts.sizes, rows_per_shard=opts.rows_per_shard)
    plan = make_plan(insts, clips, MANIFEST, opts)
    units = Counter(i.category for i in insts)
    n_clips = Counter((c.label.split()[0], c.split) for c in clips)
    # VGGSound's test clips are dealt alternately to validation and test: test audio needs two
    has_audio = {"train": {c for c in CATS if n_clips[(c, "train")] >= 1},
                 "test": {c for c in CATS if n_clips[(c, "test")] >= 2}}
    count = {s: Counter(r.category for r in plan.rows[s]) for s in plan.rows}
    left = {"test": dict(units),
            "train": {c: units[c] - count["test"][c] - count["validation"][c] for c in CATS}}
    for split in ("test", "train"):
        cats = [c for c in CATS if c in has_audio[split]]
        if not cats or not plan.rows[split]:
            continue
        top = max(count[split][c] for c in cats)
        for c in cats:
            assert count[split][c] >= min(top - 1, left[split][c]), (split, c, dict(count[split]))
        assert all(count[split][c] == 0 for c in CATS if c not in has_audio[split])


# ------------------------------------------------------------------------------ unpickler

_MODULES = ["builtins", "os", "subprocess", "importlib", "operator"]
_ALLOWED = {"list", "dict", "set", "frozenset", "tuple", "str", "bytes", "int", "float", "bool", "complex"}


def _names(module: str) -> list[str]:
    mod = importlib.import_module(module)
    return sorted(n for n in dir(mod) if callable(getattr(mod, n, None)))


_GLOBALS = [(m, n) for m in _MODULES for n in _names(m)]


@st.composite
def hostile_pickle(draw, marker: str):
    """Protocol-0 or -4 bytes calling a random global of builtins/os/subprocess/importlib/operator
    with arguments that would create ``marker`` (a path, a shell command, code)."""
    module, name = draw(st.sampled_from(_GLOBALS))
    arg = draw(st.sampled_from([marker, f"touch {marker}", f"open({marker!r}, 'w').close()"]))
    nargs = draw(st.integers(0, 2))
    if draw(st.booleans()):  # protocol 0: GLOBAL, MARK, args, TUPLE, REDUCE
        body = b"c" + module.encode() + b"\n" + name.encode() + b"\n(" + b"".join(
            b"V" + arg.encode() + b"\n" for _ in range(nargs)) + b"tR."
    else:  # protocol 4: STACK_GLOBAL from two short strings
        def s(x: str) -> bytes:
            b = x.encode()
            return b"\x8c" + bytes([len(b)]) + b
        body = b"\x80\x04" + s(module) + s(name) + b"\x93" + b"(" + b"".join(
            s(arg) for _ in range(nargs)) + b"tR."
    return module, name, body


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_hostile_pickles_never_run(tmp_path, data):
    marker = tmp_path / "ran"
    module, name, body = data.draw(hostile_pickle(str(marker)))
    path = tmp_path / "p.pkl"
    path.write_bytes(body)
    if module == "builtins" and name in _ALLOWED:
        try:  # an allowed constructor may run (int("touch x") fails cleanly)
            A.safe_unpickle(path)
        except SourceError as err:
            assert "p.pkl" in str(err)
    else:
        with pytest.raises(SourceError, match=f"refusing to unpickle {module}.{name}:"):
            A.safe_unpickle(path)
    assert not marker.exists()


# ------------------------------------------------------------------------------ masks

masks = hnp.arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40)))


@FEW
@given(masks)
def test_png_mask_round_trip_and_stats(m):
    data = encode_png(m)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(decode_png(data), m)
    assert encode_png(decode_png(data)) == data  # same mask, same bytes
    h, w = m.shape
    area, (x, y, bw, bh) = mask_stats(m)
    assert area == pytest.approx(m.sum() / (h * w))
    if m.any():
        ys, xs = np.nonzero(m)
        assert (x, y) == pytest.approx((xs.min() / w, ys.min() / h))
        assert (bw, bh) == pytest.approx(((xs.max() - xs.min() + 1) / w, (ys.max() - ys.min() + 1) / h))
    else:
        assert (area, x, y, bw, bh) == (0.0, 0.0, 0.0, 0.0, 0.0)


@FEW
@given(masks, st.booleans())
def test_rle_mask_round_trip(m, compressed):
    h, w = m.shape
    rle = coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
    if compressed:
        counts = rle["counts"].decode("ascii")
    else:  # uncompressed RLE: run lengths of the column-major flattening, starting with zeros
        flat = m.flatten(order="F").astype(np.int8)
        change = np.flatnonzero(np.diff(flat)) + 1
        bounds = np.concatenate([[0], change, [flat.size]])
        counts = list(np.diff(bounds))
        if flat[0]:
            counts = [0] + counts
    got = rasterize(MaskRef(rle=((h, w), counts)), w, h)
    assert got.dtype == bool and np.array_equal(got, m)


@FEW
@given(st.integers(1, 4).flatmap(lambda k: st.lists(
    hnp.arrays(np.bool_, (9, 11)), min_size=k, max_size=k)))
def test_union_is_the_pixelwise_or(ms):
    expected = np.zeros((9, 11), bool)
    for m in ms:
        for (r, c), v in np.ndenumerate(m):
            expected[r, c] = expected[r, c] or v
    assert np.array_equal(union(ms), expected)
    assert np.array_equal(union(list(reversed(ms))), expected)
