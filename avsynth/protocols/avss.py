"""``avsynth bench --task avss``: a 71-class AVSS checkpoint (Stepping Stones stage 2, or a one-stage
AVSS AAVS) on AVSBench-semantic with the official metric, both frame protocols, with and without
the background.

* ``official``: the AVSBench AVSS test loader's rule: v1s / v1m videos padded to 10 frames with
  black frames and background masks, every frame scored;
* ``stepping_stones``: the Stepping Stones code's rule: the annotated frames only (5 for v1s / v1m).

Each gives ``miou`` / ``fscore`` over the 71 classes (fractions 0-1 in ``avss_results.json``, percent in
``avss_results.md`` and on the console), ``*_no_bg`` (without class 0: the Stepping
Stones code's ``[1:]`` slice) and ``*_official_no_bg`` (the AVSBench code's ``[:-1]`` slice).
A Stepping Stones model reads its stage-1 masks from ``stage1_masks`` (PNGs in the official layout);
with ``stage1_checkpoint`` the missing ones are predicted first (once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from avsynth.io import atomic_write_text
from avsynth.modeling.predictor import resolve_device
from avsynth.modeling.registry import build_vggish_for
from avsynth.protocols.common import checkpoint_config, load_model
from avsynth.protocols.results import BenchError
from avsynth.sources.avsbench import AVSBenchSource
from avsynth.training.avss import evaluate_avss, load_avss_video, write_stage1_masks

PROTOCOLS = {"official": 10, "stepping_stones": None}
#: The scores of one protocol, in the report's column order (fractions 0-1 in the JSON).
SCORES = ("miou", "fscore", "miou_no_bg", "fscore_no_bg", "miou_official_no_bg")


def percent(fraction: float) -> str:
    """A 0-1 score as the percent a person reads (two decimals, no sign): 0.12345 -> "12.35"."""
    return f"{100 * fraction:.2f}"


def console_line(name: str, r: dict) -> str:
    """The one-line console summary of protocol ``name`` (scores in percent)."""
    return (f"{name}: mIoU {percent(r['miou'])}% F {percent(r['fscore'])}% (no background: mIoU "
            f"{percent(r['miou_no_bg'])}%); {r['frames']} frames")


@dataclass
class AVSSBenchConfig:
    checkpoint: Path
    avsbench: Path
    out: Path
    stage1_masks: Path | None = None
    stage1_checkpoint: Path | None = None
    split: str = "test"
    device: str | None = None
    vggish_checkpoint: Path | None = None


def run_avss_bench(cfg: AVSSBenchConfig) -> dict:
    """Evaluate (see the module docstring); writes ``OUT/avss_results.json`` and ``avss_results.md``."""
    config = checkpoint_config(cfg.checkpoint, vggish_checkpoint=cfg.vggish_checkpoint)
    if config["family"] not in ("aavs", "stepping_stones"):
        raise BenchError(f"{cfg.checkpoint}: --task avss takes an AAVS / Stepping Stones checkpoint, "
                         f"not a {config['family']} one")
    device = resolve_device(cfg.device)
    model = load_model(cfg.checkpoint, config, device)
    if model.num_labels < 3:
        raise BenchError(f"{cfg.checkpoint}: a binary model ({model.num_labels} labels); --task avss needs the "
                         "71-label AVSS model (stepping-stones-swin-b)")
    stepping = config["family"] == "stepping_stones"
    if stepping and cfg.stage1_masks is None:
        raise BenchError("a Stepping Stones checkpoint needs --stage1-masks (and --stage1-checkpoint to "
                         "write the missing ones)")
    videos = AVSBenchSource(Path(cfg.avsbench), subset="avss").videos(cfg.split)
    if not videos:
        raise BenchError(f"{cfg.avsbench}: no AVSS videos in split {cfg.split!r}")
    written = None
    if stepping and cfg.stage1_checkpoint is not None:
        written = write_stage1_masks(cfg.stage1_checkpoint, videos, cfg.stage1_masks, device=str(device))
    vggish = build_vggish_for(config)
    data = [load_avss_video(v, vggish, train=False) for v in videos]
    results = {name: evaluate_avss(model, data, cfg.stage1_masks if stepping else None, pad_to=pad, device=device)
               for name, pad in PROTOCOLS.items()}
    report = {"checkpoint": str(cfg.checkpoint), "model": config["name"], "split": cfg.split,
              "videos": len(videos), "stage1_masks": None if cfg.stage1_masks is None else str(cfg.stage1_masks),
              "stage1_masks_written": written, "protocols": results}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "avss_results.json", json.dumps(report, indent=2) + "\n")
    lines = [f"# AVSS: {config['name']} on AVSBench-semantic {cfg.split} ({len(videos)} videos)", "",
             "| protocol | frames | mIoU (%) | F (%) | mIoU no bg ([1:]) (%) | F no bg ([1:]) (%) "
             "| mIoU official no bg ([:-1]) (%) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['frames']} | " + " | ".join(percent(r[k]) for k in SCORES) + " |")
    lines += ["", "mIoU and F in percent; `avss_results.json` keeps them as fractions (0-1).",
              "official: v1s / v1m padded to 10 frames (AVSBench AVSS test loader); stepping_stones: the "
              "annotated frames only (the Stepping Stones code)."]
    atomic_write_text(out / "avss_results.md", "\n".join(lines) + "\n")
    return report


__all__ = ["AVSSBenchConfig", "PROTOCOLS", "SCORES", "console_line", "percent", "run_avss_bench"]
