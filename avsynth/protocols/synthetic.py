"""The synthetic protocol: a checkpoint on a shard directory's test split (each row a video)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from avsynth.evaluation.evaluate import evaluate, shard_samples
from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.registry import build_vggish_for
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.protocols.common import EvalOptions, checkpoint_config, load_model
from avsynth.protocols.results import EvalResult, make_result


def synthetic_test(checkpoint: str | Path, shard_dir: str | Path, *, split: str = "test",
                   opts: EvalOptions | None = None, config: dict | None = None,
                   limit: int | None = None, notes: Sequence[str] = (), model: AVSegmenter | None = None,
                   vggish: VGGishEmbedder | None = None) -> EvalResult:
    """The checkpoint on a shard directory's ``split`` (native resolution; a row is a video)."""
    opts = opts or EvalOptions()
    config = config or checkpoint_config(checkpoint)
    model = model or load_model(checkpoint, config)
    vggish = vggish or build_vggish_for(config)
    figures = evaluate(model, shard_samples(shard_dir, split, vggish, limit),
                       f_group=opts.f_group, batch_frames=opts.batch_frames, device=opts.device)
    return make_result(figures, protocol="synthetic", dataset="shards", subset=str(shard_dir), split=split,
                   resolution=None, notes=notes)


__all__ = ["synthetic_test"]
