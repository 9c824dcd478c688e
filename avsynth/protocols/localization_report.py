"""What ``avsynth bench --localization`` writes: ``localization.json`` (everything measured, as
fractions 0-1), ``localization.md`` (the table of the model beside the whole-image and centre-box
controls, the protocol named, the published VGG-SS numbers quoted; cIoU@0.5 and mean cIoU in percent,
the AUC 0-1 as the papers give it), ``localization_curve.png`` (% of samples with cIoU >= t against t)
and ``overlays/localization-{best,worst}-{id}.png`` (frame at 224 x 224, heatmap, the binarised
prediction's outline and the ground-truth boxes)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from avsynth.evaluation.localization import GT_SIZE, normalized_heatmap, prediction_map
from avsynth.io import atomic_write_text
from avsynth.shards.overlay import captioned

#: Published zero-shot VGG-SS numbers quoted by GAVS (AAAI'24, Table on VGG-SS): "cIoU" there is
#: cIoU@0.5 in %, AUC as a fraction. AVIN-RN is trained on VGG-SS (in-set), not zero-shot.
PUBLISHED_VGGSS = (
    ("GAVS (AAAI'24)", 41.07, 0.411, "zero-shot"),
    ("AVSegFormer", 38.86, 0.390, "zero-shot"),
    ("AVSBench", 36.86, 0.370, "zero-shot"),
    ("SAM-Fusion", 30.17, 0.302, "zero-shot"),
    ("AVIN-RN", 44.90, 0.436, "trained on VGG-SS"),
)


@dataclass
class Example:
    """One sample drawn in the overlays."""

    which: str  # "best" | "worst"
    item: object  # LocalizationItem
    frame: np.ndarray  # uint8 H x W x 3
    heatmap: np.ndarray  # [H, W] in [0, 1]
    ciou: float
    threshold: str | float


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def localization_markdown(run) -> str:
    thr = "median of the heatmap (reference)" if run.threshold == "median" else f"fixed {run.threshold}"
    lines = [f"# Sound-source localisation: {run.dataset}", ""]
    if run.demo:
        lines += ["**DEMO data** (procedural objects and sounds): not the real benchmark.", ""]
    lines += [
        f"Model `{run.model}` (checkpoint `{run.checkpoint}`, sha256 {run.checkpoint_sha256}), zero-shot. "
        f"Samples: {run.evaluated} evaluated of {run.listed} listed"
        + (f" ({sum(v['count'] for v in run.skipped.values())} without local files or annotation: "
           + ", ".join(f"{k}: {v['count']}" for k, v in run.skipped.items()) + ")" if run.skipped else "")
        + (f"; {len(run.corrupt_entries)} listed entries with a corrupt coordinate ({run.corrupt_coordinates} "
           f"coordinates, clamped with max(x, 0) as the reference does; "
           f"{sum(s['id'] in run.corrupt_entries for s in run.per_sample)} of them evaluated)"
           if run.corrupt_entries else "") + ".",
        "",
        f"Protocol (Chen et al. CVPR'21, hche11/Localizing-Visual-Sounds-the-Hard-Way): heatmap = sigmoid of "
        f"the mask logits, resized to 224x224 (bilinear), min-max normalised, thresholded at the **{thr}**; "
        "ground truth " + ("= union of the boxes" if run.dataset == "vggss" else
                           "= consensus of the annotators' boxes (sum / 2, capped at 1)") + " at 224x224. "
        "Per sample cIoU = sum(pred*gt) / (sum(gt) + sum(pred*[gt=0])). The controls are fixed binary "
        "predictions: every pixel (whole image), the centred square of half the image area (centre box).",
        "",
        "| prediction | cIoU@0.5 (% of samples with cIoU >= 0.5; the papers' \"cIoU\") "
        "| AUC (0-1; area under the share of samples with cIoU >= t, t = 0..1) | mean cIoU (%) | samples "
        "| undefined (0/0) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in run.results.items():
        label = f"**{run.model}**" if name == "model" else f"control: {name}"
        lines.append(f"| {label} | {_pct(r['cIoU@0.5'])} | {r['AUC']:.3f} | {_pct(r['mean_cIoU'])} | "
                     f"{r['samples']} | {r['undefined']} |")
    if run.dataset == "vggss":
        lines += ["", "Published VGG-SS numbers (quoted from GAVS, AAAI'24; other data, other models — for "
                  "reference, not comparable with a demo run):", "",
                  "| model | cIoU@0.5 (%) | AUC (0-1) | setting |", "|---|---|---|---|"]
        lines += [f"| {m} | {c:.2f} | {a:.3f} | {s} |" for m, c, a, s in PUBLISHED_VGGSS]
    lines += ["", "Files: `localization.json` (cIoU@0.5, AUC and cIoU as fractions 0-1), `localization_curve.png`, "
              "`overlays/localization-*.png`.", ""]
    return "\n".join(lines)


def curve_png(run, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    styles = {"model": ("-", "o"), "whole image": ("--", "s"), "centre box": (":", "^")}
    for name, r in run.results.items():
        ls, mk = styles.get(name, ("-", "x"))
        label = f"{run.model if name == 'model' else name} (AUC {r['AUC']:.3f})"
        ax.plot(r["curve_t"], [100 * y for y in r["curve"]], linestyle=ls, marker=mk, markersize=3, label=label)
    ax.axvline(0.5, color="grey", linewidth=0.8)
    ax.set_xlabel("cIoU threshold t")
    ax.set_ylabel("% of samples with cIoU >= t")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 102)
    ax.set_title(f"{run.dataset}{' (DEMO)' if run.demo else ''}: success curve, threshold {run.threshold}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _boxes_224(item) -> list[tuple[float, float, float, float]]:
    if item.dataset == "vggss":
        return [tuple(GT_SIZE * max(v, 0) for v in b) for b in item.boxes]
    return [tuple(GT_SIZE * v / 256 for v in b) for b in item.boxes]


def _heat_rgb(h: np.ndarray) -> np.ndarray:
    """A blue -> red ramp of a [0, 1] map."""
    h = np.clip(h, 0, 1)[..., None]
    lo, hi = np.array([40, 60, 220], np.float32), np.array([240, 40, 30], np.float32)
    return (1 - h) * lo + h * hi


def overlay_image(ex: Example) -> Image.Image:
    """Frame at 224 x 224 | frame + heatmap; both with the prediction's outline (white) and the
    ground-truth boxes (green), captioned."""
    frame = np.asarray(Image.fromarray(ex.frame).resize((GT_SIZE, GT_SIZE), Image.Resampling.BILINEAR),
                       dtype=np.float32)
    heat = normalized_heatmap(ex.heatmap).numpy()
    pred = prediction_map(ex.heatmap, ex.threshold).numpy() > 0
    edge = pred & ~(np.roll(pred, 1, 0) & np.roll(pred, -1, 0) & np.roll(pred, 1, 1) & np.roll(pred, -1, 1))
    panels = []
    for img in (frame, 0.45 * frame + 0.55 * _heat_rgb(heat)):
        img = img.copy()
        img[edge] = 255
        im = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for x0, y0, x1, y1 in _boxes_224(ex.item):
            if x1 > x0 and y1 > y0:
                draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=(60, 230, 60), width=2)
        panels.append(im)
    sheet = Image.new("RGB", (2 * GT_SIZE + 4, GT_SIZE), (20, 20, 20))
    sheet.paste(panels[0], (0, 0))
    sheet.paste(panels[1], (GT_SIZE + 4, 0))
    cat = f" ({ex.item.category})" if ex.item.category else ""
    c = "undefined" if math.isnan(ex.ciou) else f"{_pct(ex.ciou)}%"
    return captioned(sheet, f"{ex.which}: {ex.item.id}{cat} cIoU {c} | white pred, green GT",
                     font_size=12)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def write_localization_report(out_dir: str | Path, run, examples: Sequence[Example]) -> dict[str, Path]:
    """Write the report files; returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    p = out / "localization.json"
    atomic_write_text(p, json.dumps(run.as_dict(), indent=2, default=lambda o: str(o), allow_nan=True) + "\n")
    written["localization.json"] = p
    p = out / "localization.md"
    atomic_write_text(p, localization_markdown(run))
    written["localization.md"] = p
    written["localization_curve.png"] = curve_png(run, out / "localization_curve.png")
    if examples:
        (out / "overlays").mkdir(exist_ok=True)
        for ex in examples:
            p = out / "overlays" / f"localization-{ex.which}-{_safe(ex.item.id)}.png"
            overlay_image(ex).save(p)
            written[f"overlays/{p.name}"] = p
    return written


__all__ = ["Example", "PUBLISHED_VGGSS", "curve_png", "localization_markdown", "overlay_image",
           "write_localization_report"]
