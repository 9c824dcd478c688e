"""What the benchmark protocols produce: :class:`EvalResult` (one evaluation's figures),
:class:`VideoExample` (a video re-predicted for the report's overlays) and :class:`BenchError`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from avsynth.evaluation.evaluate import EvaluationError


class BenchError(EvaluationError):
    """A benchmark cannot run (bad options, missing checkpoint, data that does not fit)."""


@dataclass
class EvalResult:
    """The figures of one evaluation (see :meth:`AVSBenchMetric.compute`) and what was evaluated.

    ``per_video``: uid, category, frames, miou (mean IoU of the video's scored frames), sorted as
    evaluated. ``frames_per_s``: scored frames per wall-clock second of the whole evaluation
    (loading, audio embedding, inference and metric).
    """

    protocol: str  # zero-shot / few-shot / avs-v3 / synthetic
    dataset: str  # avsbench / avs-v3 / shards
    subset: str  # s4 / ms3 / unseen / 1_shot_test / test ...
    split: str | None
    f_group: str
    miou: float
    fscore: float
    frames: int
    videos: int
    groups: int
    resolution: int | None
    per_category: dict[str, dict] = field(default_factory=dict)
    per_video: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    frames_per_s: float = 0.0
    setting: dict = field(default_factory=dict)  # e.g. {"fraction": 0.5} or {"k_shot": 1}
    notes: list[str] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    variant: str = "avsbench"  # the evaluation variant (avsynth.evaluation.variants)
    controls: dict = field(default_factory=dict)  # audio_zeroed / audio_shuffled / predict_nothing / predict_everything

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        """Short name: ``zero-shot s4/test`` or ``few-shot s4 fraction=0.5``."""
        extra = " ".join(f"{k}={v:g}" for k, v in self.setting.items() if k in ("fraction", "k_shot"))
        where = self.subset + (f"/{self.split}" if self.split else "")
        return " ".join(x for x in (self.protocol, where, extra) if x)


@dataclass
class VideoExample:
    """A video's frames with the predicted and ground-truth masks (for the report's overlays)."""

    uid: str
    category: str
    miou: float
    frames: list[np.ndarray]
    predictions: list[np.ndarray]  # bool H x W (p > 0.5)
    masks: list[np.ndarray]
    scored: list[bool]
    caption: str = ""


def make_result(figures: dict, *, protocol: str, dataset: str, subset: str, split: str | None,
            resolution: int | None, setting: dict | None = None, notes: Sequence[str] = (),
            skipped: dict | None = None, variant: str = "avsbench") -> EvalResult:
    if figures["frames"] == 0:
        raise BenchError(f"{protocol} {subset}: no scored frames to evaluate")
    return EvalResult(
        protocol=protocol, dataset=dataset, subset=subset, split=split, f_group=figures["f_group"],
        miou=float(figures["miou"]), fscore=float(figures["fscore"]), frames=int(figures["frames"]),
        videos=int(figures["videos"]), groups=int(figures["groups"]), resolution=resolution,
        per_category=figures.get("per_category", {}), per_video=figures["per_video"],
        seconds=float(figures["seconds"]), frames_per_s=float(figures["frames_per_s"]),
        setting=dict(setting or {}), notes=list(notes), skipped=dict(skipped or {}),
        variant=figures.get("variant", variant), controls=dict(figures.get("controls", {})),
    )


__all__ = ["BenchError", "EvalResult", "VideoExample", "make_result"]
