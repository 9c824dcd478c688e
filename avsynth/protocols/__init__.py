"""Benchmark protocols (``avsynth bench``): a checkpoint on AVSBench (zero-shot, few-shot), on
AVS-V3 (unseen classes, k-shot) and on a shard directory's synthetic test split. Above training:
few-shot fine-tuning goes through the trainer.

The evaluation path is the inference path: frames go through the model's own ``preprocess``
(resize, SAM normalisation, padding), audio through the config's frozen VGGish (one 128-d
embedding per 1-second window, frame i <-> second i, as the AVSBench loaders cut them; a whole
clip for a shard row), logits through the model's ``postprocess`` back to the ground truth's
resolution (224 x 224 by default, the official evaluation size) — all in
:class:`avsynth.modeling.predictor.AVPredictor` — and the scores through
:class:`avsynth.evaluation.metrics.AVSBenchMetric` with the F-score grouping named in every result
(:func:`avsynth.evaluation.evaluate.evaluate`).

Modules: ``results`` (:class:`EvalResult`, :class:`VideoExample`, :class:`BenchError`),
``common`` (options, the checkpoint's model and config, fine-tuning through the trainer),
``zero_shot``, ``few_shot``, ``avs_v3`` (split selection and protocol), ``synthetic``, ``bench``
(:class:`BenchConfig`, :func:`run_bench`: the command) and ``report`` (what it writes).
"""

from avsynth.protocols.avs_v3 import AVSV3Selection, UidListSource, avs_v3, select_avs_v3
from avsynth.protocols.bench import (
    BenchConfig,
    fingerprint,
    resolve_avsbench,
    resolve_config,
    run_bench,
    video_examples,
)
from avsynth.protocols.common import (
    BENCH_SUBSETS,
    EvalOptions,
    FineTuneOptions,
    checkpoint_config,
    evaluate_avsbench,
    fine_tune,
    load_model,
)
from avsynth.protocols.few_shot import few_shot
from avsynth.protocols.results import BenchError, EvalResult, VideoExample
from avsynth.protocols.synthetic import synthetic_test
from avsynth.protocols.zero_shot import zero_shot

__all__ = [
    "BENCH_SUBSETS",
    "AVSV3Selection",
    "BenchConfig",
    "BenchError",
    "EvalOptions",
    "EvalResult",
    "FineTuneOptions",
    "UidListSource",
    "VideoExample",
    "avs_v3",
    "checkpoint_config",
    "evaluate_avsbench",
    "few_shot",
    "fine_tune",
    "fingerprint",
    "load_model",
    "resolve_avsbench",
    "resolve_config",
    "run_bench",
    "select_avs_v3",
    "synthetic_test",
    "video_examples",
    "zero_shot",
]
