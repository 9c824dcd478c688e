"""Plot the paired comparison of ``bench_mixing.py`` runs: single-source vs mix + negatives, per seed.

Reads the JSON lines of one or more ``bench_mixing.py`` invocations (``pretrained_on_*`` figures),
keeps the models of one mixed build (``--build``, e.g. ``k1w1_2w3+neg0.15``) and the single-source
ones with the same audio standardisation, groups them by recipe (training samples, rounded to the
thousand) and training seed, and draws one panel per figure — larger MS3 split mIoU and F, the
off-screen grid's and the held-out rows' false-positive rates — with a line from each seed's
single-source model to its mix + negatives model. Prints one JSON line per recipe: the means and
how many seeds improve on each figure.

Usage: ``python benchmark/plot_mixing.py RUNS.jsonl [...] --build k1w1_2w3+neg0.15 --out FILE.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: (key, panel title, True when higher is better), two rows: the original small sets, the larger ones
PANELS = (("ms3_zero_shot_miou", "MS3 zero-shot mIoU (10 test videos)", True),
          ("ms3_zero_shot_fscore", "MS3 zero-shot F (10 test videos)", True),
          ("false_positive_rate", "off-screen FPR, any pixel (45 held-out rows)", False),
          ("ms3_large_zero_shot_miou", "MS3 zero-shot mIoU (40 test videos)", True),
          ("ms3_large_zero_shot_fscore", "MS3 zero-shot F (40 test videos)", True),
          ("grid_false_positive_rate", "off-screen FPR, any pixel (grid, 150 rows)", False))


def load(paths: list[Path], build: str) -> dict[tuple[int, int], dict[str, dict]]:
    """{(recipe samples in thousands, seed): {"single" | "mix": figures}} of the matching models."""
    out: dict[tuple[int, int], dict[str, dict]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            if not line.startswith("{"):
                continue
            d = json.loads(line)
            name = d.get("figure", "")
            kind = {"pretrained_on_single": "single", f"pretrained_on_{build}": "mix"}.get(name)
            if kind is None or "ms3_large_zero_shot_miou" not in d:
                continue
            key = (round(d["train_samples"] / 1000), d["train_seed"])
            out.setdefault(key, {})[kind] = d
    return {k: v for k, v in out.items() if len(v) == 2}


def summarise(pairs: dict[tuple[int, int], dict[str, dict]]) -> list[dict]:
    rows = []
    for recipe in sorted({r for r, _ in pairs}):
        seeds = sorted(s for r, s in pairs if r == recipe)
        row: dict = {"figure": "mixing_claim", "train_samples_k": recipe, "seeds": seeds}
        for key, _, higher in PANELS:
            single = [pairs[recipe, s]["single"][key] for s in seeds]
            mix = [pairs[recipe, s]["mix"][key] for s in seeds]
            better = sum((m > a) if higher else (m < a) for a, m in zip(single, mix))
            row[key] = {"single_mean": round(sum(single) / len(seeds), 4),
                        "mix_mean": round(sum(mix) / len(seeds), 4), "seeds_better": better}
        rows.append(row)
    return rows


def plot(pairs: dict[tuple[int, int], dict[str, dict]], build: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = sorted({r for r, _ in pairs})
    fig, axes = plt.subplots(2, 3, figsize=(11.5, 6.6), constrained_layout=True)
    colors = plt.get_cmap("tab10")
    for ax, (key, title, higher) in zip(axes.flat, PANELS):
        for i, recipe in enumerate(recipes):
            x0, x1 = 3 * i, 3 * i + 1
            for seed in sorted(s for r, s in pairs if r == recipe):
                a, m = pairs[recipe, seed]["single"][key], pairs[recipe, seed]["mix"][key]
                good = (m > a) if higher else (m < a)
                ax.plot([x0, x1], [a, m], marker="o", color=colors(seed % 10), alpha=0.85, lw=1.5, ms=4,
                        ls="-" if good else "--")
        ax.set_xticks([x for i in range(len(recipes)) for x in (3 * i, 3 * i + 1)])
        ax.set_xticklabels([lab for r in recipes for lab in (f"single\n~{r}k", f"mix+neg\n~{r}k")], fontsize=8)
        ax.set_title(title + (" ↑" if higher else " ↓"), fontsize=8.5)
        ax.grid(axis="y", alpha=0.3)
        ax.set_xlim(-0.6, 3 * len(recipes) - 1.4)
    seeds = sorted({s for _, s in pairs})
    handles = [plt.Line2D([], [], color=colors(s % 10), marker="o", label=f"seed {s}") for s in seeds]
    handles.append(plt.Line2D([], [], color="grey", ls="--", label="mix+neg worse"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    fig.suptitle(f"tiny SAMA-AVS (audio standardised) pre-trained on single-source rows vs {build} (same samples seen; "
                 "x: training samples)", fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="JSON-lines output of bench_mixing.py")
    ap.add_argument("--build", default="k1w1_2w3+neg0.15", help="the mixed build's name in the figures")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/mixing-claim.png"))
    args = ap.parse_args(argv)
    for path in args.runs:
        if not path.is_file():
            print(f"{path}: no such file (give the JSON-lines output of bench_mixing.py)", file=sys.stderr)
            return 2
    pairs = load(args.runs, args.build)
    if not pairs:
        print(f"no single / {args.build} pairs with the larger MS3 figures in {', '.join(map(str, args.runs))}",
              file=sys.stderr)
        return 2
    for row in summarise(pairs):
        print(json.dumps(row), flush=True)
    plot(pairs, args.build, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
