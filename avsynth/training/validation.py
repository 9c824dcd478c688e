"""Validation during training: the predictor's logits scored by the AVSBench metric, over all ranks.

Each rank runs its share of the validation samples through
:meth:`avsynth.modeling.predictor.AVPredictor.predict_batch` (the inference path of the benchmark:
the model's forward, then its own ``postprocess`` back to the ground truth's resolution) and adds
every frame to an :class:`avsynth.evaluation.metrics.AVSBenchMetric` with its video (``group``; a
shard row is its own video), category and index in the split. ``compute()`` gathers the frames of
all ranks (torchmetrics), drops repeats by index, restores the split's order and applies the
grouping rules (``f_group`` "batch4": consecutive groups of 4 videos; "video": one group per
video), so the figures cover the WHOLE validation set whatever the number of processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from avsynth.evaluation.metrics import AVSBenchMetric
from avsynth.modeling.predictor import AVPredictor


def validate(predictor: AVPredictor, batches: Iterable[dict], f_group: str = "batch4",
             audio_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict:
    """The AVSBench figures (:meth:`AVSBenchMetric.compute`, per category included) of the
    collated validation ``batches`` (``image``, ``audio``, ``input_size``, ``original_size``,
    ``mask``, ``group``, ``category``, ``index``); ``audio_fn`` alters the audio first (the
    audio-blind controls)."""
    metric = AVSBenchMetric(f_group=f_group)
    with predictor.evaluating():
        for batch in batches:
            audio = batch["audio"].to(predictor.device)
            if audio_fn is not None:
                audio = audio_fn(audio)
            logits = predictor.predict_batch(batch["image"], audio, batch["input_size"], batch["original_size"])
            for i, lg in enumerate(logits):  # frame by frame: a frame's score never depends on its batch
                metric.update(lg.cpu()[None], batch["mask"][i][None], [str(batch["group"][i])],
                              [str(batch["category"][i])], indexes=[int(batch["index"][i])])
    return metric.compute()


@torch.no_grad()
def evaluate_dataset(model, dataset, f_group: str = "batch4", batch_size: int = 8,
                     device: torch.device | str = "cpu", num_workers: int = 0,
                     audio_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict:
    """Single-process validation of ``model`` on a sample dataset (``shard_frames`` /
    ``AVSBenchFrames`` built with ``keep_mask=True``): the figures the trainer logs."""
    from torch.utils.data import DataLoader

    from avsynth.training.data import collate

    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
    return validate(AVPredictor(model, device=device), loader, f_group, audio_fn)


__all__ = ["evaluate_dataset", "validate"]
