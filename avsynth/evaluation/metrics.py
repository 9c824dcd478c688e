"""AVSBench evaluation metrics (binary mIoU / F-score, AVSS semantic mIoU / F), vectorised.

The functions reproduce the official AVSBench evaluation code (OpenNLPLab/AVSBench,
``avs_scripts/avs_s4/utils/utility.py``: ``mask_iou``, ``Eval_Fmeasure`` and ``_eval_pr``; the
MS3 scripts import the same module; ``avs_scripts/avss/utils/compute_color_metrics.py`` and
``avs_scripts/avss/test.py`` for the semantic task). The behaviour, re-stated:

Binary, one call on ``logits``/``gt`` of shape N x H x W
    * ``p = sigmoid(logits)`` computed on the whole tensor in one call, as the official code does.
    * mIoU: ``P = p > 0.5``; per frame ``IoU = sum(P * G) / (sum(max(P, G)) + 1e-7)``; a frame whose
      ``G`` sums to 0 scores ``sum((1 - G) * (1 - P)) / (H * W + 1e-7)`` (the fraction of pixels
      correctly left empty); the call returns the mean over its N frames.
    * F-score: 255 thresholds ``torch.linspace(0, 1 - 1e-10, 255)`` in float32, where ``1 - 1e-10``
      rounds to exactly 1.0 (a quirk: the last threshold only keeps saturated probabilities);
      ``P_t = p >= t``; ``prec = TP / (sum(P_t) + 1e-20)``, ``rec = TP / (sum(G) + 1e-20)``,
      ``F = 1.3 * prec * rec / (0.3 * prec + rec)`` with NaN set to 0. Frames whose ``G`` has mean
      0 are skipped; the F curves of the remaining frames are averaged and the maximum over
      thresholds is the call's score; a call with no non-empty frame scores 0.
    * The test script averages the per-call values over calls (``AverageMeter``). With
      ``--test_batch_size 4`` (the released ``test.sh``) one call holds the frames of 4 consecutive
      videos; the script's argparse default is 1, i.e. one call per video.

How the F-score counts are formed (``pr_counts``): not one comparison per threshold but one
pass over the pixels. For each pixel ``k`` = how many thresholds are <= p is found from the
nearest grid index ``c = round(p * 254)``, which is within one of it, and one exact float
comparison ``p >= t_c`` (the thresholds lie within 1e-5 of ``j / 254``; the rule is checked on
the real threshold values before it is used, else a binary search is used); a per-frame
``bincount`` of ``k`` keyed by ``G`` gives, after a reversed cumulative sum, ``|P_t|`` and ``TP_t``
at all 255 thresholds as exact integers. So a probability lying exactly on a threshold is
counted on the same side as ``p >= t`` in the official code. A soft ``G`` (values strictly
between 0 and 1, which the input check allows) is binned with ``G`` as weights instead.

Half / bfloat16 logits: the sigmoid runs in that dtype and the thresholds are rounded to it, as
the official element-wise comparison does; the counts here stay exact (the official code would
also sum in half precision, which is not reproduced). Rounded to bfloat16 the thresholds are
too far from the grid for the rounding rule, so those calls bin by binary search (slower).

Differences from the DESIGN summary: none in substance; note that the empty-frame IoU divides by
``H * W + 1e-7`` (the epsilon is applied to every frame) and that the F-score maximum is taken
after averaging the curves of a call, not per frame.

The only non-bitwise difference from the official code is the arithmetic after counting: counts
are exact integers here and the ratios are formed in float64, while the official code uses
float32, so results agree to ~1e-7. PyTorch's CPU sigmoid can differ by one ulp depending on
how a tensor is split between vector and scalar loops; like the official code, the sigmoid is
applied once to the whole tensor given, so identical inputs give identical thresholded masks.

AVSS (semantic), per frame, from ``argmax(softmax(logits))`` (or given label maps)
    per class c: ``inter``, ``pred`` and ``lab`` pixel counts; ``union = pred + lab - inter``;
    ``IoU = inter / (2.220446049250313e-16 + union)``; ``F`` from ``prec = inter / pred`` and
    ``rec = inter / lab`` (NaN -> 0). IoU and F are summed over frames, and a class's frame count
    grows on frames where its union is non-empty. Final per-class value = sum / count (0 for a
    class never present); mIoU and F are the means over all classes. Ground truth below 0 is
    ignored; ground truth >= num_classes is ignored for ``lab`` but the prediction there still
    counts (as the official histogram does). The official "noBg" figure is
    ``mean(per_class[:-1])``, which drops the LAST class although background is class 0 in the
    released palette; ``AVSSMetric.compute`` reports both the true no-background mean and that
    official slice. The official AVSS test loader also pads v1s / v1m videos (5 frames) to 10 with
    black frames and background masks, and those padded frames are scored too: pass
    ``pad_to=10`` to ``AVSBenchDataset`` and score ``annotated | padded`` frames to reproduce it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics import Metric

from avsynth.sources.avsbench import load_palette

NUM_THRESHOLDS = 255
BETA2 = 0.3
IOU_EPS = 1e-7
PR_EPS = 1e-20
AVSS_EPS = 2.220446049250313e-16
F_GROUPS = ("batch4", "video")
_CHUNK_PIXELS = 1 << 20  # pixels binned at once (bounds the int64 index memory)


# --------------------------------------------------------------------------- binary, per frame


def f_thresholds(num: int = NUM_THRESHOLDS, device: torch.device | str | None = None) -> torch.Tensor:
    """The official F-score thresholds: float32 ``linspace(0, 1 - 1e-10, num)`` (last one is 1.0)."""
    return torch.linspace(0, 1 - 1e-10, num, device=device)


def _check_pair(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Validate shapes and values; return gt as a float tensor (float32 unless given float64)."""
    if logits.dim() != 3 or logits.shape != gt.shape:
        raise ValueError(
            f"logits and gt must both be N x H x W with equal shapes; got {tuple(logits.shape)} "
            f"and {tuple(gt.shape)}"
        )
    if not torch.is_floating_point(logits):
        raise ValueError(f"logits must be a floating tensor, got {logits.dtype}")
    if logits.numel() and bool(torch.isnan(logits).any()):
        raise ValueError("logits contain NaN")
    g = gt.to(device=logits.device)
    if g.dtype != torch.float64:
        g = g.to(torch.float32)
    if g.numel():
        lo, hi = torch.aminmax(g)
        if lo < 0 or hi > 1:
            raise ValueError("gt values must lie in [0, 1] (a binary mask)")
    return g


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    """sigmoid of the whole tensor in its own dtype (float16/bfloat16 widened afterwards)."""
    p = torch.sigmoid(logits)
    return p if p.dtype in (torch.float32, torch.float64) else p.float()


def frame_iou(logits: torch.Tensor, gt: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-frame IoU (float64, shape [N]) under the official rules, empty-GT rule included;
    ``P = sigmoid(logits) > threshold`` (0.5 official AVSBench; GAVS's code uses 0.4).

    With ``P`` binary and ``G`` in [0, 1], ``sum(max(P, G)) = |P| + |G| - |P G|`` and, on an
    empty ``G``, ``sum((1 - G)(1 - P)) = H W - |P|``; only the three sums are formed.
    """
    g = _check_pair(logits, gt)
    _, h, w = g.shape
    pred = _probabilities(logits) > threshold
    npred = pred.sum(dim=(1, 2), dtype=torch.float64)
    gsum = g.sum(dim=(1, 2), dtype=torch.float64)
    inter = torch.where(pred, g, 0).sum(dim=(1, 2), dtype=torch.float64)
    union = npred + gsum - inter
    empty = gsum == 0
    inter = torch.where(empty, h * w - npred, inter)
    union = torch.where(empty, torch.full_like(union, float(h * w)), union)
    return inter / (union + IOU_EPS)


def miou(logits: torch.Tensor, gt: torch.Tensor) -> float:
    """What the official ``mask_iou(logits, gt)`` returns for one call: the mean frame IoU."""
    ious = frame_iou(logits, gt)
    return float(ious.mean()) if ious.numel() else 0.0


_CPU_CHUNK_PIXELS = 1 << 16  # CPU: pixels binned at once, so a chunk's buffers stay in L2
_GRID_CACHE: dict[tuple, torch.Tensor | None] = {}


def _grid_table(thr: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """``thr`` as the rounding shortcut's lookup table (in ``dtype``), or None if it is unsafe.

    The shortcut (see ``_bin_keys``) is exact for any non-decreasing thresholds with
    ``|t_j (T - 1) - j| + rounding slack < 0.5``. Checked here, in float64, on the real values:
    ``f_thresholds`` in float32 (largest error 7.9e-6 at T = 255) or rounded to float16 (0.12)
    pass; rounded to bfloat16 they do not (~0.5), and then the caller falls back to a search.
    The first entry 0.0 is stored as -0.0 (equal in every comparison) so that ``p - t`` is never
    -0.0 for ``p >= t``, which the sign-bit test relies on.
    """
    t = thr.numel()
    if t == 0 or not dtype.is_floating_point:
        return None
    t64 = thr.to(torch.float64)
    # bounds the rounding of p (T - 1) + 0.5 (+ T g in ``_histograms``): values below 2T, three
    # roundings of at most T eps each
    slack = 8 * t * torch.finfo(dtype).eps
    err = (t64 * (t - 1) - torch.arange(t, dtype=torch.float64, device=thr.device)).abs().max()
    if not (bool(torch.isfinite(err)) and float(err) + slack < 0.45
            and bool((t64[1:] >= t64[:-1]).all())):
        return None
    tab = thr.to(dtype).clone()
    tab[tab == 0] = -0.0
    return tab


def _official_grid(num: int, logits_dtype: torch.dtype, p_dtype: torch.dtype,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The thresholds as the official comparison sees them (in ``p``'s dtype) and their table."""
    key = (num, logits_dtype, p_dtype, str(device))
    thr = f_thresholds(num, device=device)
    if logits_dtype not in (torch.float32, torch.float64):
        # the official comparison of a half tensor with a 0-d float32 threshold runs in half
        thr = thr.to(logits_dtype)
    thr = thr.to(p_dtype)
    if key not in _GRID_CACHE:
        _GRID_CACHE[key] = _grid_table(thr, p_dtype)
    return thr, _GRID_CACHE[key]


def _bin_keys(p: torch.Tensor, tab: torch.Tensor, key: torch.Tensor, v: torch.Tensor,
              d: torch.Tensor, half: torch.Tensor, g: torch.Tensor | None = None,
              clamp: bool = False) -> None:
    """``key[i] = k_i - 1 (+ T g_i)``, ``k_i`` = how many thresholds are <= ``p[i]`` (in place).

    ``c = trunc(p (T - 1) + 0.5)`` (the nearest grid index) is within one of the answer: with
    ``|t_j (T - 1) - j| < 0.5`` (``_grid_table`` checks it, rounding slack included),
    ``t_{c-1} <= p < t_{c+1}``, so ``k = c + [p >= t_c]`` and ``k - 1 = c - [p < t_c]``. The
    comparison is exact: ``p - t_c`` is negative exactly when ``p < t_c`` (the sign of an IEEE
    difference is exact; -0.0 cannot occur as the table holds no +0.0), and its sign bit,
    shifted arithmetically, is -1 or 0.

    ``p``: 1-D, in [0, 1] (a sigmoid's output); with ``clamp`` any non-NaN value (``c`` is
    clamped to the grid, after which the same argument holds). ``tab``: ``_grid_table`` (T
    entries), or, with a binary ``g`` (0/1 floats, same length), the table twice (2T entries):
    ``T g`` is then added before rounding and the key lands in the ``g`` half. ``key``: int32 for
    float32 ``p``, int64 for float64; ``v``, ``d``: scratch of ``p``'s dtype and length;
    ``half``: a 0-d 0.5 of ``p``'s dtype.
    """
    t = tab.numel() // (1 if g is None else 2)
    torch.add(half, p, alpha=t - 1, out=v)
    if g is not None:
        v.add_(g, alpha=t)
    if clamp:
        v.clamp_(0, t - 1)
    key.copy_(v)
    torch.index_select(tab, 0, key, out=v)
    torch.sub(p, v, out=d)
    bits = d.view(key.dtype)
    bits >>= bits.element_size() * 8 - 1
    key += bits


def threshold_bins(p: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """For each probability, how many thresholds are <= it (int64, same shape as ``p``).

    ``thr``: sorted thresholds in ``p``'s dtype, normally ``f_thresholds(T)``. Exact: the
    nearest grid index ``round(p (T - 1))`` is within one of the answer and a single comparison
    with that threshold settles it (``_bin_keys``), no search; thresholds too far from the
    ``j / (T - 1)`` grid for that (e.g. rounded to bfloat16) fall back to ``torch.bucketize``.
    ``p`` must not contain NaN.
    """
    tab = _grid_table(thr, p.dtype) if p.dtype in (torch.float32, torch.float64) else None
    if tab is None:
        return torch.bucketize(p, thr, right=True)
    flat = p.reshape(-1)
    key = torch.empty(flat.shape, dtype=torch.int64 if p.dtype == torch.float64 else torch.int32,
                      device=p.device)
    _bin_keys(flat, tab, key, torch.empty_like(flat), torch.empty_like(flat),
              flat.new_full((), 0.5), clamp=True)
    return key.to(torch.int64).add_(1).view(p.shape)


def _histograms(p: torch.Tensor, g: torch.Tensor, thr: torch.Tensor, tab: torch.Tensor | None,
                soft: bool, check: bool = False) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Per frame histograms of ``k - 1`` (``k``: how many thresholds are <= p) over all pixels
    and over the ground truth.

    ``p``, ``g``: N x M (probabilities; ground truth in [0, 1]). Binary mode (``soft=False``, g
    in {0, 1}) bins ``key = (k - 1) + T g`` with one int32 ``bincount`` and returns int64
    ``[N, 2, T]`` counts (row 1: the ``g == 1`` pixels) and None; with ``check`` it first tests
    each chunk of ``g`` (``max(frac(g)) == 0``, which a fraction or a NaN fails) and returns None
    if ``g`` is not binary. Soft mode returns int64 ``[N, 1, T]`` counts and float64 ``[N, T]``
    ``g``-weighted sums (the TP of a soft mask). Frames are binned a chunk at a time so that
    every buffer stays in cache; ``tab`` None (thresholds off the grid) uses ``bucketize``.
    """
    n, m = p.shape
    t = thr.numel()
    dev = p.device
    groups = 1 if soft else 2
    hist = torch.zeros(n, groups, t, dtype=torch.int64, device=dev)
    tpw = torch.zeros(n, t, dtype=torch.float64, device=dev) if soft else None
    if n == 0 or m == 0:
        return hist, tpw
    budget = _CPU_CHUNK_PIXELS if dev.type == "cpu" else _CHUNK_PIXELS
    rows = max(1, min(n, budget // m))
    piece = min(m, budget) if rows == 1 else m  # pixels of one frame binned at once
    size = rows * piece
    kdt = torch.int64 if p.dtype == torch.float64 else torch.int32
    key_buf = torch.empty(size, dtype=kdt, device=dev)
    v_buf = torch.empty(size, dtype=p.dtype, device=dev)
    d_buf = torch.empty(size, dtype=p.dtype, device=dev)
    half = p.new_full((), 0.5)
    table = tab if soft or tab is None else tab.repeat(2)
    row_off = (torch.arange(rows, dtype=kdt, device=dev) * (groups * t)).unsqueeze(1)
    pf, gf = p.reshape(-1), g.reshape(-1)
    for s in range(0, n, rows):
        r = min(rows, n - s)
        for a in range(0, m, piece):
            lo, hi = s * m + a, s * m + min(m, a + piece) + (r - 1) * m
            pc, gc = pf[lo:hi], gf[lo:hi]
            cur = hi - lo
            key = key_buf[:cur]
            if check:
                frac = torch.frac(gc, out=d_buf[:cur] if gc.dtype == p.dtype else None)
                if float(torch.amax(frac)) != 0:
                    return None
            if table is None:
                key.copy_(torch.bucketize(pc, thr, right=True)).sub_(1)
                if not soft:
                    key.add_(gc.to(kdt), alpha=t)
            else:
                _bin_keys(pc, table, key, v_buf[:cur], d_buf[:cur], half, None if soft else gc)
            if r > 1:
                key.view(r, -1).add_(row_off[:r])
            hist[s : s + r] += torch.bincount(key, minlength=r * groups * t).view(r, groups, t)
            if soft:
                w = gc.to(torch.float64)
                tpw[s : s + r] += torch.bincount(key, weights=w, minlength=r * t).view(r, t)
    return hist, tpw


def _pr_counts_raw(values: torch.Tensor, g: torch.Tensor, thr: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``pr_counts`` of arbitrary values compared with the thresholds (SAMA-AVS's test feeds raw
    logits to ``Eval_Fmeasure``, its sigmoid commented out): per frame the values are sorted and
    ``|v >= t|`` counted by binary search, over all pixels and over the G = 1 ones. Half /
    bfloat16 values are compared with the thresholds rounded to their dtype, as the official
    element-wise comparison does."""
    n = values.shape[0]
    v = values.flatten(1).to(torch.float64)
    gf = g.flatten(1)
    if gf.numel() and float(torch.amax(torch.frac(gf))) != 0:
        raise ValueError("F-score on raw logits needs a binary ground truth")
    # as the official ``values >= t``: a 0-d float32 threshold is rounded to a half tensor's dtype
    t = thr.to(values.dtype).to(torch.float64).expand(n, -1).contiguous()
    m = v.shape[1]
    npred = m - torch.searchsorted(torch.sort(v, dim=1).values, t)
    pos = torch.where(gf > 0, v, torch.full_like(v, -torch.inf))
    tp = m - torch.searchsorted(torch.sort(pos, dim=1).values, t)
    return npred.to(torch.float64), tp.to(torch.float64), gf.sum(1, dtype=torch.float64)


def pr_counts(
    logits: torch.Tensor, gt: torch.Tensor, num_thresholds: int = NUM_THRESHOLDS, on_logits: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per frame and threshold: ``(|P_t|, TP_t, |G|)`` as float64 ``[N, T]``, ``[N, T]``, ``[N]``.

    All thresholds at once: each pixel's ``k`` (how many thresholds are <= p, ``_bin_keys``) is
    found with one rounding and one exact comparison, a per-frame histogram of ``k`` is taken
    (TP from the same ``bincount``, keyed by ``G`` as well), and a reversed cumulative sum gives
    the count of pixels with ``p >= t_j``. A floating ``gt`` is checked to be binary on the way
    (every fractional part 0); a soft one (or one holding NaN) is re-binned with ``G`` as weights.
    """
    g = _check_pair(logits, gt)
    if on_logits:
        return _pr_counts_raw(logits, g, f_thresholds(num_thresholds, device=logits.device))
    p = _probabilities(logits)
    thr, tab = _official_grid(num_thresholds, logits.dtype, p.dtype, p.device)
    pf, gf = p.flatten(1), g.flatten(1)  # N x HW, also for N = 0
    binned = _histograms(pf, gf, thr, tab, soft=False, check=torch.is_floating_point(gt))
    if binned is None:  # a soft (or NaN) ground truth: TP are g-weighted sums
        hist, tpw = _histograms(pf, gf, thr, tab, soft=True)
        tp = tpw.flip(1).cumsum(1).flip(1)
        gsum = g.sum(dim=(1, 2), dtype=torch.float64)
    else:
        hist = binned[0]
        tp = hist[:, 1].flip(1).cumsum(1).flip(1).to(torch.float64)
        gsum = hist[:, 1].sum(1).to(torch.float64)  # |G| of a binary mask: its count of ones
    npred = hist.sum(1).flip(1).cumsum(1).flip(1).to(torch.float64)
    return npred, tp, gsum


def f_curves(
    logits: torch.Tensor, gt: torch.Tensor, num_thresholds: int = NUM_THRESHOLDS, on_logits: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame F-beta curves ``[N, T]`` (float64) and the mask of frames with non-empty GT
    (``on_logits``: thresholds applied to the logits themselves, SAMA-AVS's evaluation)."""
    npred, tp, gsum = pr_counts(logits, gt, num_thresholds, on_logits)
    prec = tp / (npred + PR_EPS)
    rec = tp / (gsum.unsqueeze(1) + PR_EPS)
    f = (1 + BETA2) * prec * rec / (BETA2 * prec + rec)
    f = torch.nan_to_num(f, nan=0.0)
    return f, gsum != 0


def fscore(logits: torch.Tensor, gt: torch.Tensor) -> float:
    """What the official ``Eval_Fmeasure(logits, gt, ...)`` returns for one call."""
    curves, valid = f_curves(logits, gt)
    return group_fscore(curves[valid])


def group_fscore(curves: torch.Tensor) -> float:
    """Max over thresholds of the mean curve of one group's non-empty frames; 0 if none."""
    if curves.shape[0] == 0:
        return 0.0
    return float(curves.mean(dim=0).max())


# --------------------------------------------------------------------------- binary, test set

_NO_KEY = -1  # frame_index / frame_category of a frame given none


_MAX_KEY = 1 << 52  # keys stay exact in float64 (a process with no frames syncs float64 empties)


def stable_key(name: str) -> int:
    """A 52-bit integer key of a string, the same in every process (sha256 of its UTF-8)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") % _MAX_KEY


def _keys(values: Sequence | torch.Tensor, what: str) -> list[int]:
    """Integer keys of video ids / categories: ints as given (>= 0), strings by :func:`stable_key`."""
    out = []
    for v in values.tolist() if isinstance(values, torch.Tensor) else values:
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            if not 0 <= v < _MAX_KEY:
                raise ValueError(f"integer {what} must be in [0, 2**52), got {v}")
            out.append(int(v))
        else:
            out.append(stable_key(str(v)))
    return out


def _cat(state: list[torch.Tensor] | torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A list state (or an already synced tensor) as one 1-D tensor of ``dtype``."""
    if isinstance(state, list):
        state = torch.cat(state) if state else torch.zeros(0)
    return state.to(dtype)


class AVSBenchMetric(Metric):
    """Binary AVSBench mIoU and F-score over a test set, with an explicit F-score grouping.

    ``f_group="batch4"`` reproduces the official test script with ``--test_batch_size 4``: the
    videos, in the order they were first seen by ``update``, are cut into consecutive groups of
    ``videos_per_group`` (default 4; the last group may be smaller); each group is one official
    call (mIoU = mean frame IoU of the group, F = max over thresholds of the group's mean curve)
    and the test-set figures are the means over groups. ``f_group="video"`` makes every video its
    own group (the GAVS / AAVS convention, equal to the official script with batch size 1).
    ``threshold``: the sigmoid cut of the mIoU (0.5; GAVS 0.4); ``f_on_logits``: the F-score
    thresholds compare the raw logits (SAMA-AVS's test), not their sigmoid.

    ``update(logits, gt, video_ids, categories=None, indexes=None)`` takes N x H x W logits and
    masks and one video id (and optionally one category) per frame. Frames of a video may arrive
    over several updates. Only annotated frames should be passed. ``compute()`` returns a
    JSON-serialisable dict with ``miou``, ``fscore``, ``f_group``, ``frames``, ``videos``,
    ``groups`` and, when categories were given, ``per_category`` (the same grouping rule applied to
    each category's own videos in order).

    A torchmetrics ``Metric``: the states are one entry per frame (IoU, F curve, whether its ground
    truth is non-empty, video key, category key, frame index; ``cat`` reduction) plus the category
    names (their keys and NUL-terminated UTF-8 bytes), so with several processes ``compute()``
    covers every process's frames (torchmetrics gathers them). Video ids and categories may be
    strings (keyed by :func:`stable_key`, equal in every process) or integers >= 0. ``indexes``
    (each frame's position in the dataset, given for every frame or for none) lets ``compute()``
    drop the frames a distributed sampler repeated (first copy kept) and restore the dataset order,
    whatever process scored them; without them, frames keep the order of the updates (process 0's
    first after a sync).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, f_group: str = "batch4", videos_per_group: int = 4,
                 num_thresholds: int = NUM_THRESHOLDS, threshold: float = 0.5,
                 f_on_logits: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)
        self.f_on_logits = bool(f_on_logits)
        if f_group not in F_GROUPS:
            raise ValueError(f"f_group must be one of {F_GROUPS}, got {f_group!r}")
        if videos_per_group < 1:
            raise ValueError("videos_per_group must be >= 1")
        self.f_group = f_group
        self.videos_per_group = videos_per_group
        self.num_thresholds = num_thresholds
        for name in ("frame_iou", "frame_curve", "frame_valid", "frame_video", "frame_category",
                     "frame_index", "category_key", "category_name"):
            self.add_state(name, default=[], dist_reduce_fx="cat")  # 1-D tensors, float64-exact
        self.set_dtype(torch.float64)  # what a process without frames contributes to a sync
        self._video_category: dict[int, int] = {}  # this process's check: one category per video
        self._names: dict[int, str] = {}  # category names registered by this process

    def reset(self) -> None:
        """Forget everything accumulated."""
        super().reset()
        self._video_category = {}
        self._names = {}

    def update(self, logits: torch.Tensor, gt: torch.Tensor, video_ids: Sequence[str | int],
               categories: Sequence[str | int] | None = None,
               indexes: Sequence[int] | torch.Tensor | None = None) -> None:
        """Add N frames: logits and gt N x H x W, one video id (and category, and dataset index) per
        frame."""
        n = logits.shape[0] if logits.dim() == 3 else -1
        if len(video_ids) != n:
            raise ValueError(f"need one video id per frame: {len(video_ids)} ids for "
                             f"logits of shape {tuple(logits.shape)}")
        if categories is not None and len(categories) != n:
            raise ValueError(f"need one category per frame: {len(categories)} for {n} frames")
        if indexes is not None and len(indexes) != n:
            raise ValueError(f"need one index per frame: {len(indexes)} for {n} frames")
        vids = _keys(video_ids, "video ids")
        cats = [_NO_KEY] * n if categories is None else _keys(categories, "categories")
        for i, (vid, cat) in enumerate(zip(vids, cats)):
            if cat == _NO_KEY:
                continue
            known = self._video_category.setdefault(vid, cat)
            if known != cat:
                raise ValueError(f"video {video_ids[i]!r} given two categories: "
                                 f"{self._names.get(known, known)!r}, {categories[i]!r}")
            if cat not in self._names:
                self._names[cat] = str(categories[i])
                self.category_key.append(torch.tensor([cat], dtype=torch.int64))
                self.category_name.append(torch.tensor(list(str(categories[i]).encode("utf-8")) + [0],
                                                       dtype=torch.uint8))
        ious = frame_iou(logits, gt, self.threshold).cpu()
        curves, valid = f_curves(logits, gt, self.num_thresholds, self.f_on_logits)
        self.frame_iou.append(ious)
        self.frame_curve.append(curves.cpu().reshape(-1))
        self.frame_valid.append(valid.cpu().to(torch.uint8))
        self.frame_video.append(torch.tensor(vids, dtype=torch.int64))
        self.frame_category.append(torch.tensor(cats, dtype=torch.int64))
        index = [_NO_KEY] * n if indexes is None else _keys(indexes, "indexes")
        self.frame_index.append(torch.tensor(index, dtype=torch.int64))

    # ---- compute ------------------------------------------------------------------------------
    def _frames(self) -> tuple[dict[int, list[int]], dict[int, int], torch.Tensor, torch.Tensor, torch.Tensor]:
        """(video key → positions of its frames in order, video key → category key, ious, curves,
        valid) after de-duplication by frame index."""
        ious = _cat(self.frame_iou, torch.float64)
        curves = _cat(self.frame_curve, torch.float64).reshape(-1, self.num_thresholds)
        valid = _cat(self.frame_valid, torch.uint8).bool()
        video, category, index = (_cat(x, torch.int64) for x in (self.frame_video, self.frame_category,
                                                                  self.frame_index))
        given = index != _NO_KEY
        if bool(given.any()) and not bool(given.all()):
            raise ValueError("frame indexes were given for some updates only")
        if bool(given.any()):
            order, seen = [], set()
            for pos in torch.sort(index, stable=True).indices.tolist():
                key = int(index[pos])
                if key not in seen:
                    seen.add(key)
                    order.append(pos)
        else:
            order = list(range(ious.numel()))
        videos: dict[int, list[int]] = {}
        video_cat: dict[int, int] = {}
        vid_list, cat_list = video.tolist(), category.tolist()
        for pos in order:
            videos.setdefault(vid_list[pos], []).append(pos)
            if cat_list[pos] != _NO_KEY:
                video_cat.setdefault(vid_list[pos], cat_list[pos])
        return videos, video_cat, ious, curves, valid

    def _category_names(self) -> dict[int, str]:
        keys = _cat(self.category_key, torch.int64).tolist()
        data = bytes(_cat(self.category_name, torch.uint8).tolist())
        names = [b.decode("utf-8") for b in data.split(b"\0")[:-1]]
        return dict(zip(keys, names))

    def _groups(self, vids: list[int]) -> list[list[int]]:
        size = self.videos_per_group if self.f_group == "batch4" else 1
        return [vids[i : i + size] for i in range(0, len(vids), size)]

    def _score(self, vids: list[int], videos: dict[int, list[int]], ious: torch.Tensor,
               curves: torch.Tensor, valid: torch.Tensor) -> dict:
        g_iou, g_f = [], []
        for group in self._groups(vids):
            pos = torch.tensor([p for v in group for p in videos[v]], dtype=torch.int64)
            g_iou.append(float(ious[pos].mean()))
            g_f.append(group_fscore(curves[pos[valid[pos]]]))
        return {
            "miou": sum(g_iou) / len(g_iou) if g_iou else 0.0,
            "fscore": sum(g_f) / len(g_f) if g_f else 0.0,
            "frames": sum(len(videos[v]) for v in vids),
            "videos": len(vids),
            "groups": len(g_iou),
        }

    def compute(self) -> dict:
        """The test-set figures (JSON-serialisable); see the class docstring."""
        videos, video_cat, ious, curves, valid = self._frames()
        vids = list(videos)
        out = {"f_group": self.f_group, **self._score(vids, videos, ious, curves, valid)}
        if self.f_group == "batch4":
            out["videos_per_group"] = self.videos_per_group
        out["frames_empty_gt"] = sum(int((~valid[torch.tensor(p)]).sum()) for p in videos.values())
        names = self._category_names()
        cats: dict[str, list[int]] = {}
        for vid in vids:
            if vid in video_cat:
                cats.setdefault(names.get(video_cat[vid], str(video_cat[vid])), []).append(vid)
        if cats:
            out["per_category"] = {c: self._score(v, videos, ious, curves, valid) for c, v in sorted(cats.items())}
        return out


# --------------------------------------------------------------------------- AVSS (semantic)


def avss_class_names(num_classes: int = 71) -> list[str]:
    """Class names in model-index order from the shipped palette (``class_{i}`` otherwise)."""
    if num_classes != 71:
        return [f"class_{i}" for i in range(num_classes)]
    return list(load_palette()[0])


def avss_frame_counts(pred: torch.Tensor, gt: torch.Tensor, num_classes: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per frame and class pixel counts ``(inter, pred, lab)``, float64 ``[N, C]`` each.

    ``pred`` and ``gt`` are N x H x W integer label maps. Pixels with gt < 0 are ignored;
    pixels with gt >= C count for ``pred`` only (the official histogram's behaviour).
    """
    if pred.shape != gt.shape or pred.dim() != 3:
        raise ValueError(f"pred and gt must be N x H x W with equal shapes; got "
                         f"{tuple(pred.shape)} and {tuple(gt.shape)}")
    n, c = pred.shape[0], num_classes
    pred = pred.reshape(n, -1).long()
    gt = gt.to(pred.device).reshape(n, -1).long()
    base = (torch.arange(n, device=pred.device) * c).unsqueeze(1)
    keep = gt >= 0
    pvalid = keep & (pred >= 0) & (pred < c)
    lvalid = keep & (gt < c)
    ivalid = pvalid & (pred == gt)

    def count(labels: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        idx = (labels.clamp(0, c - 1) + base)[ok]
        return torch.bincount(idx, minlength=n * c).to(torch.float64).view(n, c)

    return count(pred, ivalid), count(pred, pvalid), count(gt, lvalid)


class AVSSMetric(Metric):
    """AVSBench-semantic (AVSS) per-class IoU and F-score over a test set (official rules).

    ``update(logits_or_labels, gt)``: either N x C x H x W logits (argmax of the softmax is taken,
    as officially) or N x H x W predicted labels, and N x H x W ground-truth class indices.
    ``compute()`` gives ``miou`` / ``fscore`` (means over all classes, absent classes count 0),
    ``miou_no_bg`` / ``fscore_no_bg`` (without ``background_index``), ``miou_official_no_bg`` /
    ``fscore_official_no_bg`` (the official ``[:-1]`` slice), ``classes_present``, ``frames`` and
    ``per_class`` {name: {iou, fscore, frames}}. A torchmetrics ``Metric`` whose states (per-class
    IoU / F sums and frame counts, the frame total) are summed over processes.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, num_classes: int = 71, background_index: int = 0,
                 class_names: Sequence[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError("num_classes must be >= 2")
        self.num_classes = num_classes
        self.background_index = background_index
        self.class_names = list(class_names) if class_names else avss_class_names(num_classes)
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {num_classes} classes")
        for name in ("iou_sum", "f_sum", "count"):
            self.add_state(name, default=torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("frames", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        """Add N frames (see the class docstring for the accepted shapes)."""
        if pred.dim() == 4:
            if pred.shape[1] != self.num_classes:
                raise ValueError(f"logits have {pred.shape[1]} channels, expected {self.num_classes}")
            pred = torch.softmax(pred, dim=1).argmax(dim=1)
        elif torch.is_floating_point(pred):
            raise ValueError("3-D predictions must be integer label maps")
        inter, npred, lab = avss_frame_counts(pred, gt, self.num_classes)
        union = npred + lab - inter
        iou = inter / (AVSS_EPS + union)
        prec, rec = inter / npred, inter / lab
        f = torch.nan_to_num((1 + BETA2) * prec * rec / (BETA2 * prec + rec), nan=0.0)
        self.iou_sum += iou.sum(0).to(self.iou_sum.device)
        self.f_sum += f.sum(0).to(self.f_sum.device)
        self.count += (union > 0).sum(0).to(torch.float64).to(self.count.device)
        self.frames += int(pred.shape[0])

    def compute(self) -> dict:
        """The test-set figures (JSON-serialisable); see the class docstring."""
        iou = torch.nan_to_num(self.iou_sum / self.count, nan=0.0).cpu()
        f = torch.nan_to_num(self.f_sum / self.count, nan=0.0).cpu()
        count = self.count.cpu()
        no_bg = [i for i in range(self.num_classes) if i != self.background_index]
        return {
            "miou": float(iou.mean()),
            "fscore": float(f.mean()),
            "miou_no_bg": float(iou[no_bg].mean()),
            "fscore_no_bg": float(f[no_bg].mean()),
            "miou_official_no_bg": float(iou[:-1].mean()),
            "fscore_official_no_bg": float(f[:-1].mean()),
            "num_classes": self.num_classes,
            "classes_present": int((count > 0).sum()),
            "frames": int(self.frames),
            "per_class": {
                name: {"iou": float(iou[i]), "fscore": float(f[i]), "frames": int(count[i])}
                for i, name in enumerate(self.class_names)
            },
        }
