"""Few-shot: for each share of the AVSBench train videos per class (or k per class), a copy of the
checkpoint fine-tuned through the trainer (model selection on the val split), then evaluated."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from avsynth.modeling.registry import build_vggish_for
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.protocols.common import (
    BENCH_SUBSETS,
    EvalOptions,
    FineTuneOptions,
    check_subset,
    checkpoint_config,
    evaluate_avsbench,
    fine_tune,
    load_model,
    on_cpu,
)
from avsynth.protocols.results import BenchError, EvalResult, make_result
from avsynth.sources.avsbench import AVSBenchSource, avsbench_dataset, select_videos


def few_shot(checkpoint: str | Path, root: str | Path, *, subsets: Sequence[str] = BENCH_SUBSETS,
             fractions: Sequence[float] | None = None, k_shots: Sequence[int] | None = None,
             split: str = "test", out_dir: str | Path, opts: EvalOptions | None = None,
             ft: FineTuneOptions | None = None, config: dict | None = None,
             notes: Sequence[str] = (), vggish: VGGishEmbedder | None = None) -> list[EvalResult]:
    """For each subset and each fraction (or k), fine-tune the checkpoint on that share of the
    AVSBench train videos (per class, seeded; validation on the val split) and evaluate the best
    epoch on ``split``. Runs live in ``out_dir/finetune/{subset}-{fraction|k}{value}``."""
    if (fractions is None) == (k_shots is None):
        raise BenchError("few-shot needs either fractions (--few-shot) or k values (--few-shot-k)")
    opts, ft = opts or EvalOptions(), ft or FineTuneOptions()
    for f in fractions or ():
        if not 0 < f <= 1:
            raise BenchError(f"--few-shot fractions must be in (0, 1], got {f}")
    for k in k_shots or ():
        if k < 1:
            raise BenchError(f"--few-shot-k values must be >= 1, got {k}")
    config = config or checkpoint_config(checkpoint, ft.sam_checkpoint, ft.vggish_checkpoint)
    vggish = vggish or build_vggish_for(config)
    settings = [("fraction", float(f)) for f in fractions or ()] + [("k_shot", int(k)) for k in k_shots or ()]
    out_dir = Path(out_dir)
    results = []
    for subset in subsets:
        check_subset(subset)
        test = avsbench_dataset(root, subset, split, opts.resolution)
        for kind, value in settings:
            source = AVSBenchSource(root=Path(root), subset=subset, **{kind: value})
            run_dir = out_dir / "finetune" / f"{subset}-{kind}{value:g}"
            best, summary = fine_tune(checkpoint, config, source, run_dir, ft, opts.f_group,
                                      out_dir / "cache" / "vggish", cpu=on_cpu(opts))
            model = load_model(best, config)
            figures = evaluate_avsbench(model, vggish, test, opts)
            res = make_result(figures, protocol="few-shot", dataset="avsbench", subset=subset, split=split,
                          resolution=opts.resolution, setting={kind: value}, notes=notes)
            res.setting["fine_tune"] = summary
            results.append(res)
    return results


def identical_settings(root: str | Path, subsets: Sequence[str], fractions: Sequence[float] = (),
                       k_shots: Sequence[int] = (), seed: int = 0) -> list[str]:
    """One warning per subset where two few-shot settings select the same train videos (small
    classes: ``ceil(fraction * n)`` and ``k`` are capped by the class size), e.g. fractions 0.1 and
    0.5 on a tree with 2 videos per class both keep 1 video per class."""
    settings = [("fraction", float(f)) for f in fractions] + [("k_shot", int(k)) for k in k_shots]
    warnings = []
    for subset in subsets:
        check_subset(subset)
        videos = AVSBenchSource(root=Path(root), subset=subset).videos("train")
        chosen: dict[tuple[str, ...], list[str]] = {}
        for kind, value in settings:
            uids = tuple(v.uid for v in select_videos(videos, **{kind: value}, seed=seed))
            chosen.setdefault(uids, []).append(f"{'fraction' if kind == 'fraction' else 'k'}={value:g}")
        for uids, names in chosen.items():
            if len(names) > 1:
                warnings.append(f"{subset}: few-shot settings {', '.join(names)} select the same "
                                f"{len(uids)} train videos (the classes are too small to tell them "
                                "apart): their results differ only by fine-tuning noise")
    return warnings


__all__ = ["few_shot", "identical_settings"]
