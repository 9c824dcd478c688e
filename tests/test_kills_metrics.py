"""evaluation/metrics: hand-computed cases and input checks, written against the mutation
survivors of the module (issue 17). The per-threshold oracle here is the official rule written
directly (one comparison ``p >= t`` per threshold, vectorised), not the code under test."""

from __future__ import annotations

import math

import pytest
import torch

from avsynth.evaluation.metrics import (AVSBenchMetric, AVSSMetric, avss_class_names, avss_frame_counts,
                                        f_curves, f_thresholds, frame_iou, miou, pr_counts, stable_key)


def oracle(logits, gt):
    """|P_t| and TP_t per frame and threshold, ``P_t = sigmoid(logits) >= t`` (the official rule)."""
    p = torch.sigmoid(logits).reshape(logits.shape[0], 1, -1)
    thr = f_thresholds().view(1, -1, 1)
    hit = (p >= thr).double()
    g = gt.double().reshape(gt.shape[0], 1, -1)
    return hit.sum(-1), (hit * g).sum(-1)


@pytest.mark.parametrize("shape", [(2, 260, 256), (100, 20, 50), (3, 1, 70000)])
def test_counts_over_chunk_boundaries_equal_the_per_threshold_rule(shape):
    # (2, 260, 256): 66,560 px per frame, more than one CPU chunk (65,536): a frame in two pieces;
    # (100, 20, 50): 65 frames per chunk, then 35; (3, 1, 70000): pieces of unequal length
    gen = torch.Generator().manual_seed(shape[0])
    logits = torch.randn(*shape, generator=gen) * 3
    gt = (torch.rand(*shape, generator=gen) < 0.3).float()
    npred, tp, gsum = pr_counts(logits, gt)
    ref_npred, ref_tp = oracle(logits, gt)
    assert torch.equal(npred, ref_npred) and torch.equal(tp, ref_tp)
    assert torch.equal(gsum, gt.double().sum(dim=(1, 2)))


def test_soft_ground_truth_weights_the_true_positives():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 9, 11, generator=gen) * 3
    gt = torch.rand(3, 9, 11, generator=gen)
    gt[0] = (gt[0] > 0.5).float()  # one binary frame among soft ones
    npred, tp, gsum = pr_counts(logits, gt)
    ref_npred, ref_tp = oracle(logits, gt)
    assert torch.equal(npred, ref_npred)
    assert torch.allclose(tp, ref_tp, rtol=0, atol=1e-9)
    assert torch.allclose(gsum, gt.double().sum(dim=(1, 2)), atol=1e-9)


def test_input_checks_name_the_problem():
    ok = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError) as err:
        frame_iou(ok, torch.zeros(2, 4, 3))
    assert str(err.value) == "logits and gt must both be N x H x W with equal shapes; got (2, 3, 4) and (2, 4, 3)"
    with pytest.raises(ValueError, match=r"got \(3, 4\) and \(3, 4\)"):
        frame_iou(ok[0], ok[0])
    with pytest.raises(ValueError, match="logits must be a floating tensor, got torch.int64"):
        frame_iou(torch.zeros(2, 3, 4, dtype=torch.long), ok)
    with pytest.raises(ValueError, match="logits contain NaN"):
        frame_iou(torch.full((2, 3, 4), float("nan")), ok)
    for bad in (-0.5, 1.5):
        with pytest.raises(ValueError, match=r"gt values must lie in \[0, 1\]"):
            frame_iou(ok, torch.full((2, 3, 4), bad))
    assert frame_iou(ok, torch.ones(2, 3, 4)).tolist() == [0.0, 0.0]  # gt of exactly 1 is valid
    assert frame_iou(torch.zeros(0, 3, 4), torch.zeros(0, 3, 4)).numel() == 0
    assert miou(torch.zeros(0, 3, 4), torch.zeros(0, 3, 4)) == 0.0


def test_frame_iou_by_hand():
    # P = [[1, 0], [1, 1]], G = [[1, 1], [0, 0]]: |P G| = 1, |P| + |G| - |P G| = 4
    logits = torch.tensor([[[3.0, -3.0], [3.0, 3.0]], [[3.0, -3.0], [-3.0, -3.0]]])
    gt = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    iou = frame_iou(logits, gt)
    assert iou.dtype == torch.float64
    assert iou[0].item() == pytest.approx(1 / (4 + 1e-7), abs=1e-15)
    # empty G: the pixels correctly left empty, 3 of 4, over H W + 1e-7
    assert iou[1].item() == pytest.approx(3 / (4 + 1e-7), abs=1e-15)
    assert miou(logits, gt) == pytest.approx((1 / (4 + 1e-7) + 3 / (4 + 1e-7)) / 2, abs=1e-15)
    # the cut is strict and configurable: sigmoid(0.2) = 0.5498
    one = torch.full((1, 1, 1), 0.2)
    assert frame_iou(one, torch.ones(1, 1, 1)).item() == pytest.approx(1 / (1 + 1e-7))
    assert frame_iou(one, torch.ones(1, 1, 1), threshold=0.6).item() == 0.0
    assert frame_iou(torch.zeros(1, 1, 1), torch.ones(1, 1, 1)).item() == 0.0  # 0.5 is not > 0.5


def test_f_curves_by_hand():
    # one frame, p = sigmoid(logits) in {0.88, 0.27}, G = [1, 0, 1, 0]
    logits = torch.tensor([[[2.0, 2.0, -1.0, -1.0]]])
    gt = torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
    curves, valid = f_curves(logits, gt)
    assert valid.tolist() == [True]
    p_hi, p_lo = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(1))

    def f(prec, rec):
        return 1.3 * prec * rec / (0.3 * prec + rec)
    thr = f_thresholds().double()
    for j in (0, 50, 100, 200, 254):
        t = thr[j].item()
        if t <= p_lo:
            expected = f(0.5, 1.0)  # all four pixels predicted: prec 2/4, rec 2/2
        elif t <= p_hi:
            expected = f(0.5, 0.5)  # the two 0.88 pixels: prec 1/2, rec 1/2
        else:
            expected = 0.0  # nothing predicted: 0/0 -> 0
        assert curves[0, j].item() == pytest.approx(expected, abs=1e-12), j
    empty = f_curves(logits, torch.zeros(1, 1, 4))
    assert empty[1].tolist() == [False] and float(empty[0].abs().max()) == 0.0


# --------------------------------------------------------------------------------- AVSBenchMetric


def test_avsbench_metric_argument_checks():
    with pytest.raises(ValueError, match=r"f_group must be one of \('batch4', 'video'\), got 'clip'"):
        AVSBenchMetric(f_group="clip")
    with pytest.raises(ValueError, match="videos_per_group must be >= 1"):
        AVSBenchMetric(videos_per_group=0)
    AVSBenchMetric(videos_per_group=1)
    m = AVSBenchMetric()
    x = torch.zeros(2, 3, 3)
    with pytest.raises(ValueError, match=r"need one video id per frame: 1 ids for logits of shape \(2, 3, 3\)"):
        m.update(x, x, ["a"])
    with pytest.raises(ValueError, match=r"need one video id per frame: 2 ids for logits of shape \(3, 3\)"):
        m.update(x[0], x[0], ["a", "b"])
    with pytest.raises(ValueError, match="need one category per frame: 1 for 2 frames"):
        m.update(x, x, ["a", "b"], categories=["dog"])
    with pytest.raises(ValueError, match="need one index per frame: 3 for 2 frames"):
        m.update(x, x, ["a", "b"], indexes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"integer video ids must be in \[0, 2\*\*52\), got -1"):
        m.update(x, x, [-1, 0])
    with pytest.raises(ValueError, match=r"integer categories must be in \[0, 2\*\*52\), got 4503599627370496"):
        m.update(x, x, [0, 1], categories=[1, 2**52])
    m.update(x, x, ["a", "b"], categories=["dog", "cat"])
    with pytest.raises(ValueError, match="video 'a' given two categories: 'dog', 'cat'"):
        m.update(x, x, ["a", "c"], categories=["cat", "cat"])


def test_avsbench_metric_groups_dedups_and_names_categories():
    # four videos of one frame each; logits make frame i's IoU exactly known
    def frame(k):  # k of 4 pixels predicted, G = the first 2 pixels
        logits = torch.full((1, 1, 4), -5.0)
        logits[0, 0, :k] = 5.0
        return logits
    gt = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    # IoU by k: 0 -> 0, 1 -> 1/2, 2 -> 1, 4 -> 2/4 (|P G| = 2, union 4)
    m = AVSBenchMetric(f_group="batch4", videos_per_group=2)
    for vid, k, cat in (("v1", 0, "dog"), ("v2", 1, "cat"), ("v3", 2, "dog"), ("v4", 4, "cat")):
        m.update(frame(k), gt, [vid], categories=[cat])
    out = m.compute()
    # groups {v1, v2}, {v3, v4}: mIoU of the groups (0 + 0.5) / 2 and (1 + 0.5) / 2
    assert out["groups"] == 2 and out["videos"] == 4 and out["frames"] == 4
    assert out["miou"] == pytest.approx(((0.0 + 0.5) / 2 + (1.0 + 0.5) / 2) / 2, abs=1e-6)
    assert out["videos_per_group"] == 2 and out["f_group"] == "batch4" and out["frames_empty_gt"] == 0
    assert sorted(out["per_category"]) == ["cat", "dog"]
    assert out["per_category"]["dog"]["miou"] == pytest.approx(0.5, abs=1e-6)  # one group {v1, v3}
    assert out["per_category"]["cat"]["miou"] == pytest.approx(0.5, abs=1e-6)
    assert out["per_category"]["dog"]["groups"] == 1 and out["per_category"]["dog"]["videos"] == 2
    per_video = AVSBenchMetric(f_group="video")
    for vid, k in (("v1", 0), ("v2", 1), ("v3", 2)):
        per_video.update(frame(k), gt, [vid], indexes=[{"v1": 2, "v2": 0, "v3": 1}[vid]])
    per_video.update(frame(2), gt, ["v1"], indexes=[2])  # a repeated frame (sampler padding): dropped
    out = per_video.compute()
    assert "videos_per_group" not in out and out["groups"] == 3 and out["frames"] == 3
    assert out["miou"] == pytest.approx((0.0 + 0.5 + 1.0) / 3, abs=1e-6)
    assert "per_category" not in out
    mixed = AVSBenchMetric(f_group="video")
    mixed.update(frame(1), gt, ["a"], indexes=[0])
    mixed.update(frame(1), gt, ["b"])
    with pytest.raises(ValueError, match="frame indexes were given for some updates only"):
        mixed.compute()
    empty = AVSBenchMetric()
    empty.update(frame(1), torch.zeros(1, 1, 4), ["e"])
    assert empty.compute()["frames_empty_gt"] == 1
    empty.reset()
    assert empty.compute()["frames"] == 0
    empty.update(frame(1), gt, ["e"], categories=["cat"])  # reset forgot e's first category
    assert stable_key("v1") == stable_key("v1") != stable_key("v2") and 0 <= stable_key("x") < 2**52


# ------------------------------------------------------------------------------------- AVSS


def _avss_case():
    gt = torch.tensor([[[0, 1, 1], [2, -1, 5]], [[0, 0, 0], [0, 0, 0]]])
    pred = torch.tensor([[[0, 1, 2], [2, 1, 1]], [[0, 0, 0], [0, 0, 0]]])
    return pred, gt


def test_avss_frame_counts_by_hand():
    pred, gt = _avss_case()
    inter, npred, lab = avss_frame_counts(pred, gt, 3)
    # frame 0: gt -1 ignored; gt 5 (>= C) counts for the prediction (class 1) only
    assert inter[0].tolist() == [1, 1, 1] and npred[0].tolist() == [1, 2, 2] and lab[0].tolist() == [1, 2, 1]
    assert inter[1].tolist() == [6, 0, 0] and npred[1].tolist() == [6, 0, 0] and lab[1].tolist() == [6, 0, 0]
    assert inter.dtype == torch.float64
    bad_pred = torch.tensor([[[3, -1, 0]]])  # predictions outside [0, C) count nowhere
    i, p, l = avss_frame_counts(bad_pred, torch.tensor([[[0, 0, 0]]]), 3)
    assert p.tolist() == [[1, 0, 0]] and l.tolist() == [[3, 0, 0]] and i.tolist() == [[1, 0, 0]]
    with pytest.raises(ValueError, match=r"pred and gt must be N x H x W with equal shapes; got \(2, 2, 3\) and \(2, 3, 2\)"):
        avss_frame_counts(pred, gt.transpose(1, 2), 3)


def test_avss_metric_by_hand():
    pred, gt = _avss_case()
    m = AVSSMetric(num_classes=3, class_names=["bg", "dog", "cat"])
    logits = torch.nn.functional.one_hot(pred.clamp(min=0), 3).permute(0, 3, 1, 2).float() * 4
    m.update(logits, gt)  # 4-D logits: the argmax is ``pred``
    out = m.compute()
    eps = 2.220446049250313e-16
    iou = [(1 / (eps + 1) + 6 / (eps + 6)) / 2, 1 / 3, 1 / 2]  # classes 1, 2 present in frame 0 only

    def f(p, r):
        return 1.3 * p * r / (0.3 * p + r)
    fs = [1.0, f(0.5, 0.5), f(0.5, 1.0)]
    assert out["per_class"] == {n: {"iou": pytest.approx(iou[i]), "fscore": pytest.approx(fs[i]),
                                    "frames": [2, 1, 1][i]} for i, n in enumerate(["bg", "dog", "cat"])}
    assert out["miou"] == pytest.approx(sum(iou) / 3) and out["fscore"] == pytest.approx(sum(fs) / 3)
    assert out["miou_no_bg"] == pytest.approx((iou[1] + iou[2]) / 2)
    assert out["fscore_no_bg"] == pytest.approx((fs[1] + fs[2]) / 2)
    assert out["miou_official_no_bg"] == pytest.approx((iou[0] + iou[1]) / 2)  # the official [:-1]
    assert out["fscore_official_no_bg"] == pytest.approx((fs[0] + fs[1]) / 2)
    assert (out["num_classes"], out["classes_present"], out["frames"]) == (3, 3, 2)
    other_bg = AVSSMetric(num_classes=3, background_index=2, class_names=["a", "b", "c"])
    other_bg.update(pred, gt)  # 3-D integer labels
    assert other_bg.compute()["miou_no_bg"] == pytest.approx((iou[0] + iou[1]) / 2)
    absent = AVSSMetric(num_classes=4)
    absent.update(pred, gt)
    res = absent.compute()
    assert res["classes_present"] == 3 and res["per_class"]["class_3"] == {"iou": 0.0, "fscore": 0.0, "frames": 0}
    assert res["miou"] == pytest.approx(sum(iou) / 4)


def test_avss_metric_argument_checks():
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        AVSSMetric(num_classes=1)
    AVSSMetric(num_classes=2)
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        AVSSMetric(num_classes=3, class_names=["a", "b"])
    m = AVSSMetric(num_classes=3)
    with pytest.raises(ValueError, match="logits have 4 channels, expected 3"):
        m.update(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="3-D predictions must be integer label maps"):
        m.update(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    assert avss_class_names(3) == ["class_0", "class_1", "class_2"]
    names = avss_class_names()
    assert len(names) == 71 and names[0] == "background" and len(set(names)) == 71


def test_pr_counts_on_raw_logits_equal_a_loop_over_pixels_and_thresholds():
    """SAMA-AVS's F on raw logits: |v >= t| and TP counted per frame and threshold, against a plain
    loop (thresholds linspace(0, 1, 11) written out; logits outside [0, 1] and exactly on them)."""
    from avsynth.evaluation.metrics import pr_counts

    g = torch.Generator().manual_seed(3)
    logits = (torch.rand(3, 4, 5, generator=g) * 4 - 1.5)
    logits[0, 0, :3] = torch.tensor([0.0, 0.5, 1.0])  # on a threshold: counted (>=)
    logits[1, 1, 1] = -torch.inf
    gt = (torch.rand(3, 4, 5, generator=g) > 0.6).float()
    gt[2] = 0  # a frame without foreground
    thresholds = [i / 10 for i in range(11)]
    npred, tp, gsum = pr_counts(logits, gt, num_thresholds=11, on_logits=True)
    assert npred.dtype == tp.dtype == gsum.dtype == torch.float64
    assert npred.shape == tp.shape == (3, 11) and gsum.shape == (3,)
    for n in range(3):
        v, m = logits[n].flatten().tolist(), gt[n].flatten().tolist()
        assert gsum[n].item() == sum(m)
        for j, t in enumerate(thresholds):
            t = float(torch.tensor(t if j < 10 else 1 - 1e-10, dtype=torch.float32))
            assert npred[n, j].item() == sum(x >= t for x in v), (n, j)
            assert tp[n, j].item() == sum(x >= t and y > 0 for x, y in zip(v, m)), (n, j)
    assert npred[2, 0].item() == sum(x >= 0 for x in logits[2].flatten().tolist()) and tp[2].sum().item() == 0


def test_pr_counts_on_raw_logits_refuse_a_soft_ground_truth():
    from avsynth.evaluation.metrics import pr_counts

    with pytest.raises(ValueError, match="^F-score on raw logits needs a binary ground truth$"):
        pr_counts(torch.zeros(1, 2, 2), torch.tensor([[[0.0, 0.5], [1.0, 0.0]]]), on_logits=True)
    # an all-zero float ground truth is binary
    npred, tp, gsum = pr_counts(torch.ones(1, 2, 2), torch.zeros(1, 2, 2), num_thresholds=3, on_logits=True)
    assert npred.tolist() == [[4.0, 4.0, 4.0]] and tp.tolist() == [[0.0, 0.0, 0.0]] and gsum.tolist() == [0.0]
