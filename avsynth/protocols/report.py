"""Benchmark reports: what ``avsynth bench`` writes into its output directory.

* ``results.json`` — every figure (format ``avsynth-bench/1``): the run (checkpoint + sha256,
  model, AVSBench root, whether it was the DEMO tree, F-score grouping, resolution) and one entry
  per evaluation (:class:`avsynth.protocols.results.EvalResult`, per-category and per-video
  scores included);
* ``results.md`` — the Markdown tables: mIoU and F-score per subset and protocol, the F grouping
  named, the demo warning when it applies, and the comparison with PUBLISHED numbers, each marked
  "quoted" with its source (or "not quoted" where no number could be sourced);
* ``per_category.csv`` / ``per_category.md`` — per-category mIoU / F-score of every evaluation;
* ``few_shot_curve.png`` — mIoU against the share of train videos (or k shots), the zero-shot
  figure at 0; ``per_category.png`` — per-category mIoU bars; ``overlays/*.png`` — the best and
  worst videos of each zero-shot evaluation (prediction row above the ground-truth row).

mIoU is written as a percentage in the Markdown tables (as papers print it) and as a fraction in
the JSON; the F-score is a fraction everywhere.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from avsynth.io import atomic_open, atomic_write_text
from avsynth.protocols.results import EvalResult, VideoExample
from avsynth.shards.overlay import SheetItem, captioned, contact_sheet

REPORT_FORMAT = "avsynth-bench/1"
#: The one convention for numbers a person reads (tables, console, CSV, captions, plots): mIoU and
#: F-score in percent. JSON files (results.json) keep fractions 0-1, as data for programs.
UNITS = "mIoU and F-score (beta² = 0.3) in percent everywhere (results.json keeps fractions 0-1)"
GREEN = (40, 200, 80)
RED = (230, 40, 40)

F_GROUP_TEXT = {
    "batch4": "batch4 — the official AVSBench test script: F-score per consecutive group of 4 videos, "
              "averaged over groups",
    "video": "video — one F-score group per video (the GAVS / AAVS convention)",
}


# --------------------------------------------------------------------------- published numbers


@dataclass(frozen=True)
class Published:
    """A published result, quoted with its source. ``None`` = not quoted (no sourced number)."""

    method: str
    setting: str
    source: str
    s4_miou: float | None = None  # percent
    s4_f: float | None = None
    ms3_miou: float | None = None
    ms3_f: float | None = None
    note: str = ""


#: Only numbers whose source could be checked are filled in; the rest read "not quoted".
PUBLISHED: tuple[Published, ...] = (
    Published(
        "AVSBench baseline (PVT-v2)", "trained on AVSBench (fully supervised)",
        "Zhou et al., Audio-Visual Segmentation, ECCV 2022 (arXiv 2207.05042), main comparison table",
        s4_miou=78.7, s4_f=0.879, ms3_miou=54.0, ms3_f=0.645,
        note=("official test script (F grouping batch4); values as stated in avsynth's design "
              "reference, the table itself was not re-read when this was written"),
    ),
    Published(
        "SAMA-AVS (ViT-H)", "AVS-Synthetic pre-training, then AVSBench fine-tuning",
        "Liu et al., Annotation-free Audio-Visual Segmentation, WACV 2024 (arXiv 2305.11019), abstract",
        s4_miou=83.17, ms3_miou=66.95,
        note="mIoU from the abstract; the F-scores of its tables are not quoted here",
    ),
    Published(
        "SAMA-AVS (ViT-H)", "AVS-Synthetic only (zero-shot on AVSBench)",
        "Liu et al., WACV 2024 (arXiv 2305.11019)",
        note="zero-shot table not retrievable here: not quoted",
    ),
    Published(
        "GAVS (SAM ViT-B)", "AVSBench / AVS-V3 unseen classes",
        "Wang et al., Prompting Segmentation with Sound Is Generalizable Audio-Visual Source Localizer, "
        "AAAI 2024 (arXiv 2309.07929)",
        note="results are published as table images; not quoted",
    ),
    Published(
        "AAVS", "AVSBench", "Chen et al. (2023/2024)",
        note="no sourced number: not quoted",
    ),
)


# --------------------------------------------------------------------------- the run


@dataclass
class BenchRun:
    """One ``avsynth bench`` invocation: what was evaluated, how, and its results."""

    checkpoint: str
    checkpoint_sha256: str
    model: str
    demo: bool
    avsbench_root: str | None
    f_group: str
    resolution: int | None
    results: list[EvalResult]
    arguments: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tool_version: str = ""
    variant: dict = field(default_factory=dict)  # EvalVariant.to_dict() of the scoring used
    audio_preprocessing: str = ""  # how AVSBench audio was cut per frame
    recipe: dict = field(default_factory=dict)  # the model config's recipe choices

    def to_dict(self) -> dict:
        return {
            "format": REPORT_FORMAT,
            "tool": {"name": "avsynth", "version": self.tool_version},
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
            "model": self.model,
            "demo": self.demo,
            "avsbench_root": self.avsbench_root,
            "f_group": self.f_group,
            "resolution": self.resolution if self.resolution is not None else "native",
            "arguments": self.arguments,
            "evaluation_variant": self.variant,
            "audio_preprocessing": self.audio_preprocessing,
            "recipe": self.recipe,
            "notes": self.notes,
            "results": [r.to_dict() for r in self.results],
        }


# --------------------------------------------------------------------------- Markdown


def _pct(x: float | None) -> str:
    return "not quoted" if x is None else f"{100 * x:.2f}"


def _f(x: float | None) -> str:
    """An F-score (a fraction in the data) shown in percent, like mIoU."""
    return "not quoted" if x is None else f"{100 * x:.2f}"


def _setting(r: EvalResult) -> str:
    parts = [f"{k}={v:g}" for k, v in r.setting.items() if k in ("fraction", "k_shot")]
    if r.setting.get("base") == "seen_train":
        parts.append("after seen-class training")
    return ", ".join(parts) or "–"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def results_markdown(run: BenchRun, plots: Sequence[str] | None = None) -> str:
    """The ``results.md`` text."""
    res = run.resolution if run.resolution is not None else "native"
    lines = ["# avsynth benchmark results", ""]
    if run.demo:
        lines += [("> **DEMO DATA.** These figures come from the generated demo AVSBench tree "
                   "(procedural objects and sounds), not from the real AVSBench release; they test "
                   "the pipeline and say nothing about real-world accuracy."), ""]
    lines += [
        f"- checkpoint: `{run.checkpoint}` (sha256 `{run.checkpoint_sha256}`), model `{run.model}`",
        f"- AVSBench root: `{run.avsbench_root}`" + (" (demo tree)" if run.demo else ""),
        f"- F-score grouping: **{F_GROUP_TEXT[run.f_group]}**",
        f"- evaluation resolution: {res}; {UNITS}",
        f"- evaluation variant: **{run.variant.get('description', run.variant.get('name', 'avsbench'))}**",
        f"- audio preprocessing: {run.audio_preprocessing or 'not recorded'}",
        "- recipe: " + (", ".join(f"{k}={v}" for k, v in run.recipe.items()) or "not recorded"),
        *(f"- {n}" for n in run.notes), "",
        "## Results", "",
    ]
    rows = [[r.protocol, r.subset, r.split or "–", _setting(r), r.videos, r.frames,
             f"{100 * r.miou:.2f}", _f(r.fscore), r.f_group] for r in run.results]
    lines += _table(["protocol", "subset", "split", "setting", "videos", "frames", "mIoU (%)",
                     "F-score (%)", "F grouping"], rows)
    controlled = [r for r in run.results if r.controls]
    if controlled:
        lines += ["", "## Controls", "",
                  ("Each result beside the same model with its audio zeroed and with the audio of another "
                   "video of the split (seeded shuffle), and two model-free baselines; scored identically. "
                   "mIoU (%) / F-score (%)."), ""]
        crow = []
        for r in controlled:
            c = r.controls

            def cell(k: str) -> str:
                return f"{100 * c[k]['miou']:.2f} / {100 * c[k]['fscore']:.2f}" if k in c else "–"

            crow.append([r.label, f"{100 * r.miou:.2f} / {100 * r.fscore:.2f}", cell("audio_zeroed"),
                         cell("audio_shuffled"), cell("predict_nothing"), cell("predict_everything")])
        lines += _table(["evaluation", "model", "audio zeroed", "audio shuffled", "predict nothing",
                         "every foreground pixel"], crow)
    notes = sorted({n for r in run.results for n in r.notes} - set(run.notes))
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    tuned = [r for r in run.results if "fine_tune" in r.setting]
    if tuned:
        lines += ["", "## Fine-tuning runs", ""]
        lines += _table(["evaluation", "epochs", "best epoch", "train frames", "val frames",
                         "best val mIoU (%)", "run"],
                        [[r.label, r.setting["fine_tune"]["epochs"], r.setting["fine_tune"]["best_epoch"],
                          r.setting["fine_tune"]["train_frames"], r.setting["fine_tune"]["val_frames"],
                          f"{100 * r.setting['fine_tune']['best_val_miou']:.2f}",
                          f"`{r.setting['fine_tune']['run_dir']}`"] for r in tuned])
    lines += ["", "## Comparison with published numbers", "",
              "Published rows are **quoted** from the named source (not reproduced here); this run's "
              "rows are measured" + (" on the DEMO tree and are not comparable" if run.demo else "") + ".",
              ""]
    comp = [[p.method, p.setting, "quoted" if _has_numbers(p) else "not quoted", _pct(None if p.s4_miou is None else p.s4_miou / 100),
             _f(p.s4_f), _pct(None if p.ms3_miou is None else p.ms3_miou / 100), _f(p.ms3_f),
             f"{p.source}" + (f"; {p.note}" if p.note else "")] for p in PUBLISHED]
    for label, rs in _own_rows(run.results):
        s4 = rs.get("s4")
        ms3 = rs.get("ms3")
        comp.append([f"this run: {run.model}", label + (" (DEMO tree)" if run.demo else ""), "measured",
                     _pct(s4.miou) if s4 else "–", _f(s4.fscore) if s4 else "–",
                     _pct(ms3.miou) if ms3 else "–", _f(ms3.fscore) if ms3 else "–",
                     f"F grouping {run.f_group}, resolution {res}"])
    lines += _table(["method", "setting", "status", "S4 mIoU (%)", "S4 F (%)", "MS3 mIoU (%)", "MS3 F (%)",
                     "source"], comp)
    shown = [f"`{name}`" for name in plots] if plots is not None else [
        "`few_shot_curve.png`", "`per_category.png`", "`overlays/`"]
    lines += ["", "Per-category figures: `per_category.md` / `per_category.csv`"
              + ("; plots: " + ", ".join(shown) if shown else "") + ".", ""]
    return "\n".join(lines)


def _has_numbers(p: Published) -> bool:
    return any(x is not None for x in (p.s4_miou, p.s4_f, p.ms3_miou, p.ms3_f))


def _own_rows(results: Sequence[EvalResult]) -> list[tuple[str, dict[str, EvalResult]]]:
    """This run's AVSBench results grouped by setting (zero-shot; each few-shot value)."""
    groups: dict[str, dict[str, EvalResult]] = {}
    for r in results:
        if r.dataset != "avsbench":
            continue
        label = r.protocol if r.protocol == "zero-shot" else f"{r.protocol} {_setting(r)}"
        groups.setdefault(label, {})[r.subset] = r
    return list(groups.items())


@functools.lru_cache(maxsize=1)
def _manifest_names_by_avsbench() -> dict[str, tuple[str, ...]]:
    """AVSBench object name → the shipped manifests' category names that map to it (e.g.
    emergency-car ← ambulance, fire_engine, police_car; hen ← chicken; mower ← lawn_mower)."""
    from avsynth.demo import avss_class_for
    from avsynth.manifest import load_manifest, shipped_manifests

    out: dict[str, set[str]] = {}
    for shipped in shipped_manifests():
        for cat in load_manifest(shipped.name):
            # a real AVSBench class, else the hyphenated name (as the demo tree names the object)
            avss = avss_class_for(cat) or cat.name.split("_(")[0].lower().replace("_", "-").replace(" ", "-")
            out.setdefault(avss, set()).add(cat.name)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def manifest_names(category: str) -> str:
    """The manifest category names of an AVSBench (or already manifest) category, "; "-joined;
    a synthetic shard split's categories are manifest names already and come back unchanged."""
    names = _manifest_names_by_avsbench()
    if category in names:
        return "; ".join(names[category])
    return category if any(category in v for v in names.values()) else ""  # a manifest name already


def per_category_rows(results: Sequence[EvalResult]) -> list[dict]:
    """One row per (evaluation, category): videos, frames, mIoU and F-score in percent, and the
    manifest name(s) of the category (AVSBench and avsynth's manifests name objects differently)."""
    rows = []
    for r in results:
        for cat, s in r.per_category.items():
            rows.append({"evaluation": r.label, "protocol": r.protocol, "subset": r.subset,
                         "category": cat, "manifest_category": manifest_names(cat),
                         "videos": s["videos"], "frames": s["frames"],
                         "miou_percent": round(100 * s["miou"], 4),
                         "fscore_percent": round(100 * s["fscore"], 4), "f_group": r.f_group})
    return rows


def per_category_markdown(run: BenchRun) -> str:
    rows = per_category_rows(run.results)
    lines = ["# Per-category results", "",
             (f"F-score grouping inside each category: {F_GROUP_TEXT[run.f_group]} (applied to the "
              "category's own videos in order)."), "",
             (f"Data: {'the DEMO AVSBench tree (generated, not the real benchmark)' if run.demo else 'AVSBench'} "
              f"at `{run.avsbench_root}`; checkpoint `{run.checkpoint}`."), ""]
    lines += ["Category: AVSBench's name; manifest category: the name(s) avsynth's shipped manifests "
              "(and so the shards) give the same object.", ""]
    lines += _table(["evaluation", "category", "manifest category", "videos", "frames", "mIoU (%)",
                     "F-score (%)"],
                    [[r["evaluation"], r["category"], r["manifest_category"] or "–", r["videos"], r["frames"],
                      f"{r['miou_percent']:.2f}", f"{r['fscore_percent']:.2f}"] for r in rows])
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def few_shot_curve(results: Sequence[EvalResult], path: Path, demo: bool = False) -> Path | None:
    """mIoU against the fraction of train videos (or k shots) per subset; zero-shot at 0."""
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in results:
        for kind in ("fraction", "k_shot"):
            if kind in r.setting:
                series.setdefault((r.subset, kind), []).append((float(r.setting[kind]), 100 * r.miou))
    if not series:
        return None
    zero = {r.subset: 100 * r.miou for r in results if r.protocol == "zero-shot"}
    plt = _pyplot()
    kinds = sorted({k for _, k in series})
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for (subset, k), pts in sorted(series.items()):
            if k != kind:
                continue
            if subset in zero and kind == "fraction":
                pts = [(0.0, zero[subset]), *pts]
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=subset)
        ax.set_xlabel("fraction of AVSBench train videos" if kind == "fraction" else "shots per class (k)")
        ax.set_ylabel("mIoU (%)")
        top = max([p[1] for pts in series.values() for p in pts] + list(zero.values()))
        ax.set_ylim(0, min(100.0, 1.15 * top + 1))  # from 0: no zoomed axis
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title(("DEMO tree — " if demo else "") + ("few-shot (fraction)" if kind == "fraction" else "k-shot"))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def per_category_bars(results: Sequence[EvalResult], path: Path, demo: bool = False) -> Path | None:
    """Horizontal per-category mIoU bars, one panel per evaluation that has categories."""
    shown = [r for r in results if r.per_category and r.protocol in ("zero-shot", "avs-v3", "synthetic")]
    shown = shown or [r for r in results if r.per_category]
    if not shown:
        return None
    plt = _pyplot()
    heights = [max(2.0, 0.28 * len(r.per_category) + 1.0) for r in shown]
    fig, axes = plt.subplots(len(shown), 1, figsize=(7, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, r in zip(axes[:, 0], shown):
        cats = sorted(r.per_category, key=lambda c: r.per_category[c]["miou"])
        bars = ax.barh(cats, [100 * r.per_category[c]["miou"] for c in cats], color="#1f77b4")
        ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=2)  # a zero shows "0.0"; no bar = no category
        ax.set_xlim(0, 100)
        ax.set_xlabel("mIoU (%)")
        ax.set_title(("DEMO — " if demo else "") + r.label, fontsize=10)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def overlay_sheet(example: VideoExample, thumb: int = 160) -> Image.Image:
    """Prediction (red) above ground truth (green) for each frame of a video, captioned."""
    n = len(example.frames)
    items = [SheetItem(Image.fromarray(f), p, f"pred {i}", RED)
             for i, (f, p) in enumerate(zip(example.frames, example.predictions))]
    items += [SheetItem(Image.fromarray(f), m if s else None, f"GT {i}" if s else f"{i}: not annotated", GREEN)
              for i, (f, m, s) in enumerate(zip(example.frames, example.masks, example.scored))]
    return captioned(contact_sheet(items, cols=n, thumb=thumb), example.caption, font_size=12)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:80]


# --------------------------------------------------------------------------- writing


def write_report(out_dir: str | Path, run: BenchRun,
                 examples: dict[str, list[VideoExample]] | None = None) -> dict[str, Path]:
    """Write every report file into ``out_dir``; returns name → path of what was written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    path = out / "results.json"
    atomic_write_text(path, json.dumps(run.to_dict(), indent=2, default=_json_default) + "\n")
    written["results.json"] = path
    path = out / "per_category.md"
    atomic_write_text(path, per_category_markdown(run))
    written["per_category.md"] = path
    path = out / "per_category.csv"
    with atomic_open(path, "w") as fh:
        cols = ["evaluation", "protocol", "subset", "category", "manifest_category", "videos", "frames",
                "miou_percent", "fscore_percent", "f_group"]
        w = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(per_category_rows(run.results))
    written["per_category.csv"] = path
    for name, fn in (("few_shot_curve.png", few_shot_curve), ("per_category.png", per_category_bars)):
        p = fn(run.results, out / name, run.demo)
        if p is not None:
            written[name] = p
    for key, exs in (examples or {}).items():
        (out / "overlays").mkdir(exist_ok=True)
        for ex in exs:
            which = ex.caption.split(":", 1)[0]
            p = out / "overlays" / f"{_safe(key)}-{which}-{_safe(ex.uid)}.png"
            overlay_sheet(ex).save(p)
            written[f"overlays/{p.name}"] = p
    plots = [n for n in ("few_shot_curve.png", "per_category.png") if n in written]
    plots += ["overlays/"] if any(n.startswith("overlays/") for n in written) else []
    path = out / "results.md"  # written last: it links only the plots that exist
    atomic_write_text(path, results_markdown(run, plots))
    written["results.md"] = path
    return written


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


__all__ = ["F_GROUP_TEXT", "PUBLISHED", "REPORT_FORMAT", "BenchRun", "Published", "few_shot_curve",
           "overlay_sheet", "per_category_bars", "per_category_markdown", "per_category_rows",
           "results_markdown", "write_report"]
