"""The training losses of the three papers, on low-resolution mask logits.

``gt`` masks are {0, 1} floats [B, 1, H, W]; if their size differs from the logits they are resized
(nearest) to the logits' size.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def match_size(gt: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``gt`` as float [B, 1, h, w] at the logits' resolution (nearest resize when needed)."""
    g = gt.float()
    if g.dim() == 3:
        g = g.unsqueeze(1)
    if g.shape[-2:] != logits.shape[-2:]:
        g = F.interpolate(g, size=logits.shape[-2:], mode="nearest")
    return g


def bce_loss(logits: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy with logits."""
    return F.binary_cross_entropy_with_logits(logits, match_size(gt, logits))


def soft_iou_loss(logits: torch.Tensor, gt: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``1 - (sum p g + eps) / (sum p + g - p g + eps)`` per sample, averaged; p = sigmoid(logits)."""
    g = match_size(gt, logits)
    p = torch.sigmoid(logits)
    inter = (p * g).flatten(1).sum(1)
    union = (p + g - p * g).flatten(1).sum(1)
    return (1.0 - (inter + eps) / (union + eps)).mean()


def bce_iou_loss(logits: torch.Tensor, gt: torch.Tensor, bce_weight: float = 1.0, iou_weight: float = 1.0,
                 iou_eps: float = 1.0) -> torch.Tensor:
    """SAMA-AVS / AP-SAM loss: BCE + soft IoU, 1:1 by default (``iou_eps`` 0: SAMA-AVS's code)."""
    return bce_weight * bce_loss(logits, gt) + iou_weight * soft_iou_loss(logits, gt, iou_eps)


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Low-res logits [B, 1, h, w] bilinearly upsampled (align_corners=False) to ``size``, as SAM's
    ``postprocess_masks`` does before SAMA-AVS's loss."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


def masked_average(features: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] features averaged under each sample's mask (resized to h, w) → [B, C].

    A sample with an empty mask averages over the whole image.
    """
    m = F.interpolate(gt.float().reshape(gt.shape[0], 1, *gt.shape[-2:]), size=features.shape[-2:], mode="area")
    empty = m.flatten(1).sum(1) <= 0
    m = torch.where(empty[:, None, None, None], torch.ones_like(m), m)
    return (features * m).flatten(2).sum(-1) / m.flatten(2).sum(-1)


def cosine_triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """``mean relu(margin - cos(a, p) + cos(a, n))`` with negatives = the batch's other positives.

    Sample i's negative is sample (i+1 mod B)'s positive. A batch of one has no negative: 0.
    """
    if anchor.shape[0] < 2:
        return anchor.sum() * 0.0
    negative = positive.roll(1, dims=0)
    pos = F.cosine_similarity(anchor, positive, dim=-1)
    neg = F.cosine_similarity(anchor, negative, dim=-1)
    return F.relu(margin - pos + neg).mean()
