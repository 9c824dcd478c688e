"""Zero-shot: the checkpoint as given, evaluated on AVSBench S4 / MS3 (``split``, default test)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.registry import build_vggish_for
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.protocols.common import (
    BENCH_SUBSETS,
    EvalOptions,
    check_subset,
    checkpoint_config,
    evaluate_avsbench,
    load_model,
)
from avsynth.protocols.results import BenchError, EvalResult, make_result
from avsynth.sources.avsbench import avsbench_dataset


def zero_shot(checkpoint: str | Path, root: str | Path, *, subsets: Sequence[str] = BENCH_SUBSETS,
              split: str = "test", opts: EvalOptions | None = None, config: dict | None = None,
              notes: Sequence[str] = (), model: AVSegmenter | None = None,
              vggish: VGGishEmbedder | None = None) -> list[EvalResult]:
    """The checkpoint as given, evaluated on each AVSBench ``subset``'s ``split`` (``model`` /
    ``vggish``: the already loaded checkpoint and its VGGish, to avoid reloading them)."""
    opts = opts or EvalOptions()
    config = config or checkpoint_config(checkpoint)
    model = model or load_model(checkpoint, config)
    vggish = vggish or build_vggish_for(config)
    out = []
    for subset in subsets:
        check_subset(subset)
        ds = avsbench_dataset(root, subset, split, opts.resolution)
        if not ds.videos:
            raise BenchError(f"{root}: no {subset} videos in split {split!r}")
        figures = evaluate_avsbench(model, vggish, ds, opts)
        out.append(make_result(figures, protocol="zero-shot", dataset="avsbench", subset=subset, split=split,
                           resolution=opts.resolution, notes=notes))
    return out


__all__ = ["zero_shot"]
