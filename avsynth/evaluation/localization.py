"""Sound-source localisation metrics (VGG-SS, Flickr-SoundNet) as Chen et al. CVPR'21 compute them.

The reference is ``hche11/Localizing-Visual-Sounds-the-Hard-Way`` (commit 8fe8cbb), ``test.py`` and
``utils.py``; every step below names the line it follows.

* **Ground truth at 224 x 224** (:func:`vggss_gt_map`, :func:`flickr_gt_map`). VGG-SS: the union of
  the boxes with every coordinate mapped by ``int(224 * max(x, 0))`` (``utils.py:77-86``), so a
  corrupt negative coordinate becomes 0. Flickr-SoundNet: each annotator box ``int(224 * v / 256)``
  (``utils.py:67``) is added, the sum halved and capped at 1 (``utils.py:69-75``): one annotator
  gives 0.5, two or more give 1.
* **Prediction** (:func:`prediction_map`): the heatmap resized to 224 x 224 bilinearly
  (``test.py:80``, ``cv2.INTER_LINEAR``; here ``torch`` bilinear with half-pixel centres, no
  antialiasing), min-max normalised (``utils.py:46-52``; a constant map stays constant, and
  then predicts nothing), and binarised: ``"median"`` (the reference) keeps the pixels strictly
  above the value at sorted index ``224 * 224 // 2`` (``test.py:84-86``), so ties at the median
  are dropped; a number ``t`` (e.g. 0.5) keeps the pixels ``>= t`` (the ``>=`` of
  ``utils.py:21``); ``"given"`` takes an already binary 224 x 224 map (the controls).
* **Per sample** (:func:`ciou`): ``sum(pred * gt) / (sum(gt) + sum(pred * [gt == 0]))``
  (``utils.py:22``). With an empty ground truth and an empty prediction this is 0 / 0: the
  reference gets NaN, which fails every ``>= t`` test; it is kept as NaN, counted as
  ``undefined``, and counts as 0 in the mean.
* **Reported** (:func:`summarize`): ``cIoU@0.5`` = the fraction of samples with cIoU >= 0.5 (what
  the papers print as "cIoU", later also "AP50"; ``test.py:98``), ``AUC`` = the trapezoid area
  under the fraction of samples with cIoU >= t for t = 0.05 * i, i = 0..20 (``test.py:91-97``,
  ``sklearn.metrics.auc``), and ``mean_cIoU`` = the plain mean of the per-sample values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import Metric

#: The evaluation size of the reference (``test.py:25,80``).
GT_SIZE = 224
#: The thresholds of the success curve, exactly as the reference writes them (``test.py:92-96``).
CURVE_T = tuple(0.05 * i for i in range(21))
#: The threshold modes :func:`prediction_map` accepts besides a number.
THRESHOLD_MODES = ("median", "given")


def vggss_gt_map(boxes: Sequence[Sequence[float]], size: int = GT_SIZE) -> np.ndarray:
    """The VGG-SS ground truth: 1 inside any box (normalised xyxy, clamped at 0), else 0."""
    gt = np.zeros((size, size), dtype=np.float64)
    for b in boxes:
        xmin, ymin, xmax, ymax = (int(size * max(v, 0)) for v in b)
        gt[ymin:ymax, xmin:xmax] = 1
    return gt


def flickr_gt_map(boxes: Sequence[Sequence[int]], size: int = GT_SIZE, grid: int = 256) -> np.ndarray:
    """The Flickr-SoundNet consensus ground truth: annotator boxes (xyxy on the 256 grid) summed,
    halved, capped at 1."""
    gt = np.zeros((size, size), dtype=np.float64)
    for b in boxes:
        xmin, ymin, xmax, ymax = (int(size * int(v) / grid) for v in b)
        gt[ymin:ymax, xmin:xmax] += 1
    gt /= 2
    gt[gt > 1] = 1
    return gt


def gt_map(dataset: str, boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """:func:`vggss_gt_map` or :func:`flickr_gt_map` by dataset name."""
    if dataset == "vggss":
        return vggss_gt_map(boxes)
    if dataset == "flickr":
        return flickr_gt_map(boxes)
    raise ValueError(f"unknown localisation dataset {dataset!r} (vggss or flickr)")


def check_threshold(threshold: str | float) -> str | float:
    """``"median"``, ``"given"`` or a number in [0, 1]; ValueError otherwise."""
    if isinstance(threshold, str):
        if threshold in THRESHOLD_MODES:
            return threshold
        try:
            threshold = float(threshold)
        except ValueError:
            raise ValueError(f"threshold must be 'median' or a number in [0, 1], got {threshold!r}") from None
    t = float(threshold)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"threshold must be 'median' or a number in [0, 1], got {t}")
    return t


def normalized_heatmap(heatmap: torch.Tensor | np.ndarray, size: int = GT_SIZE) -> torch.Tensor:
    """``heatmap`` [H, W] resized to ``size`` x ``size`` (bilinear, float32) and min-max normalised."""
    x = torch.as_tensor(np.asarray(heatmap) if not torch.is_tensor(heatmap) else heatmap)
    x = x.detach().to("cpu", torch.float32)
    if x.ndim != 2:
        raise ValueError(f"a heatmap is [H, W], got shape {tuple(x.shape)}")
    if tuple(x.shape) != (size, size):
        x = F.interpolate(x[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else x


def prediction_map(heatmap: torch.Tensor | np.ndarray, threshold: str | float = "median") -> torch.Tensor:
    """The binary 224 x 224 prediction (float64 0/1) of a heatmap (see the module docstring)."""
    threshold = check_threshold(threshold)
    if threshold == "given":
        pred = torch.as_tensor(np.asarray(heatmap) if not torch.is_tensor(heatmap) else heatmap).cpu()
        if tuple(pred.shape) != (GT_SIZE, GT_SIZE):
            raise ValueError(f"a given prediction is {GT_SIZE} x {GT_SIZE}, got {tuple(pred.shape)}")
        return (pred.to(torch.float64) >= 0.5).to(torch.float64)
    x = normalized_heatmap(heatmap)
    if threshold == "median":
        if not bool((x.max() > x.min())):
            return torch.zeros(x.shape, dtype=torch.float64)  # the reference: 1 + h > 1 + h nowhere
        t = torch.sort(x.flatten()).values[x.numel() // 2]
        return (x > t).to(torch.float64)
    if not bool((x.max() > x.min())):
        return torch.zeros(x.shape, dtype=torch.float64)
    return (x >= threshold).to(torch.float64)


def ciou(pred: torch.Tensor | np.ndarray, gt: torch.Tensor | np.ndarray) -> float:
    """Consensus IoU of a binary prediction and a (possibly 0.5-valued) ground truth; NaN for 0 / 0."""
    p = torch.as_tensor(np.asarray(pred) if not torch.is_tensor(pred) else pred, dtype=torch.float64)
    g = torch.as_tensor(np.asarray(gt) if not torch.is_tensor(gt) else gt, dtype=torch.float64)
    inter = float((p * g).sum())
    denom = float(g.sum() + (p * (g == 0)).sum())
    return inter / denom if denom > 0 else float("nan")


def summarize(values: Sequence[float] | np.ndarray | torch.Tensor) -> dict:
    """``cIoU@0.5``, ``AUC`` and ``mean_cIoU`` of per-sample cIoU values (NaN = undefined, fails
    every threshold), with the success curve (fraction >= t for each t of :data:`CURVE_T`)."""
    v = np.asarray(torch.as_tensor(values).double().cpu() if torch.is_tensor(values) else values, dtype=np.float64)
    n = int(v.size)
    if n == 0:
        raise ValueError("no samples to summarise")
    curve = [float(np.sum(v >= t) / n) for t in CURVE_T]
    auc = sum((CURVE_T[i + 1] - CURVE_T[i]) * (curve[i] + curve[i + 1]) / 2 for i in range(len(CURVE_T) - 1))
    return {
        "cIoU@0.5": float(np.sum(v >= 0.5) / n),
        "AUC": float(auc),
        "mean_cIoU": float(np.nan_to_num(v, nan=0.0).mean()),
        "samples": n,
        "undefined": int(np.isnan(v).sum()),
        "curve_t": [float(t) for t in CURVE_T],
        "curve": curve,
    }


class LocalizationMetric(Metric):
    """The VGG-SS / Flickr-SoundNet localisation metric (module docstring): ``update(heatmaps,
    gt_maps)`` with heatmaps [H, W] of any size (one per sample, or a [B, H, W] tensor) and 224 x 224
    ground-truth maps; ``compute()`` returns :func:`summarize` of the per-sample cIoU values plus
    the threshold used. ``per_sample()`` gives the values themselves."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, threshold: str | float = "median", **kwargs):
        super().__init__(**kwargs)
        self.threshold = check_threshold(threshold)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def update(self, heatmaps: Sequence[torch.Tensor | np.ndarray] | torch.Tensor,
               gt_maps: Sequence[torch.Tensor | np.ndarray] | torch.Tensor) -> None:
        if len(heatmaps) != len(gt_maps):
            raise ValueError(f"{len(heatmaps)} heatmaps but {len(gt_maps)} ground-truth maps")
        for h, g in zip(heatmaps, gt_maps):
            g = torch.as_tensor(np.asarray(g) if not torch.is_tensor(g) else g, dtype=torch.float64)
            if tuple(g.shape) != (GT_SIZE, GT_SIZE):
                raise ValueError(f"a ground-truth map is {GT_SIZE} x {GT_SIZE}, got {tuple(g.shape)}")
            value = ciou(prediction_map(h, self.threshold), g)
            self.values.append(torch.tensor([value], dtype=torch.float64, device=self.device))

    def per_sample(self) -> torch.Tensor:
        if not self.values:
            return torch.zeros(0, dtype=torch.float64)
        vals = self.values if isinstance(self.values, list) else [self.values]
        return torch.cat([v.reshape(-1) for v in vals]).double().cpu()

    def compute(self) -> dict:
        out = summarize(self.per_sample())
        out["threshold"] = self.threshold
        return out


__all__ = ["CURVE_T", "GT_SIZE", "LocalizationMetric", "THRESHOLD_MODES", "check_threshold", "ciou",
           "flickr_gt_map", "gt_map", "normalized_heatmap", "prediction_map", "summarize", "vggss_gt_map"]
