"""Training: SAMA-AVS / AP-SAM / GAVS on shards (pre-training) and AVSBench (fine-tuning).

``train(TrainConfig(...)) -> TrainResult`` is the entry point (``avsynth train`` on the command
line); see :mod:`avsynth.training.trainer`. Modules: ``data`` (samples and datasets),
``embeddings`` (cached frozen-VGGish clip embeddings), ``recipe`` (optimizer and LR schedule),
``validation`` (the predictor + AVSBench metric over all ranks), ``state`` (resumable checkpoints), ``runlog``
(JSON lines, TensorBoard, progress bar), ``baselines`` (audio-blind reference predictions).
The losses are the models' own (:mod:`avsynth.modeling.losses`, ``model.loss``).
"""

from avsynth.training.trainer import TrainConfig, TrainError, TrainResult, train
from avsynth.training.validation import evaluate_dataset

__all__ = ["TrainConfig", "TrainError", "TrainResult", "evaluate_dataset", "train"]
