"""evaluation/metrics: the survivors of the complete mutation run (issue 17, helper 17d).

Every expected value is stated independently of the code under test: hand-computed from the
official AVSBench rules (OpenNLPLab/AVSBench ``avs_scripts/avs_s4/utils/utility.py``: ``mask_iou``;
``Eval_Fmeasure`` / ``_eval_pr`` with ``P_t = p >= t``, ``prec = TP / (|P_t| + 1e-20)``,
``rec = TP / (|G| + 1e-20)``, ``F = 1.3 prec rec / (0.3 prec + rec)``, NaN -> 0), counted by plain
Python loops over values and thresholds, or given by the inputs' construction.
"""

from __future__ import annotations

import math
import re

import pytest
import torch

from avsynth.evaluation.metrics import (AVSBenchMetric, AVSSMetric, avss_frame_counts, f_thresholds,
                                        frame_iou, fscore, pr_counts, threshold_bins)


def thresholds_at_or_below(values: torch.Tensor, thresholds: torch.Tensor) -> list[int]:
    """For each value, how many thresholds are <= it: the definition, as a loop over Python floats
    (float16 / float32 values are exact in them, so every comparison is exact)."""
    ts = thresholds.tolist()
    return [sum(1 for t in ts if t <= v) for v in values.tolist()]


def f_beta(prec: float, rec: float) -> float:
    return 0.0 if prec == rec == 0 else 1.3 * prec * rec / (0.3 * prec + rec)


def raises_exactly(message: str):
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


# ------------------------------------------------------------------------------ threshold_bins


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_threshold_bins_count_values_outside_zero_one(dtype):
    """Values need not be probabilities (SAMA-AVS compares raw logits): below 0 no threshold is
    <= them, above 1 all 255 are, and the count is an int64 tensor of the input's shape."""
    thr = f_thresholds().to(dtype)
    gen = torch.Generator().manual_seed(0)
    values = torch.cat([
        torch.tensor([-math.inf, -3.0, -1e-30, -0.0, 0.0, 1e-30, 0.5, 1.0, 1.5, 254.0, 1e30, math.inf],
                     dtype=dtype),
        thr[::17], (torch.rand(300, generator=gen, dtype=dtype) * 5 - 2),
    ]).view(3, -1)
    got = threshold_bins(values, thr)
    assert got.dtype == torch.int64 and got.shape == values.shape
    assert got.flatten().tolist() == thresholds_at_or_below(values.flatten(), thr)
    assert got[0, :12].tolist() == [0, 0, 0, 1, 1, 1, 128, 255, 255, 255, 255, 255]


def test_threshold_bins_off_the_grid_in_half_precision_and_without_thresholds():
    # thresholds rounded to bfloat16 are too far from j / 254 for the rounding shortcut; values
    # on every threshold and on both float32 neighbours (a threshold counts when equal: <=)
    thr = f_thresholds().bfloat16().float()
    up, down = torch.tensor(2.0), torch.tensor(-1.0)
    gen = torch.Generator().manual_seed(1)
    values = torch.cat([thr, torch.nextafter(thr, up), torch.nextafter(thr, down), torch.rand(200, generator=gen)])
    got = threshold_bins(values, thr)
    assert got.dtype == torch.int64 and got.tolist() == thresholds_at_or_below(values, thr)
    # float16 values against 11 float16 thresholds (0, 0.1, ..., 1 rounded to float16)
    thr16 = f_thresholds(11).half()
    v16 = torch.cat([thr16, torch.rand(100, generator=gen).half(), torch.tensor([0.05, 0.95], dtype=torch.half)])
    got16 = threshold_bins(v16, thr16)
    assert got16.dtype == torch.int64 and got16.tolist() == thresholds_at_or_below(v16, thr16)
    assert threshold_bins(torch.tensor([0.05, 0.95], dtype=torch.half), thr16).tolist() == [1, 10]
    # float64 values against the float32 thresholds of f_thresholds(): values between a float32
    # threshold and its float32 neighbours are told apart
    thr32 = f_thresholds()
    t64 = thr32.double()
    v64 = torch.cat([t64, t64 - 1e-12, t64 + 1e-12]).clamp(0, 1)
    assert threshold_bins(v64, thr32).tolist() == thresholds_at_or_below(v64, thr32)
    # no thresholds: none is <= anything
    for dtype in (torch.float32, torch.float64):
        none = threshold_bins(torch.tensor([0.0, 0.5, 2.0], dtype=dtype), torch.empty(0, dtype=dtype))
        assert none.dtype == torch.int64 and none.tolist() == [0, 0, 0]


# ------------------------------------------------------------------------------ per-frame rules


def test_float64_logits_are_compared_in_float64():
    # sigmoid(4e-12) = 0.5 + 1e-12 > 0.5 (it would round to exactly 0.5 in float32: not > 0.5)
    x = torch.tensor([[[4e-12, -30.0]]], dtype=torch.float64)
    gt = torch.tensor([[[1.0, 0.0]]])
    assert float(torch.sigmoid(x[0, 0, 0])) > 0.5 and float(torch.sigmoid(x[0, 0, 0]).float()) == 0.5
    assert frame_iou(x, gt).item() == pytest.approx(1 / (1 + 1e-7), abs=1e-15)
    # a probability 1e-12 below threshold 100 is not counted there (in float32 it would equal it)
    t = f_thresholds()[100].item()
    q = t - 1e-12
    x = torch.tensor([[[math.log(q / (1 - q)), -30.0]]], dtype=torch.float64)
    p = torch.sigmoid(x[0, 0, 0])
    assert p.item() < t and p.float().item() == t
    npred, tp, gsum = pr_counts(x, gt)
    assert npred[0, 99:102].tolist() == [1.0, 0.0, 0.0] and tp[0, 99:102].tolist() == [1.0, 0.0, 0.0]


def test_soft_mask_iou_is_summed_in_float64():
    """A soft mask (values in [0, 1], allowed) is a weight: |P G| and |G| are exact float64 sums."""
    g = torch.full((1, 300, 300), 0.1)  # float32 0.1 = 0.100000001490116...
    x = torch.full((1, 300, 300), -9.0)
    x[:, :150] = 9.0  # the top half predicted
    w = float(torch.tensor(0.1))
    inter = 45000 * w
    union = 45000 + 90000 * w - inter
    assert frame_iou(x, g).item() == pytest.approx(inter / (union + 1e-7), rel=1e-13, abs=0)


def test_soft_mask_true_positives_over_a_frame_binned_in_pieces():
    # 70,000 pixels: more than one CPU chunk (65,536), so the frame is binned in two pieces
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 7, 10000, generator=gen) * 3
    g = torch.rand(1, 7, 10000, generator=gen)
    npred, tp, gsum = pr_counts(x, g)
    p, w = torch.sigmoid(x).flatten(), g.flatten().double()
    thr = f_thresholds()
    for j in (0, 60, 127, 200, 254):
        hit = p >= thr[j]
        assert npred[0, j].item() == int(hit.sum())
        assert tp[0, j].item() == pytest.approx(float(w[hit].sum()), rel=1e-12, abs=0)
    assert gsum.item() == pytest.approx(float(w.sum()), rel=1e-12, abs=0)


def test_pr_counts_by_hand_are_float64_and_frames_without_pixels_count_nothing():
    # p = sigmoid: 0.881, 0.119, 0.5, 0.993; G = the first and the last pixel
    x = torch.tensor([[[2.0, -2.0], [0.0, 5.0]]])
    g = torch.tensor([[[1, 0], [0, 1]]], dtype=torch.uint8)
    npred, tp, gsum = pr_counts(x, g)
    assert npred.dtype == tp.dtype == gsum.dtype == torch.float64
    assert gsum.tolist() == [2.0]
    thr = f_thresholds().tolist()
    for j in (0, 30, 127, 128, 224, 253, 254):
        expected = sum(p >= thr[j] for p in (0.8808, 0.1192, 0.5, 0.9933))
        assert npred[0, j].item() == expected, j
        assert tp[0, j].item() == sum(p >= thr[j] for p in (0.8808, 0.9933)), j
    empty = pr_counts(torch.zeros(2, 0, 3), torch.zeros(2, 0, 3))
    assert [tuple(t.shape) for t in empty] == [(2, 255), (2, 255), (2,)]
    assert all(float(t.abs().sum()) == 0.0 for t in empty)
    assert frame_iou(torch.zeros(2, 0, 3), torch.zeros(2, 0, 3)).tolist() == [0.0, 0.0]  # 0 / (0 + 1e-7)
    assert fscore(torch.zeros(2, 0, 3), torch.zeros(2, 0, 3)) == 0.0


@pytest.mark.parametrize("on_logits", [False, True])
def test_no_frames_give_empty_counts_and_a_zero_f(on_logits):
    npred, tp, gsum = pr_counts(torch.zeros(0, 3, 4), torch.zeros(0, 3, 4), on_logits=on_logits)
    assert [tuple(t.shape) for t in (npred, tp, gsum)] == [(0, 255), (0, 255), (0,)]
    assert fscore(torch.zeros(0, 3, 4), torch.zeros(0, 3, 4)) == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_raw_logits_in_half_precision_meet_thresholds_rounded_to_their_dtype(dtype):
    """SAMA-AVS's F on raw logits: the official ``(y_pred >= thlist[i])`` compares a half tensor
    with a 0-d float32 threshold, which PyTorch does in the tensor's dtype (the threshold rounded
    to it), as on the sigmoid path."""
    thr = f_thresholds()
    gen = torch.Generator().manual_seed(4)
    logits = torch.cat([thr.to(dtype), (torch.rand(345, generator=gen) * 3 - 1).to(dtype)]).view(2, 300)
    gt = (torch.rand(2, 300, generator=gen) < 0.5).to(torch.uint8)
    npred, tp, _ = pr_counts(logits.view(2, 15, 20), gt.view(2, 15, 20), on_logits=True)
    differs = 0
    for n in range(2):
        v, g = logits[n].tolist(), gt[n].tolist()
        for j in range(255):
            t = float(thr[j].to(dtype))  # the threshold rounded to the logits' dtype
            assert npred[n, j].item() == sum(x >= t for x in v), (n, j)
            assert tp[n, j].item() == sum(x >= t and y == 1 for x, y in zip(v, g)), (n, j)
            differs += sum(x >= t for x in v) != sum(x >= float(thr[j]) for x in v)
    assert differs > 0  # the unrounded float32 thresholds would count otherwise somewhere


# ------------------------------------------------------------------------------ AVSBenchMetric


def test_metric_with_a_papers_threshold_and_f_on_raw_logits():
    """GAVS's 0.4 cut for the mIoU, SAMA-AVS's F on the raw logits, with a uint8 mask (what
    ``evaluate`` feeds); one video of three frames, one group."""
    a = torch.tensor([[3.0, 2.0], [1.5, -2.0]])  # p = 0.953, 0.881, 0.818, 0.119
    b = torch.tensor([[-0.2, -3.0], [-3.0, -3.0]])  # p = 0.450 (> 0.4, not > 0.5), 0.047
    c = torch.full((2, 2), -3.0)
    logits = torch.stack([a, b, c])
    gt = torch.tensor([[[1, 0], [0, 0]], [[1, 0], [0, 0]], [[0, 0], [0, 0]]], dtype=torch.uint8)
    m = AVSBenchMetric(f_group="video", threshold=0.4, f_on_logits=True)
    m.update(logits, gt, ["v"] * 3)
    out = m.compute()
    # mIoU at 0.4: a predicts 3 pixels, 1 right: 1/3; b: 1/1; c (empty G): 4 of 4 left empty
    assert out["miou"] == pytest.approx((1 / (3 + 1e-7) + 1 / (1 + 1e-7) + 4 / (4 + 1e-7)) / 3, abs=1e-12)
    # F on the logits, thresholds in [0, 1]: frame a's 3, 2, 1.5 are >= every threshold and -2
    # none: prec 1/3, rec 1 at every t; frame b has no logit >= 0: F = 0; frame c is skipped
    assert out["fscore"] == pytest.approx((f_beta(1 / 3, 1.0) + 0.0) / 2, abs=1e-12)
    assert (out["frames"], out["frames_empty_gt"], out["groups"]) == (3, 1, 1)
    # the same frames with the official defaults (sigmoid F, cut 0.5): frame b's 0.45 is not
    # predicted for the mIoU, and the F thresholds compare the sigmoid
    d = AVSBenchMetric(f_group="video")
    d.update(logits, gt, ["v"] * 3)
    out = d.compute()
    assert out["miou"] == pytest.approx((1 / (3 + 1e-7) + 0.0 + 4 / (4 + 1e-7)) / 3, abs=1e-12)
    # mean curve of a and b: for t in (0.119, 0.450] a predicts 0.953, 0.881, 0.818 (F(1/3, 1))
    # and b its right 0.450 pixel alone (F = 1): the maximum; for t in (0.881, 0.953] it is
    # (1 + 0) / 2 and elsewhere lower
    assert out["fscore"] == pytest.approx((f_beta(1 / 3, 1.0) + 1.0) / 2, abs=1e-12)


def _frame(k: int) -> torch.Tensor:
    """Logits of a 1 x 1 x 4 frame predicting its first k pixels (G below = the first 2)."""
    logits = torch.full((1, 1, 4), -5.0)
    logits[0, 0, :k] = 5.0
    return logits


GT = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
IOU = {0: 0.0, 1: 1 / (2 + 1e-7), 2: 2 / (2 + 1e-7), 4: 2 / (4 + 1e-7)}  # by k, hand-counted


def test_tensor_indexes_restore_the_dataset_order():
    """A DataLoader gives the frame indexes as a tensor: the groups follow the dataset order,
    not the update order."""
    m = AVSBenchMetric("batch4", videos_per_group=2)
    # dataset order a (0), b (1), c (2); scored in the order c, b, a
    for vid, k, idx in (("c", 2, 2), ("b", 2, 1), ("a", 0, 0)):
        m.update(_frame(k), GT, [vid], indexes=torch.tensor([idx]))
    out = m.compute()
    # groups {a, b}, {c}: ((0 + 1) / 2 + 1) / 2; in update order {c, b}, {a} it would be 0.5
    assert out["miou"] == pytest.approx(((IOU[0] + IOU[2]) / 2 + IOU[2]) / 2, abs=1e-12)
    assert out["groups"] == 2
    with raises_exactly("integer indexes must be in [0, 2**52), got -1"):
        m.update(torch.cat([_frame(1), _frame(1)]), torch.cat([GT, GT]), ["d", "e"], indexes=torch.tensor([3, -1]))
    with raises_exactly("integer indexes must be in [0, 2**52), got 4503599627370496"):
        m.update(_frame(1), GT, ["d"], indexes=[2**52])


def test_a_repeated_frame_keeps_its_first_copy():
    """Frames repeated by a distributed sampler are dropped, the first copy kept: here the
    repeats are scored differently, so a kept repeat would show."""
    m = AVSBenchMetric("video")
    n = 32  # enough frames that an unstable sort of the indexes would reorder equal ones
    for i in range(n):  # first copies: perfect predictions
        m.update(_frame(2), GT, [f"v{i}"], indexes=[i])
    for i in range(n):  # the repeats: nothing predicted
        m.update(_frame(0), GT, [f"v{i}"], indexes=[i])
    out = m.compute()
    assert out["frames"] == n and out["videos"] == n
    assert out["miou"] == pytest.approx(IOU[2], abs=1e-12)
    assert out["fscore"] == pytest.approx(1.0, abs=1e-12)


def test_an_update_without_frames_changes_nothing():
    """A batch whose frames are all unannotated gives an update of 0 frames; the keys of the
    other frames (52-bit integers and hashed strings) stay exact."""
    big = 2**40
    logits = torch.cat([_frame(2), _frame(4)])
    gt = torch.cat([GT, GT])

    def scored(with_empty: bool) -> dict:
        m = AVSBenchMetric("video")
        m.update(logits, gt, [big, big + 1], categories=["dog", "cat"], indexes=[big, big + 1])
        if with_empty:
            m.update(torch.zeros(0, 1, 4), torch.zeros(0, 1, 4), [], categories=[], indexes=[])
        return m.compute()

    out = scored(True)
    assert (out["frames"], out["videos"], out["groups"]) == (2, 2, 2)
    assert sorted(out["per_category"]) == ["cat", "dog"]
    assert out["per_category"]["dog"]["miou"] == pytest.approx(IOU[2], abs=1e-12)
    assert out["per_category"]["cat"]["miou"] == pytest.approx(IOU[4], abs=1e-12)
    assert out == scored(False)


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric AVSBenchMetric was called before")
def test_nothing_scored_gives_zero_figures():
    assert AVSBenchMetric().compute() == {"f_group": "batch4", "miou": 0.0, "fscore": 0.0, "frames": 0,
                                          "videos": 0, "groups": 0, "videos_per_group": 4,
                                          "frames_empty_gt": 0}
    assert AVSBenchMetric("video").compute()["miou"] == 0.0


def test_many_video_names_stay_distinct():
    n = 300
    m = AVSBenchMetric("video")
    m.update(torch.cat([_frame(1)] * n), torch.cat([GT] * n), [f"clip_{i:04d}" for i in range(n)])
    out = m.compute()
    assert (out["videos"], out["groups"], out["frames"]) == (n, n, n)


def test_metric_messages_are_exact():
    with raises_exactly("videos_per_group must be >= 1"):
        AVSBenchMetric(videos_per_group=0)
    m = AVSBenchMetric()
    two_d = torch.zeros(3, 3)
    with raises_exactly("need one video id per frame: 3 ids for logits of shape (3, 3)"):
        m.update(two_d, two_d, ["a", "b", "c"])
    with raises_exactly("need one video id per frame: 1 ids for logits of shape (3, 3)"):
        m.update(two_d, two_d, ["a"])
    with raises_exactly("logits contain NaN"):
        frame_iou(torch.full((1, 2, 2), math.nan), torch.zeros(1, 2, 2))
    with raises_exactly("gt values must lie in [0, 1] (a binary mask)"):
        frame_iou(torch.zeros(1, 2, 2), torch.full((1, 2, 2), 2.0))
    mixed = AVSBenchMetric()
    mixed.update(_frame(1), GT, ["a"], indexes=[0])
    mixed.update(_frame(1), GT, ["b"])
    with raises_exactly("frame indexes were given for some updates only"):
        mixed.compute()
    with raises_exactly("num_classes must be >= 2"):
        AVSSMetric(num_classes=1)
    with raises_exactly("3-D predictions must be integer label maps"):
        AVSSMetric(num_classes=3).update(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


# ------------------------------------------------------------------------------ AVSS


def test_avss_ground_truth_equal_to_the_class_count_is_not_a_label():
    # C = 3: gt 3 is outside [0, C) like 5 or 255: ignored for |lab|, the prediction there counts
    pred = torch.tensor([[[0, 1, 2, 2]]])
    gt = torch.tensor([[[0, 3, 3, 2]]])
    inter, npred, lab = avss_frame_counts(pred, gt, 3)
    assert lab.tolist() == [[1.0, 0.0, 1.0]]
    assert npred.tolist() == [[1.0, 1.0, 2.0]]
    assert inter.tolist() == [[1.0, 0.0, 1.0]]


def test_avss_sums_are_float64():
    """Per-class IoU / F summed over frames in float64 (the official numpy arithmetic): values
    like 1/3 are exact to double precision, not to float32's 1e-8."""
    # frame: class 1 predicted on 3 pixels, labelled on 1 of them: IoU 1/3, F(1/3, 1)
    pred = torch.tensor([[[1, 1, 1, 0]]])
    gt = torch.tensor([[[1, 0, 0, 0]]])
    m = AVSSMetric(num_classes=2, class_names=["bg", "fg"])
    m.update(pred, gt)
    m.update(pred, gt)
    out = m.compute()
    eps = 2.220446049250313e-16
    assert out["per_class"]["fg"]["iou"] == pytest.approx(1 / (3 + eps), rel=1e-15, abs=0)
    assert out["per_class"]["fg"]["fscore"] == pytest.approx(f_beta(1 / 3, 1.0), rel=1e-15, abs=0)
    # background: predicted on 1 pixel, labelled on 3: IoU 1/3, F(1, 1/3)
    assert out["per_class"]["bg"]["iou"] == pytest.approx(1 / (3 + eps), rel=1e-15, abs=0)
    assert out["per_class"]["bg"]["fscore"] == pytest.approx(f_beta(1.0, 1 / 3), rel=1e-15, abs=0)
    assert out["frames"] == 2 and out["per_class"]["fg"]["frames"] == 2
