"""What every benchmark protocol shares: evaluation and fine-tuning options, the checkpoint's
model and config, the AVSBench evaluation of a model, and few-shot fine-tuning through the trainer
(:func:`avsynth.training.trainer.train`, ``init`` = the checkpoint)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from avsynth.errors import AvsynthError
from avsynth.evaluation.controls import run_controls
from avsynth.evaluation.evaluate import avsbench_samples, evaluate
from avsynth.evaluation.metrics import F_GROUPS
from avsynth.evaluation.variants import DEFAULT_VARIANT, MODEL_INPUT, EvalVariant, get_variant
from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.checkpoint import load_checkpoint, read_checkpoint
from avsynth.modeling.predictor import resolve_device
from avsynth.modeling.registry import pretrained_checkpoint, with_weight_paths
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.protocols.results import BenchError
from avsynth.sources.avsbench import OFFICIAL_SIZE, AVSBenchDataset, AVSBenchObjectDataset
from avsynth.training.trainer import TrainConfig, train

#: Binary subsets the AVSBench protocols evaluate.
BENCH_SUBSETS = ("s4", "ms3")


@dataclass
class EvalOptions:
    """How to evaluate: F grouping, frame resolution (224 official; None native), device, batch;
    ``variant``: a paper's scoring (:mod:`avsynth.evaluation.variants`; any but ``avsbench`` sets
    the resolution and F grouping itself); ``controls``: also score the four controls
    (:mod:`avsynth.evaluation.controls`), shuffling audio with ``control_seed``."""

    f_group: str = "batch4"
    resolution: int | None = OFFICIAL_SIZE
    batch_frames: int = 16
    device: str | None = None
    num_workers: int = 0
    variant: str = DEFAULT_VARIANT
    controls: bool = True
    control_seed: int = 0

    @property
    def scoring(self) -> EvalVariant:
        return get_variant(self.variant)

    @property
    def metric_kwargs(self) -> dict:
        """The :func:`~avsynth.evaluation.evaluate.evaluate` keywords of this scoring."""
        v = self.scoring
        return {"f_group": self.f_group, "batch_frames": self.batch_frames, "device": self.device,
                "threshold": v.threshold, "f_on_logits": v.f_on_logits,
                "at_model_input": v.resolution == MODEL_INPUT}

    def __post_init__(self) -> None:
        try:
            v = get_variant(self.variant)
        except AvsynthError as err:
            raise BenchError(str(err)) from None
        if v.name != DEFAULT_VARIANT:
            self.f_group = v.f_group
            self.resolution = None if v.resolution == MODEL_INPUT else v.resolution
        if self.f_group not in F_GROUPS:
            raise BenchError(f"--f-group must be one of {', '.join(F_GROUPS)}, got {self.f_group!r}")
        if self.resolution is not None and self.resolution < 16:
            raise BenchError(f"--resolution must be 'native' or at least 16, got {self.resolution}")


@dataclass
class FineTuneOptions:
    """How few-shot fine-tuning runs (through the trainer): epochs, batch, lr, seed, workers."""

    epochs: int = 10
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    num_workers: int = 0
    sam_checkpoint: Path | None = None
    vggish_checkpoint: Path | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise BenchError(f"--epochs must be at least 1, got {self.epochs}")


def checkpoint_config(checkpoint: str | Path, sam_checkpoint: Path | None = None,
                      vggish_checkpoint: Path | None = None) -> dict:
    """The model config stored in a checkpoint, with local weight paths overridden if given."""
    return with_weight_paths(read_checkpoint(checkpoint)["config"], sam_checkpoint, vggish_checkpoint)


def load_model(checkpoint: str | Path, config: dict, device: torch.device | None = None) -> AVSegmenter:
    """Rebuild a checkpoint's model from ``config`` (the stored config, possibly with local weight
    paths overridden); a partial checkpoint takes its frozen SAM from ``config``'s SAM path. Every
    stored key must fit the model (:func:`avsynth.modeling.checkpoint.load_checkpoint`)."""
    payload = read_checkpoint(checkpoint)
    if payload["trainable_only"] and not pretrained_checkpoint(config):
        raise BenchError(f"{checkpoint}: stores only the trained weights; give the SAM weights it was "
                         "trained from with --sam-checkpoint")
    return load_checkpoint(checkpoint, device=device, config=config, payload=payload)


def evaluate_avsbench(model: AVSegmenter, vggish: VGGishEmbedder,
                      dataset: AVSBenchDataset | AVSBenchObjectDataset,
                      opts: EvalOptions) -> dict:
    """:func:`evaluate` over an AVSBench dataset, with the controls (``figures["controls"]``)
    when ``opts.controls``."""
    audio: dict[str, torch.Tensor] = {}

    def recorded():
        for s in avsbench_samples(dataset, vggish, opts.num_workers):
            audio[s.uid] = s.audio
            yield s

    figures = evaluate(model, recorded(), **opts.metric_kwargs)
    figures["variant"] = opts.variant
    if opts.controls:
        figures["controls"] = run_controls(
            model, lambda: avsbench_samples(dataset, None, opts.num_workers, audio=audio), audio,
            seed=opts.control_seed, **opts.metric_kwargs)
    return figures


def check_subset(subset: str) -> None:
    if subset not in BENCH_SUBSETS:
        raise BenchError(f"--subsets takes {', '.join(BENCH_SUBSETS)}; got {subset!r}")


def on_cpu(opts: EvalOptions) -> bool:
    return resolve_device(opts.device).type == "cpu"


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def fine_tune(checkpoint: str | Path, config: dict, source, run_dir: Path, ft: FineTuneOptions,
              f_group: str, cache_dir: Path | None = None, cpu: bool = False) -> tuple[Path, dict]:
    """Fine-tune a copy of ``checkpoint`` on an AVSBench source through the trainer (on the GPU
    when there is one, unless ``cpu``).

    ``run_dir`` is replaced. Returns (the best checkpoint by validation mIoU, a summary of the run).
    """
    _fresh_dir(run_dir)
    result = train(TrainConfig(
        out=run_dir, model=config, avsbench=source, init=Path(checkpoint), epochs=ft.epochs,
        batch_size=ft.batch_size, lr=ft.lr, seed=ft.seed, num_workers=ft.num_workers,
        progress=False, f_group=f_group, embedding_cache=cache_dir, log_every=1_000_000, cpu=cpu,
    ))
    best = run_dir / "best.pt"
    if not best.is_file():
        raise BenchError(f"fine-tuning in {run_dir} wrote no best.pt")
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    start = next((e for e in log if e.get("event") == "start"), {})
    summary = {"run_dir": str(run_dir), "epochs": ft.epochs, "best_epoch": result.best_epoch,
               "best_val_miou": result.best_miou, "train_frames": start.get("train_rows"),
               "val_frames": start.get("val_frames"), "samples_per_s": result.samples_per_s}
    return best, summary


__all__ = ["BENCH_SUBSETS", "EvalOptions", "FineTuneOptions", "checkpoint_config", "check_subset",
           "evaluate_avsbench", "fine_tune", "load_model", "on_cpu"]
