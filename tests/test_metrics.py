"""Tests of avsynth.evaluation.metrics against a plain re-statement of the official AVSBench rules.

The oracle below is a deliberately naive, loop-based re-statement (our own wording) of the
official OpenNLPLab/AVSBench evaluation: ``mask_iou`` / ``Eval_Fmeasure`` / ``_eval_pr`` in
``avs_scripts/avs_s4/utils/utility.py`` and the AVSS per-class rules in
``avs_scripts/avss/utils/compute_color_metrics.py`` + ``avs_scripts/avss/test.py``. It works
in float32 like the official code, one frame and one threshold at a time.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torchmetrics
from torchmetrics.utilities import dim_zero_cat

from avsynth.evaluation.metrics import (
    AVSBenchMetric,
    AVSSMetric,
    _grid_table,
    _histograms,
    f_curves,
    f_thresholds,
    frame_iou,
    fscore,
    miou,
    pr_counts,
    threshold_bins,
)

TOL = 1e-6


# --------------------------------------------------------------------------- oracle (loops)


def oracle_iou(logits: torch.Tensor, gt: torch.Tensor) -> float:
    """One official mask_iou call: threshold sigmoid at 0.5, empty-GT frames use the TN rule."""
    gt = gt.float()
    n, h, w = logits.shape
    binary = (torch.sigmoid(logits) > 0.5).float()
    total = 0.0
    for i in range(n):
        b, g = binary[i], gt[i]
        if g.sum() == 0:
            value = ((1 - g) * (1 - b)).sum() / (h * w + 1e-7)
        else:
            value = (b * g).sum() / (torch.maximum(b, g).sum() + 1e-7)
        total += float(value)
    return total / n


def oracle_fscore(logits: torch.Tensor, gt: torch.Tensor) -> float:
    """One official Eval_Fmeasure call: loop over frames, then over the 255 thresholds."""
    gt = gt.float()
    probs = torch.sigmoid(logits)
    thresholds = torch.linspace(0, 1 - 1e-10, 255)
    summed = torch.zeros(255)
    used = 0
    for i in range(logits.shape[0]):
        g = gt[i]
        if torch.mean(g) == 0.0:
            continue
        curve = torch.zeros(255)
        for j in range(255):
            hit = (probs[i] >= thresholds[j]).float()
            tp = (hit * g).sum()
            precision = tp / (hit.sum() + 1e-20)
            recall = tp / (g.sum() + 1e-20)
            f = 1.3 * precision * recall / (0.3 * precision + recall)
            curve[j] = 0.0 if torch.isnan(f) else f
        summed += curve
        used += 1
    if used == 0:
        return 0.0
    return float((summed / used).max())


def oracle_counts(logits: torch.Tensor, gt: torch.Tensor, num: int = 255):
    """Per frame and threshold, straight from the official ``_eval_pr``: one threshold at a time,
    ``P = (p >= t).float()``, ``|P| = P.sum()``, ``TP = (P * g).sum()``, in the logits' dtype.

    Returns (|P_t|, TP_t) as float64 [N, T] (integers for a binary ``gt``: float32 sums of 0/1
    are exact below 2**24) and the float32 F curves [N, T] the official code forms from them.
    """
    gt = gt.float()
    probs = torch.sigmoid(logits)  # once, on the whole tensor, as the official code does
    thresholds = torch.linspace(0, 1 - 1e-10, num)
    n = logits.shape[0]
    npred = torch.zeros(n, num, dtype=torch.float64)
    tp = torch.zeros(n, num, dtype=torch.float64)
    curves = torch.zeros(n, num)
    for i in range(n):
        g = gt[i]
        for j in range(num):
            hit = (probs[i] >= thresholds[j]).float()
            npred[i, j] = float(hit.sum())
            tp[i, j] = float((hit * g).sum())
            precision = (hit * g).sum() / (hit.sum() + 1e-20)
            recall = (hit * g).sum() / (g.sum() + 1e-20)
            f = 1.3 * precision * recall / (0.3 * precision + recall)
            curves[i, j] = 0.0 if torch.isnan(f) else f
    return npred, tp, curves


def logits_hitting(targets: torch.Tensor, iters: int = 60) -> torch.Tensor:
    """float32 logits whose sigmoid, taken on this whole tensor, equals ``targets`` where the
    float32 sigmoid can reach them (Newton steps in float64, then single ulps)."""
    q = targets.double().clamp(1e-30, 1 - 1e-12)
    x = torch.log(q / (1 - q)).float()
    x[targets == 0] = -math.inf
    x[targets == 1] = math.inf
    inf = torch.tensor(math.inf)
    for _ in range(iters):
        p = torch.sigmoid(x)
        miss = p != targets
        if not bool(miss.any()):
            break
        p64 = p.double()
        step = (targets.double() - p64) / (p64 * (1 - p64)).clamp_min(1e-300)
        nxt = (x.double() + step).float()
        one_ulp = torch.nextafter(x, torch.where(targets > p, inf, -inf))
        nxt = torch.where(nxt == x, one_ulp, nxt)
        x = torch.where(miss & torch.isfinite(x), nxt, x)
    return x


def oracle_test_set(calls: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """The official test loop: average the per-call values over calls."""
    ious = [oracle_iou(x, g) for x, g in calls]
    fs = [oracle_fscore(x, g) for x, g in calls]
    return sum(ious) / len(ious), sum(fs) / len(fs)


def oracle_avss(batches: list[tuple[torch.Tensor, torch.Tensor]], num_classes: int) -> dict:
    """Official AVSS accumulation, one frame and one class at a time."""
    iou_sum = [0.0] * num_classes
    f_sum = [0.0] * num_classes
    count = [0] * num_classes
    for logits, gt in batches:
        pred = torch.argmax(torch.softmax(logits, dim=1), dim=1) if logits.dim() == 4 else logits
        for i in range(pred.shape[0]):
            p, g = pred[i], gt[i]
            kept = g >= 0
            for c in range(num_classes):
                in_pred = int(((p == c) & kept).sum())
                in_lab = int((g == c).sum())
                inter = int(((p == c) & (g == c)).sum())
                union = in_pred + in_lab - inter
                iou_sum[c] += inter / (2.220446049250313e-16 + union)
                if union > 0:
                    count[c] += 1
                if in_pred and in_lab:
                    pr, rc = inter / in_pred, inter / in_lab
                    f_sum[c] += 0.0 if pr + rc == 0 else 1.3 * pr * rc / (0.3 * pr + rc)
    per_iou = [iou_sum[c] / count[c] if count[c] else 0.0 for c in range(num_classes)]
    per_f = [f_sum[c] / count[c] if count[c] else 0.0 for c in range(num_classes)]
    return {
        "miou": sum(per_iou) / num_classes,
        "fscore": sum(per_f) / num_classes,
        "miou_no_bg": sum(per_iou[1:]) / (num_classes - 1),
        "miou_official_no_bg": sum(per_iou[:-1]) / (num_classes - 1),
        "fscore_official_no_bg": sum(per_f[:-1]) / (num_classes - 1),
        "per_iou": per_iou,
        "per_f": per_f,
        "count": count,
    }


# --------------------------------------------------------------------------- inputs


def random_case(seed: int, n: int | None = None, h: int = 20, w: int = 24):
    gen = torch.Generator().manual_seed(seed)
    n = n or int(torch.randint(1, 7, (1,), generator=gen))
    scale = float(torch.empty(1).uniform_(0.2, 25, generator=gen))
    logits = torch.randn(n, h, w, generator=gen) * scale
    gt = (torch.rand(n, h, w, generator=gen) < float(torch.rand(1, generator=gen))).float()
    # Make predictions correlate with the mask on some frames and leave some GTs empty.
    logits += gt * float(torch.empty(1).uniform_(0, 6, generator=gen))
    for i in range(n):
        if torch.rand(1, generator=gen) < 0.25:
            gt[i] = 0
    return logits, gt


# --------------------------------------------------------------------------- per-call agreement


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_matches_loop_oracle(seed):
    logits, gt = random_case(seed)
    assert miou(logits, gt) == pytest.approx(oracle_iou(logits, gt), abs=TOL)
    assert fscore(logits, gt) == pytest.approx(oracle_fscore(logits, gt), abs=TOL)


def test_float64_logits_and_saturated_extremes():
    """±inf logits give p exactly 0 and 1, which equal the first and last (1.0) thresholds."""
    logits, gt = random_case(7, n=4)
    logits = logits.double()
    logits[0, :5] = float("inf")
    logits[1, :5] = -float("inf")
    logits[2] = 40.0  # sigmoid saturates to 1.0 in float64 only above ~37
    gt[0:3, 3:9] = 1
    assert fscore(logits, gt) == pytest.approx(oracle_fscore(logits, gt), abs=TOL)
    assert miou(logits, gt) == pytest.approx(oracle_iou(logits, gt), abs=TOL)
    thr = f_thresholds()
    assert thr.dtype == torch.float32 and thr.numel() == 255
    assert float(thr[-1]) == 1.0 and float(thr[0]) == 0.0
    npred, _, _ = pr_counts(logits, gt)
    # frame 0: the +inf pixels (p == 1.0) are kept at the last threshold
    assert npred[0, -1] >= 5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_threshold_bins_equal_a_binary_search(dtype):
    """The shortcut binning equals an exact search, also right at and beside every threshold."""
    thr = f_thresholds().to(dtype)
    up, down = torch.tensor(2.0, dtype=dtype), torch.tensor(-1.0, dtype=dtype)
    probs = torch.cat([
        torch.rand(200_000, generator=torch.Generator().manual_seed(0), dtype=dtype),
        thr, torch.nextafter(thr, up), torch.nextafter(thr, down),
        torch.tensor([0.0, 1.0, 1e-30, 0.5], dtype=dtype),
    ]).clamp(0, 1)
    assert torch.equal(threshold_bins(probs, thr), torch.bucketize(probs, thr, right=True))


# --------------------------------------------------------------------------- exact counts


def assert_counts_match_oracle(logits, gt):
    npred, tp, gsum = pr_counts(logits, gt)
    ref_npred, ref_tp, ref_curves = oracle_counts(logits, gt)
    assert torch.equal(npred, ref_npred)
    assert torch.equal(tp, ref_tp)
    assert torch.equal(gsum, gt.double().sum(dim=(1, 2)))
    curves, valid = f_curves(logits, gt)
    assert valid.tolist() == (gt.sum(dim=(1, 2)) != 0).tolist()
    diff = float((curves - ref_curves.double()).abs().max()) if curves.numel() else 0.0
    assert diff < TOL
    assert fscore(logits, gt) == pytest.approx(oracle_fscore(logits, gt), abs=TOL)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 5), (2, 64, 48), (70, 31, 33), (1, 300, 257)])
def test_counts_equal_the_per_threshold_loop(shape):
    """Exact |P_t| and TP_t at all 255 thresholds; shapes cover one pixel, several frames per
    chunk (70 x 1023 px: 64 frames, then a partial chunk of 6) and a frame binned in pieces."""
    n, h, w = shape
    gen = torch.Generator().manual_seed(sum(shape))
    logits = torch.randn(n, h, w, generator=gen) * 4
    gt = (torch.rand(n, h, w, generator=gen) < 0.4).float()
    logits += gt * 2
    if n > 2:
        gt[1] = 0  # an empty frame
    assert_counts_match_oracle(logits, gt)


def test_probabilities_exactly_on_thresholds():
    """Pixels whose sigmoid is exactly a threshold, or its float32 neighbour on either side."""
    thr = f_thresholds()
    up, down = torch.tensor(2.0), torch.tensor(-1.0)
    gen = torch.Generator().manual_seed(5)
    targets = torch.cat([
        thr, torch.nextafter(thr, up).clamp(max=1), torch.nextafter(thr, down).clamp(min=0),
        torch.tensor([0.0, 1.0, 0.5]).repeat(40), torch.rand(135, generator=gen),
    ])
    targets = targets[torch.randperm(targets.numel(), generator=gen)]
    logits = logits_hitting(targets).view(4, 15, 17)
    probs = torch.sigmoid(logits).view(-1)
    on_grid = torch.isin(probs, thr).sum()
    hits = (probs == targets).sum()
    assert hits >= 0.5 * targets.numel() and on_grid >= 150 + 80  # most targets reached exactly
    gt = (torch.rand(4, 15, 17, generator=gen) < 0.5).float()
    gt[2] = 0
    assert_counts_match_oracle(logits, gt)
    assert_counts_match_oracle(logits, 1 - gt)


def test_kernel_exact_on_and_beside_every_threshold():
    """The binning kernel on probabilities given directly: every threshold, both float32
    neighbours, 0 and 1, binary and soft ground truth, float32 and float64."""
    for dtype in (torch.float32, torch.float64):
        thr = f_thresholds().to(dtype)
        up, down = torch.tensor(2.0, dtype=dtype), torch.tensor(-1.0, dtype=dtype)
        p = torch.cat([thr, torch.nextafter(thr, up), torch.nextafter(thr, down)]).clamp(0, 1)
        p = torch.cat([p, torch.tensor([0.0, 1.0, 1e-45, 1 - 2**-24, 0.5], dtype=dtype)])
        p = p.view(7, -1)  # 7 frames of 110 pixels
        gen = torch.Generator().manual_seed(0)
        g = (torch.rand(p.shape, generator=gen) < 0.5).to(dtype)
        tab = _grid_table(thr, dtype)
        assert tab is not None
        hist, _ = _histograms(p, g, thr, tab, soft=False)
        k = torch.stack([(p >= t).sum(1) for t in thr], 1)  # |P_t| per frame
        ktp = torch.stack([((p >= t) & (g == 1)).sum(1) for t in thr], 1)
        assert torch.equal(hist.sum(1).flip(1).cumsum(1).flip(1), k)
        assert torch.equal(hist[:, 1].flip(1).cumsum(1).flip(1), ktp)
        soft = torch.rand(p.shape, generator=gen, dtype=dtype)
        assert _histograms(p, soft, thr, tab, soft=False, check=True) is None
        hist_s, tpw = _histograms(p, soft, thr, tab, soft=True)
        assert torch.equal(hist_s[:, 0].flip(1).cumsum(1).flip(1), k)
        wtp = torch.stack([(soft.double() * (p >= t)).sum(1) for t in thr], 1)
        assert torch.allclose(tpw.flip(1).cumsum(1).flip(1), wtp, rtol=0, atol=1e-12)


def test_saturated_probabilities():
    """p == 1.0 (kept at the last threshold, 1.0) and p == 0.0 (kept at the first only)."""
    gen = torch.Generator().manual_seed(8)
    logits = torch.randn(4, 9, 11, generator=gen)
    logits[0] = 40.0  # sigmoid is exactly 1.0 in float32
    logits[1, :4] = -math.inf
    logits[1, 4:] = math.inf
    logits[2, ::2] = -200.0  # exactly 0.0
    gt = (torch.rand(4, 9, 11, generator=gen) < 0.3).float()
    gt[3] = 0
    assert float(torch.sigmoid(logits[0]).min()) == 1.0
    npred, _, _ = pr_counts(logits, gt)
    assert npred[0].tolist() == [99.0] * 255
    assert npred[1, -1] == 5 * 11 and npred[1, 0] == 99
    assert_counts_match_oracle(logits, gt)
    assert_counts_match_oracle(logits.double(), gt)


def test_soft_ground_truth_matches_loop():
    """gt in [0, 1] (allowed by the input check) is a weight, as in the official sums."""
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 12, 10, generator=gen) * 3
    gt = (torch.rand(3, 12, 10, generator=gen) < 0.5).float()
    gt[0, :2] = 0.25  # one soft frame among binary ones
    gt[2] = 0
    npred, tp, gsum = pr_counts(logits, gt)
    ref_npred, ref_tp, ref_curves = oracle_counts(logits, gt)
    assert torch.equal(npred, ref_npred)
    assert torch.allclose(tp, ref_tp, rtol=0, atol=1e-9)
    assert torch.equal(gsum, gt.sum(dim=(1, 2), dtype=torch.float64))
    curves, _ = f_curves(logits, gt)
    assert float((curves - ref_curves.double()).abs().max()) < TOL
    assert fscore(logits, gt) == pytest.approx(oracle_fscore(logits, gt), abs=TOL)


@pytest.mark.parametrize("num", [1, 2, 3, 17, 1000])
def test_other_threshold_counts(num):
    logits, gt = random_case(21, n=3)
    npred, tp, _ = pr_counts(logits, gt, num)
    ref_npred, ref_tp, _ = oracle_counts(logits, gt, num)
    assert torch.equal(npred, ref_npred) and torch.equal(tp, ref_tp)


def test_grid_table_guard():
    """The rounding shortcut is used only where it is provably exact."""
    thr = f_thresholds()
    assert _grid_table(thr, torch.float32) is not None
    assert _grid_table(thr.double(), torch.float64) is not None
    assert _grid_table(thr.half().float(), torch.float32) is not None  # float16 error <= 0.12
    assert _grid_table(thr.bfloat16().float(), torch.float32) is None  # bfloat16: ~0.5
    assert _grid_table(thr.flip(0), torch.float32) is None
    tab = _grid_table(thr, torch.float32)
    assert torch.equal(tab, thr) and math.copysign(1.0, float(tab[0])) == -1.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_logits_match_loop(dtype):
    """Half / bfloat16: sigmoid in that dtype, each threshold rounded to it (the official
    element-wise comparison); counts exact."""
    logits, gt = random_case(12, n=3)
    low = logits.to(dtype)
    probs = torch.sigmoid(low)
    npred, tp, _ = pr_counts(low, gt)
    for j, t in enumerate(f_thresholds()):
        hit = probs >= t.to(dtype)
        assert npred[:, j].tolist() == hit.sum(dim=(1, 2)).double().tolist()
        assert tp[:, j].tolist() == (hit & (gt == 1)).sum(dim=(1, 2)).double().tolist()


def test_half_logits_threshold_in_half():
    logits, gt = random_case(11, n=3)
    half = logits.half()
    probs = torch.sigmoid(half)
    thr = f_thresholds().half()
    npred, _, _ = pr_counts(half, gt)
    for i in range(3):
        for j in (0, 100, 127, 200, 254):
            assert int(npred[i, j]) == int((probs[i] >= thr[j]).sum())
    assert miou(half, gt) == pytest.approx(oracle_iou(half, gt), abs=TOL)


def test_gt_dtypes_are_equivalent():
    logits, gt = random_case(3, n=3)
    ref = fscore(logits, gt), miou(logits, gt)
    for g in (gt.bool(), gt.to(torch.uint8), gt.long()):
        assert (fscore(logits, g), miou(logits, g)) == pytest.approx(ref, abs=1e-12)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="N x H x W"):
        miou(torch.zeros(2, 4, 4), torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="N x H x W"):
        fscore(torch.zeros(4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fscore(torch.zeros(1, 4, 4), torch.full((1, 4, 4), 255.0))
    with pytest.raises(ValueError, match="floating"):
        miou(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        fscore(torch.full((1, 4, 4), float("nan")), torch.zeros(1, 4, 4))


# --------------------------------------------------------------------------- edge cases


def test_empty_ground_truth_rules():
    gt = torch.zeros(3, 8, 8)
    logits = torch.full((3, 8, 8), -5.0)
    logits[1, :2] = 5.0  # 16 of 64 pixels wrongly predicted
    logits[2] = 5.0  # everything wrongly predicted
    ious = frame_iou(logits, gt)
    assert ious.tolist() == pytest.approx([64 / (64 + 1e-7), 48 / (64 + 1e-7), 0.0], abs=1e-12)
    assert miou(logits, gt) == pytest.approx(oracle_iou(logits, gt), abs=TOL)
    # every frame empty -> the call scores 0 (no frame enters the F average)
    assert fscore(logits, gt) == 0.0 == oracle_fscore(logits, gt)


def test_perfect_and_inverted_predictions():
    gen = torch.Generator().manual_seed(1)
    gt = (torch.rand(4, 16, 16, generator=gen) > 0.5).float()
    perfect = gt * 40 - 20
    assert miou(perfect, gt) == pytest.approx(1.0, abs=1e-6)
    assert fscore(perfect, gt) == pytest.approx(1.0, abs=1e-6)
    inverted = -perfect
    assert miou(inverted, gt) == pytest.approx(0.0, abs=1e-12)
    # at threshold 0 every pixel is predicted: precision = |G| / HW, recall = 1
    f_inv = fscore(inverted, gt)
    assert f_inv == pytest.approx(oracle_fscore(inverted, gt), abs=TOL)
    prec = gt.sum(dim=(1, 2)) / 256
    expected = float((1.3 * prec / (0.3 * prec + 1)).mean())
    assert f_inv == pytest.approx(expected, abs=TOL)


def test_all_equal_logits():
    gt = torch.zeros(2, 10, 10)
    gt[0, :3] = 1  # 30 % foreground; frame 1 empty
    logits = torch.zeros(2, 10, 10)  # p = 0.5 everywhere: not > 0.5, but >= every t <= 0.5
    assert frame_iou(logits, gt).tolist() == pytest.approx([0.0, 100 / (100 + 1e-7)], abs=1e-12)
    curves, valid = f_curves(logits, gt)
    assert valid.tolist() == [True, False]
    thr = f_thresholds().double()
    below = thr <= 0.5
    expected_f = 1.3 * 0.3 * 1.0 / (0.3 * 0.3 + 1.0)
    assert torch.allclose(curves[0][below], torch.full((int(below.sum()),), expected_f, dtype=torch.float64))
    assert torch.all(curves[0][~below] == 0)
    assert fscore(logits, gt) == pytest.approx(expected_f, abs=TOL)
    assert fscore(logits, gt) == pytest.approx(oracle_fscore(logits, gt), abs=TOL)


# --------------------------------------------------------------------------- test-set objects


def _videos(seed: int, n_videos: int, frames: int = 5, h: int = 12, w: int = 14):
    out = []
    for v in range(n_videos):
        logits, gt = random_case(seed * 100 + v, n=frames, h=h, w=w)
        out.append((f"vid{v:02d}", logits, gt))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_batch4_grouping_matches_official_test_loop(seed):
    videos = _videos(seed, 10)
    videos[5] = (videos[5][0], videos[5][1], torch.zeros_like(videos[5][2]))  # an all-empty video
    calls = []
    metric = AVSBenchMetric(f_group="batch4")
    for i in range(0, len(videos), 4):
        chunk = videos[i : i + 4]
        logits = torch.cat([x for _, x, _ in chunk])
        gt = torch.cat([g for _, _, g in chunk])
        ids = [vid for vid, x, _ in chunk for _ in range(x.shape[0])]
        calls.append((logits, gt))
        metric.update(logits, gt, ids)
    ref_iou, ref_f = oracle_test_set(calls)
    got = metric.compute()
    assert got["miou"] == pytest.approx(ref_iou, abs=TOL)
    assert got["fscore"] == pytest.approx(ref_f, abs=TOL)
    assert (got["f_group"], got["frames"], got["videos"], got["groups"]) == ("batch4", 50, 10, 3)
    json.dumps(got)


def test_video_grouping_and_split_updates():
    videos = _videos(9, 6)
    metric = AVSBenchMetric(f_group="video")
    # frames of a video arrive over two updates, interleaved with other videos
    for vid, x, g in videos:
        metric.update(x[:2], g[:2], [vid] * 2)
    for vid, x, g in videos:
        metric.update(x[2:], g[2:], [vid] * 3)
    ref_iou, ref_f = oracle_test_set([(x, g) for _, x, g in videos])
    got = metric.compute()
    assert got["miou"] == pytest.approx(ref_iou, abs=TOL)
    assert got["fscore"] == pytest.approx(ref_f, abs=TOL)
    assert got["groups"] == 6 and got["f_group"] == "video"


def test_group_of_only_empty_frames_contributes_zero():
    videos = _videos(2, 8)
    for k in range(4, 8):  # the whole second batch4 group is empty
        vid, x, g = videos[k]
        videos[k] = (vid, x, torch.zeros_like(g))
    metric = AVSBenchMetric("batch4")
    for vid, x, g in videos:
        metric.update(x, g, [vid] * x.shape[0])
    first = torch.cat([g for _, _, g in videos[:4]]), torch.cat([x for _, x, _ in videos[:4]])
    f_first = oracle_fscore(first[1], first[0])
    got = metric.compute()
    assert got["fscore"] == pytest.approx((f_first + 0.0) / 2, abs=TOL)
    assert got["frames_empty_gt"] >= 20


def test_per_category_and_errors():
    videos = _videos(4, 6)
    cats = ["dog", "cat", "dog", "cat", "dog", "dog"]
    metric = AVSBenchMetric("video")
    for (vid, x, g), c in zip(videos, cats):
        metric.update(x, g, [vid] * 5, categories=[c] * 5)
    got = metric.compute()
    assert set(got["per_category"]) == {"cat", "dog"}
    dog = [(x, g) for (vid, x, g), c in zip(videos, cats) if c == "dog"]
    ref_iou, ref_f = oracle_test_set(dog)
    assert got["per_category"]["dog"]["miou"] == pytest.approx(ref_iou, abs=TOL)
    assert got["per_category"]["dog"]["fscore"] == pytest.approx(ref_f, abs=TOL)
    assert got["per_category"]["dog"]["videos"] == 4
    json.dumps(got)
    with pytest.raises(ValueError, match="two categories"):
        metric.update(videos[0][1], videos[0][2], [videos[0][0]] * 5, categories=["cat"] * 5)
    with pytest.raises(ValueError, match="one video id per frame"):
        metric.update(videos[0][1], videos[0][2], ["x"])
    with pytest.raises(ValueError, match="f_group"):
        AVSBenchMetric("frame")
    metric.reset()
    assert metric.compute()["frames"] == 0


# --------------------------------------------------------------------------- AVSS


@pytest.mark.parametrize("seed", range(3))
def test_avss_matches_loop_oracle(seed):
    gen = torch.Generator().manual_seed(seed)
    c = 71
    batches = []
    metric = AVSSMetric(num_classes=c)
    for _ in range(2):
        gt = torch.randint(0, 6, (3, 10, 12), generator=gen) * 11  # a few classes incl. 0 and 66
        gt[0, :2] = 70
        gt[1, 0, :3] = -1  # ignored pixels
        gt[2, 1, :3] = 255  # out-of-range labels: prediction still counted
        logits = torch.randn(3, c, 10, 12, generator=gen)
        logits[:, 11] += 1.5  # class 11 over-predicted
        batches.append((logits, gt))
        metric.update(logits, gt)
    ref = oracle_avss(batches, c)
    got = metric.compute()
    for key in ("miou", "fscore", "miou_no_bg", "miou_official_no_bg", "fscore_official_no_bg"):
        assert got[key] == pytest.approx(ref[key], abs=TOL), key
    names = list(got["per_class"])
    assert names[0] == "background" and len(names) == 71
    for i, name in enumerate(names):
        assert got["per_class"][name]["iou"] == pytest.approx(ref["per_iou"][i], abs=TOL)
        assert got["per_class"][name]["fscore"] == pytest.approx(ref["per_f"][i], abs=TOL)
        assert got["per_class"][name]["frames"] == ref["count"][i]
    assert got["frames"] == 6
    json.dumps(got)


def test_avss_perfect_labels_and_label_maps():
    gt = torch.zeros(2, 8, 8, dtype=torch.long)
    gt[0, 2:5, 2:5] = 3
    gt[1, :4] = 9
    metric = AVSSMetric()
    metric.update(gt.clone(), gt)
    got = metric.compute()
    assert got["classes_present"] == 3
    assert got["per_class"]["background"]["iou"] == pytest.approx(1.0)
    assert got["miou"] == pytest.approx(3 / 71, abs=1e-9)  # absent classes count 0
    assert got["miou_no_bg"] == pytest.approx(2 / 70, abs=1e-9)
    assert got["fscore"] == pytest.approx(3 / 71, abs=1e-9)
    with pytest.raises(ValueError, match="integer label maps"):
        metric.update(gt.float(), gt)
    with pytest.raises(ValueError, match="channels"):
        metric.update(torch.zeros(1, 5, 8, 8), gt[:1])
    assert math.isfinite(got["fscore_no_bg"])


# --------------------------------------------------------------------------- torchmetrics states


def _rank_metrics(f_group: str, n: int = 11):
    """A reference metric over all frames in order, and two "ranks" scoring interleaved halves
    frame by frame, rank 1 also repeating frame 0 (DistributedSampler padding)."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(n, 12, 12, generator=g) * 3
    gt = (torch.rand(n, 12, 12, generator=g) > 0.6).to(torch.uint8)
    gt[3] = 0  # an empty-GT frame
    videos = [f"v{i // 2}" for i in range(n)]
    cats = ["dog" if i // 2 % 3 else "cat" for i in range(n)]
    ref = AVSBenchMetric(f_group=f_group)
    for i in range(n):
        ref.update(logits[i : i + 1], gt[i : i + 1], videos[i : i + 1], cats[i : i + 1])
    ranks = []
    for rank in range(2):
        m = AVSBenchMetric(f_group=f_group)
        for i in list(range(rank, n, 2)) + ([0] if rank == 1 else []):
            m.update(logits[i : i + 1], gt[i : i + 1], [videos[i]], [cats[i]], indexes=[i])
        ranks.append(m)
    return ref, ranks


@pytest.mark.parametrize("f_group", ["batch4", "video"])
def test_metric_states_merged_over_ranks_equal_the_single_process_figures(f_group):
    ref, (r0, r1) = _rank_metrics(f_group)
    expected = ref.compute()
    assert isinstance(ref, torchmetrics.Metric)
    assert ref.full_state_update is False and ref.higher_is_better is True
    # merge_state (rank 1's frames come first: the order is restored from the frame indexes)
    r1.merge_state(r0)
    assert r1.compute() == expected
    # the "cat" reduction of a distributed sync: every list state concatenated in rank order, with
    # a third rank that scored nothing (torchmetrics syncs an empty tensor of the metric's dtype)
    _, (a, b) = _rank_metrics(f_group)
    synced = AVSBenchMetric(f_group=f_group)
    for name, fx in synced._reductions.items():
        assert fx is dim_zero_cat
        empty = torch.tensor([], dtype=synced.dtype)
        setattr(synced, name, torch.cat([dim_zero_cat(getattr(a, name)), empty, dim_zero_cat(getattr(b, name))]))
    got = synced.compute()
    assert got == expected and got["frames"] == 11 and got["per_category"].keys() == {"cat", "dog"}


def test_metric_without_indexes_keeps_update_order_and_integer_keys():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 8, 8, generator=g)
    gt = (torch.rand(6, 8, 8, generator=g) > 0.5).to(torch.uint8)
    by_name, by_int = AVSBenchMetric("batch4", videos_per_group=2), AVSBenchMetric("batch4", videos_per_group=2)
    order = ["b", "a", "c", "b", "a", "c"]
    by_name.update(logits, gt, order)
    by_int.update(logits, gt, [{"b": 7, "a": 3, "c": 5}[v] for v in order])
    assert by_name.compute() == by_int.compute()
    assert by_name.compute()["groups"] == 2  # videos b, a | c: first-seen order
    with pytest.raises(ValueError, match="some updates only"):
        by_name.update(logits[:1], gt[:1], ["d"], indexes=[9])
        by_name.compute()


def test_avss_metric_states_sum_over_ranks():
    gen = torch.Generator().manual_seed(0)
    gt = torch.randint(0, 4, (4, 10, 12), generator=gen) * 7
    logits = torch.randn(4, 71, 10, 12, generator=gen)
    whole, a, b = AVSSMetric(), AVSSMetric(), AVSSMetric()
    whole.update(logits, gt)
    a.update(logits[:2], gt[:2])
    b.update(logits[2:], gt[2:])
    a.merge_state(b)
    got, want = a.compute(), whole.compute()
    for key in ("miou", "fscore", "miou_no_bg", "fscore_no_bg", "classes_present", "frames"):
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    assert got["frames"] == 4
