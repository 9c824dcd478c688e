"""Named evaluation variants: how each paper's code scores binary AVS, so a figure can be
computed (and reported) the way the paper it is compared with computed it.

* ``avsbench`` (default): the official AVSBench test (OpenNLPLab/AVSBench ``avs_scripts/avs_s4/
  test.py`` with ``utils/utility.py``; the released ``test.sh`` passes ``--test_batch_size 4``):
  frames and masks at 224², ``sigmoid > 0.5``, F-score per batch of 4 videos.
* ``sama-avs``: SAMA-AVS's own test (jinxiang-liu/anno-free-AVS ``test_avs.py``): the masks
  NEAREST-resized to the model's input size (1024²) and scored against the 1024² logits, batch
  size 1 (one video per mIoU / F call), ``Eval_Fmeasure`` on the raw logits (its sigmoid is
  commented out in ``utility.py``).
* ``gavs``: GAVS's test (GeWu-Lab/Generalizable-Audio-Visual-Segmentation ``run_v3_x.py`` with
  ``utils/v1m/utility.py``): native frame size, ``sigmoid > 0.4`` for mIoU, F on the sigmoid, one
  video per call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from avsynth.errors import AvsynthError

#: ``resolution`` value meaning "the model's own input size" (1024² for SAM).
MODEL_INPUT = "model"


@dataclass(frozen=True)
class EvalVariant:
    """One paper's scoring. ``resolution``: 224, None (native) or ``"model"`` (the model's input
    side); ``threshold``: sigmoid cut of the mIoU; ``f_group``: ``batch4`` or ``video``;
    ``f_on_logits``: F thresholds on the logits instead of the sigmoid."""

    name: str
    resolution: int | str | None
    threshold: float
    f_group: str
    f_on_logits: bool
    source: str

    def describe(self) -> str:
        res = {None: "native size", MODEL_INPUT: "the model's input size (masks nearest-upsampled)"}.get(
            self.resolution, f"{self.resolution}²")
        f_in = "raw logits" if self.f_on_logits else "sigmoid"
        group = "per batch of 4 videos" if self.f_group == "batch4" else "per video"
        return (f"{self.name}: {res}, mIoU at sigmoid > {self.threshold:g}, F-score on the {f_in} "
                f"{group} ({self.source})")

    def to_dict(self) -> dict:
        return {**asdict(self), "description": self.describe()}


VARIANTS: dict[str, EvalVariant] = {
    "avsbench": EvalVariant("avsbench", 224, 0.5, "batch4", False,
                            "OpenNLPLab/AVSBench avs_scripts/avs_s4/test.py, utils/utility.py"),
    "sama-avs": EvalVariant("sama-avs", MODEL_INPUT, 0.5, "video", True,
                            "jinxiang-liu/anno-free-AVS test_avs.py, utility.py"),
    "gavs": EvalVariant("gavs", None, 0.4, "video", False,
                        "GeWu-Lab/Generalizable-Audio-Visual-Segmentation run_v3_x.py, utils/v1m/utility.py"),
}
DEFAULT_VARIANT = "avsbench"


def get_variant(name: str) -> EvalVariant:
    """The variant called ``name``; an unknown name is an error listing the known ones."""
    if name not in VARIANTS:
        raise AvsynthError(f"--eval-variant must be one of {', '.join(VARIANTS)}, got {name!r}")
    return VARIANTS[name]


__all__ = ["DEFAULT_VARIANT", "MODEL_INPUT", "VARIANTS", "EvalVariant", "get_variant"]
