"""The synthetic protocol: a checkpoint on a shard directory's test split (each row a video)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dataclasses import replace

import torch

from avsynth.evaluation.controls import run_controls
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
    audio: dict = {}

    def recorded():
        for s in shard_samples(shard_dir, split, vggish, limit):
            audio[s.uid] = s.audio
            yield s

    figures = evaluate(model, recorded(), **opts.metric_kwargs)
    if opts.controls:
        figures["controls"] = run_controls(
            model, lambda: (replace(s, audio=audio[s.uid]) for s in shard_samples(shard_dir, split, _NoAudio(), limit)),
            audio, seed=opts.control_seed, **opts.metric_kwargs)
    return make_result(figures, protocol="synthetic", dataset="shards", subset=str(shard_dir), split=split,
                       resolution=None, notes=notes, variant=opts.variant)  # native rows


class _NoAudio:
    """Stands in for VGGish when the embeddings are already known (the controls' re-reads)."""

    def embed_clip(self, wave, sr):
        return torch.zeros(0)


__all__ = ["synthetic_test"]
