"""The optimisation recipe: defaults from the model config's ``train`` section, CLI overrides on top,
and the cosine learning-rate schedule to a floor.

Paper recipes (DESIGN §5): SAMA-AVS / AP-SAM AdamW 2e-4 → cosine to 1e-7, 80 epochs, batch 4;
GAVS AdamW 1e-3. Keys a config may set: ``optimizer`` (adamw), ``lr``, ``lr_schedule`` (cosine |
constant), ``lr_min``, ``epochs``, ``batch_size``, ``weight_decay``, ``grad_accum``,
``max_grad_norm``, ``unfreeze`` (parameter-name prefixes trained in addition to the model's own
choice, e.g. ``[sam.image_encoder.]`` for a tiny config whose SAM is random, not pre-trained),
``phase2_divisor`` / ``phase2_lr`` (AAVS / Stepping Stones: at epoch ``epochs // phase2_divisor``, as
the official ``idx_ep == epochs // 2`` (AVS) / ``// 3`` (AVSS), the best weights are reloaded, the
Swin adapters join and AdamW restarts at ``phase2_lr``).
``batch_by`` (``frame``: batches of ``batch_size`` frames; ``video``: one AVSBench video's frames
per step, as the public GAVS code trains; shard rows are single images, so shards keep ``frame``).

``best_tie``: which epoch ``best.pt`` (and the AAVS phase-2 reload) keeps when validation mIoUs tie.
``earlier`` (default) is the official rule: the AAVS release saves ``f_miou_best.pth`` only when
``res["miou"] > max_miou`` (strict, ``GeWu-Lab/Stepping-Stones`` de6a17b ``avs/train.py:106``).
``later`` (the tiny AAVS recipe) takes the later of tied
epochs: a random tiny model scores validation mIoU 0.0 for many epochs, and the strict rule then
keeps epoch 1 and reloads its weights at phase 2, throwing phase 1 away. (The release starts from
``max_miou = 0`` and so saves nothing while the mIoU is 0; here the first epoch is always saved.)

Two AVSBench rules of the official AAVS loader / loss (``GeWu-Lab/Stepping-Stones``, ``avs/``), on
for the AAVS configs (AVSBench data only; shard rows are unaffected):

* ``first_frame_per_second``: a train video annotated on frame 0 only (S4 train) gives frame 0 once
  per audio second, (frame 0, VGGish example t) for t = 0..T-1 (``avs/dataset.py``: ``_idx=0`` for
  v1s train in the 5-frame loop, ``feat_aud`` padded to 5 vectors); off, such a video gives
  (frame 0, example 0) once.
* ``zero_loss_empty_videos`` (needs ``batch_by: video``): an MS3 video whose masks are all empty
  scores 0 loss and moves no weight (``avs/utils/utility.py`` ``get_loss`` returns a fresh
  ``torch.tensor(0.0, requires_grad=True)`` for such a v1m video: no gradient reaches the model, the
  gradients stay ``None`` after ``zero_grad()`` (torch >= 2.0), so the clipping and
  ``optimizer.step()`` that follow leave every parameter and AdamW moment as it was).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from avsynth.errors import AvsynthError

#: Used when neither the model config nor the command line sets a value.
FALLBACK = {
    "optimizer": "adamw",
    "lr": 2e-4,
    "lr_schedule": "cosine",
    "lr_min": 1e-7,
    "epochs": 80,
    "batch_size": 4,
    "weight_decay": 0.01,
    "grad_accum": 1,
    "max_grad_norm": None,
    "unfreeze": (),
    "phase2_divisor": None,
    "phase2_lr": None,
    "batch_by": "frame",
    "first_frame_per_second": False,
    "zero_loss_empty_videos": False,
    "best_tie": "earlier",
}
BATCH_BY = ("frame", "video")
BEST_TIE = ("earlier", "later")


@dataclass(frozen=True)
class Recipe:
    """Resolved optimisation settings of one run."""

    optimizer: str
    lr: float
    lr_schedule: str
    lr_min: float
    epochs: int
    batch_size: int
    weight_decay: float
    grad_accum: int
    max_grad_norm: float | None
    unfreeze: tuple[str, ...] = ()  # parameter-name prefixes trained besides the model's own
    phase2_epoch: int | None = None  # AAVS: at epoch (0-based) epochs // phase2_divisor reload the best, start phase 2
    phase2_lr: float | None = None  # ... with this learning rate
    batch_by: str = "frame"  # frame | video (one AVSBench video per step)
    first_frame_per_second: bool = False  # S4 train: frame 0 once per audio second (official AAVS)
    zero_loss_empty_videos: bool = False  # MS3: an all-empty video moves no weight (official AAVS)
    best_tie: str = "earlier"  # an epoch that ties the best validation mIoU: earlier (keep) | later (take it)

    def improves(self, miou: float, best: float) -> bool:
        """Whether an epoch's validation mIoU makes it the new best (``best``: the best so far, -1
        before the first epoch): strictly higher, or equal with ``best_tie: later``."""
        return miou > best or (self.best_tie == "later" and miou == best)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["unfreeze"] = list(self.unfreeze)
        return d


def resolve_recipe(config_train: Mapping[str, Any], overrides: Mapping[str, Any]) -> Recipe:
    """Fallback < model config ``train`` section < non-None ``overrides``."""
    unknown = sorted(set(config_train) - set(FALLBACK))
    if unknown:
        raise AvsynthError(f"model config 'train' has unknown keys {unknown}; known: {sorted(FALLBACK)}")
    merged = {**FALLBACK, **dict(config_train), **{k: v for k, v in overrides.items() if v is not None}}
    r = Recipe(
        optimizer=str(merged["optimizer"]).lower(),
        lr=float(merged["lr"]),
        lr_schedule=str(merged["lr_schedule"]).lower(),
        lr_min=float(merged["lr_min"]),
        epochs=int(merged["epochs"]),
        batch_size=int(merged["batch_size"]),
        weight_decay=float(merged["weight_decay"]),
        grad_accum=int(merged["grad_accum"]),
        max_grad_norm=None if merged["max_grad_norm"] is None else float(merged["max_grad_norm"]),
        unfreeze=_prefixes(merged["unfreeze"]),
        phase2_epoch=None if merged["phase2_divisor"] is None else int(merged["epochs"]) // int(merged["phase2_divisor"]),
        phase2_lr=None if merged["phase2_lr"] is None else float(merged["phase2_lr"]),
        batch_by=str(merged["batch_by"]).lower(),
        first_frame_per_second=_flag(merged, "first_frame_per_second"),
        zero_loss_empty_videos=_flag(merged, "zero_loss_empty_videos"),
        best_tie=str(merged["best_tie"]).lower(),
    )
    if (r.phase2_epoch is None) != (r.phase2_lr is None):
        raise AvsynthError("phase2_divisor and phase2_lr go together (the AAVS two-phase recipe)")
    if r.phase2_epoch is not None and not 0 < r.phase2_epoch < r.epochs:
        raise AvsynthError(f"phase 2 would start at epoch {r.phase2_epoch} (epochs // phase2_divisor) of "
                           f"{r.epochs}: give more epochs")
    if r.optimizer != "adamw":
        raise AvsynthError(f"optimizer {r.optimizer!r} is not supported (adamw)")
    if r.lr_schedule not in ("cosine", "constant"):
        raise AvsynthError(f"lr_schedule must be cosine or constant, got {r.lr_schedule!r}")
    if r.batch_by not in BATCH_BY:
        raise AvsynthError(f"batch_by must be one of {', '.join(BATCH_BY)}, got {r.batch_by!r}")
    if r.best_tie not in BEST_TIE:
        raise AvsynthError(f"best_tie must be one of {', '.join(BEST_TIE)}, got {r.best_tie!r}")
    if r.zero_loss_empty_videos and r.batch_by != "video":
        raise AvsynthError("zero_loss_empty_videos applies to whole videos: it needs batch_by: video")
    if r.epochs < 1 or r.batch_size < 1 or r.grad_accum < 1:
        raise AvsynthError("epochs, batch size and gradient accumulation must be >= 1")
    if not 0 < r.lr or r.lr_min < 0 or r.lr_min > r.lr:
        raise AvsynthError(f"need 0 <= lr_min <= lr and lr > 0 (lr={r.lr}, lr_min={r.lr_min})")
    return r


def _flag(merged: Mapping[str, Any], key: str) -> bool:
    value = merged[key]
    if not isinstance(value, bool):
        raise AvsynthError(f"'{key}' must be true or false, got {value!r}")
    return value


def _prefixes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise AvsynthError(f"'unfreeze' must be a list of parameter-name prefixes, got {value!r}")
    return tuple(value)


class CosineSchedule:
    """Learning rate as a function of training progress p ∈ [0, 1] (fraction of all epochs):
    ``lr_min + (lr - lr_min) * (1 + cos(pi p)) / 2`` (cosine) or ``lr`` (constant).

    Progress is derived from (epoch, step within the epoch), so the schedule needs no total step
    count (the number of batches per epoch may vary slightly with sharding) and resumes exactly.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, recipe: Recipe):
        self.optimizer = optimizer
        self.recipe = recipe
        self.progress = 0.0
        self.set(0.0)

    def lr_at(self, progress: float) -> float:
        r = self.recipe
        if r.lr_schedule == "constant":
            return r.lr
        p = min(max(progress, 0.0), 1.0)
        return r.lr_min + (r.lr - r.lr_min) * 0.5 * (1.0 + math.cos(math.pi * p))

    def set(self, progress: float) -> float:
        """Set every parameter group's learning rate for ``progress``; returns it."""
        self.progress = float(progress)
        lr = self.lr_at(self.progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {"progress": self.progress}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.set(float(state["progress"]))


def build_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW over ``params`` with the recipe's learning rate and weight decay."""
    params = list(params)
    if not params:
        raise AvsynthError("the model has no trainable parameters")
    return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
