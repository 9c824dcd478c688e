"""The trainer: SAMA-AVS / AP-SAM / GAVS on shards (pre-training) or AVSBench (fine-tuning).

One loop for one CPU, one GPU, or several GPUs and nodes (``accelerate launch`` / ``torchrun``;
gloo on CPUs), on Hugging Face ``accelerate``:

* bf16 autocast on GPU (``mixed_precision="auto"``), fp32 on CPU;
* AdamW + cosine schedule to a floor (:mod:`avsynth.training.recipe`), defaults from the model
  config's ``train`` section (the paper recipe), overridable;
* gradient accumulation (``grad_accum`` micro-batches per optimizer step, gradients not
  all-reduced on the intermediate ones); every rank runs the same number of batches per epoch
  (shard row groups are dealt to ranks whole, so the few surplus batches of the larger shares
  are dropped that epoch and logged);
* after every epoch: validation over ALL ranks (each scores its share through the predictor into
  an ``AVSBenchMetric`` whose per-frame states torchmetrics gathers, so the mIoU / F-score cover
  the whole validation split; :mod:`avsynth.training.validation`), ``RUN/last/`` (model,
  optimizer, schedule, RNG states: ``resume=True`` continues exactly), ``RUN/best.pt`` when the
  validation mIoU improved (a model checkpoint for :func:`avsynth.modeling.checkpoint.
  load_checkpoint`);
* ``RUN/log.jsonl`` (events ``start``, ``train`` every ``log_every`` optimizer steps, ``epoch``,
  ``end``; mIoU / F-score as fractions 0-1, as in every JSON file); TensorBoard in
  ``RUN/tensorboard``: loss, learning rate, validation mIoU / F-score in percent (overall and per
  category), the hyper-parameters (HParams tab) and, each epoch, the prediction on the first
  ``PREVIEW_SAMPLES`` validation samples (:mod:`avsynth.training.previews`); a progress bar.

A new run needs an empty (or absent) ``out``: a non-empty one is refused unless ``resume``, so two
runs' logs never mix.

Data order is a pure function of (seed, epoch), so an interrupted and resumed run gives the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from avsynth.errors import AvsynthError
from avsynth.io import atomic_write_text
from avsynth.modeling.audio_norm import STATE_PREFIX as AUDIO_NORM_PREFIX
from avsynth.modeling.base import SegmentationOutput
from avsynth.modeling.checkpoint import explained_missing, read_checkpoint, save_checkpoint
from avsynth.modeling.predictor import AVPredictor
from avsynth.modeling.registry import (
    M2F_FAMILIES,
    MODEL_NAMES,
    build_model,
    load_config,
    m2f_labels,
    pretrained_checkpoint,
    validate_config,
    with_weight_paths,
)
from avsynth.modeling.sam import load_state_checked
from avsynth.sources.avsbench import AVSBenchSource
from avsynth.training.data import (
    SHARD_COLUMNS,
    InputSpec,
    ShardRowTransform,
    VideoBatchSampler,
    avsbench_datasets,
    collate,
    shard_frames,
)
from avsynth.training.audio_norm_fit import fit_audio_norm
from avsynth.training.embeddings import AudioEmbeddings, build_audio_embeddings
from avsynth.training.recipe import (
    CosineSchedule,
    Recipe,
    build_optimizer,
    resolve_recipe,
)
from avsynth.training.previews import prediction_grid
from avsynth.training.runlog import Progress, RunLogger
from avsynth.training.state import (
    STATE_FORMAT,
    capture_rng,
    load_file,
    recover_dir,
    restore_rng,
    swap_in,
)
from avsynth.training.validation import validate

logger = logging.getLogger(__name__)

AUDIO_MODES = ("real", "zero", "shuffle")
PREVIEW_SAMPLES = 4  # fixed validation samples drawn with their prediction in TensorBoard each epoch


class TrainError(AvsynthError):
    """Training cannot start or continue (bad options, inconsistent resume, empty data)."""


@dataclass
class TrainConfig:
    """Everything one training run needs. ``None`` recipe fields take the model config's value.

    ``model``: a model config name (``models/*.yaml`` stem), a YAML path or a config dict;
    ``family``: optional ``sama-avs`` / ``ap-sam`` / ``gavs`` checked against the config (and
    choosing the paper config when ``model`` is None). Data: ``data`` (a shard directory or
    ``hf://datasets/ORG/NAME``) or ``avsbench`` (fine-tuning; see :class:`AVSBenchSource`).
    ``audio_mode``: ``real``; ``zero`` / ``shuffle`` (audio zeroed / taken from another sample of
    the batch) train an audio-blind control. ``stop_after_epochs`` ends this invocation after that
    many epochs (checkpoint written; ``resume`` continues). ``unfreeze``: parameter-name prefixes
    trained in addition to the model's own choice (None: the config's ``train.unfreeze``; e.g.
    ``sam.image_encoder.`` for a tiny model whose SAM is random, not pre-trained: a frozen random
    encoder is no stand-in for SAM's). ``audio_norm``: ``none`` / ``fit`` replaces the config's
    ``model.audio_norm`` (``fit``: standardise the VGGish vectors with the train split's per-dimension
    mean / std, fitted before the first epoch; :mod:`avsynth.modeling.audio_norm`).
    """

    out: Path
    model: str | Path | dict | None = None
    family: str | None = None
    data: str | None = None
    avsbench: AVSBenchSource | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_min: float | None = None
    weight_decay: float | None = None
    grad_accum: int | None = None
    max_grad_norm: float | None = None
    init: Path | None = None
    unfreeze: tuple[str, ...] | None = None
    sam_checkpoint: Path | None = None
    vggish_checkpoint: Path | None = None
    mask2former_checkpoint: Path | None = None
    audio_norm: str | None = None
    resume: bool = False
    seed: int = 0
    num_workers: int = 2
    val_batch_size: int | None = None
    train_split: str = "train"
    val_split: str = "validation"
    f_group: str = "batch4"
    shuffle_buffer: int = 256
    repair_audio: bool = True
    audio_mode: str = "real"
    mixed_precision: str = "auto"
    cpu: bool = False
    log_every: int = 10
    progress: bool = True
    stop_after_epochs: int | None = None
    embedding_cache: Path | None = None
    storage_options: dict | None = None

    def to_dict(self) -> dict:
        d = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, AVSBenchSource):
                v = {k: (str(x) if isinstance(x, Path) else (list(x) if isinstance(x, tuple) else x))
                     for k, x in asdict(v).items()}
            elif isinstance(v, Path):
                v = str(v)
            elif f.name == "storage_options" and v:
                v = {k: "<redacted>" for k in v}  # may hold credentials; never logged
            d[f.name] = v
        return d


@dataclass
class TrainResult:
    """What a run produced: best validation mIoU (and its epoch), per-epoch history, run dir."""

    best_miou: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    run_dir: Path = Path(".")
    samples_per_s: float = 0.0
    completed: bool = True
    rank: int = 0  # this process's rank (print results on rank 0 only)


# --------------------------------------------------------------------------- configuration


def resolve_model_config(config: TrainConfig) -> dict:
    """The validated model config with the command line's checkpoint paths applied."""
    family = None
    if config.family is not None:
        if config.family not in MODEL_NAMES:
            raise TrainError(f"unknown --model {config.family!r}; choose one of {', '.join(MODEL_NAMES)}")
        family, default = MODEL_NAMES[config.family]
    spec = config.model if config.model is not None else (default if family else None)
    if spec is None:
        raise TrainError("name a model (--model sama-avs|ap-sam|gavs) or a model config (--config)")
    cfg = validate_config(spec, str(spec.get("name", "<config>"))) if isinstance(spec, dict) else load_config(spec)
    if family is not None and cfg["family"] != family:
        raise TrainError(f"--model {config.family} but the config {cfg['name']!r} is a {cfg['family']} model")
    if config.audio_norm is not None:
        cfg["model"]["audio_norm"] = config.audio_norm
        cfg = validate_config(cfg, cfg["name"])
    return with_weight_paths(cfg, config.sam_checkpoint, config.vggish_checkpoint, config.mask2former_checkpoint)


def _mixed_precision(config: TrainConfig) -> str:
    if config.mixed_precision != "auto":
        return config.mixed_precision
    return "bf16" if torch.cuda.is_available() and not config.cpu else "no"


def _audio_fn(mode: str):
    if mode == "real":
        return None
    if mode == "zero":
        return torch.zeros_like
    if mode == "shuffle":
        return lambda a: a.roll(1, dims=0)
    raise TrainError(f"audio_mode must be one of {AUDIO_MODES}, got {mode!r}")


def _as_output(out) -> SegmentationOutput:
    """Model output in float32 (losses run outside autocast)."""
    if isinstance(out, torch.Tensor):
        return SegmentationOutput(out.float(), out.new_zeros(out.shape[0], 1).float())
    return SegmentationOutput(out.logits.float(), out.iou.float(), {k: v.float() for k, v in out.aux.items()})


# --------------------------------------------------------------------------- data


@dataclass
class _Data:
    train: Any  # a Dataset (AVSBench frames) or an IterableDataset (shards)
    val: Any
    sampler: DistributedSampler | VideoBatchSampler | None
    source: str


def _build_data(config: TrainConfig, spec: InputSpec, emb: AudioEmbeddings, rank: int, world: int,
                batch_by: str = "frame", first_frame_per_second: bool = False) -> _Data:
    if (config.data is None) == (config.avsbench is None):
        raise TrainError("give exactly one data source: shards (--data) or AVSBench (--avsbench)")
    if config.avsbench is not None:
        train, val = avsbench_datasets(config.avsbench, spec, emb, config.seed, first_frame_per_second)
        if batch_by == "video":
            return _Data(train, val, VideoBatchSampler(train, rank, world, config.seed),
                         f"avsbench:{config.avsbench.root}:{config.avsbench.subset}")
        sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
        return _Data(train, val, sampler, f"avsbench:{config.avsbench.root}:{config.avsbench.subset}")
    from avsynth.shards.reader import TripletIterableDataset

    def stream(repair: bool) -> TripletIterableDataset:
        return TripletIterableDataset(
            config.data, config.train_split, seed=config.seed, shuffle=True,
            shuffle_buffer=config.shuffle_buffer, repair_audio=repair,
            columns=list(SHARD_COLUMNS), transform=ShardRowTransform(spec, emb, spec.native_targets, str(config.data)),
            decode=False, rank=rank, world_size=world, storage_options=config.storage_options,
        )

    try:
        train = stream(config.repair_audio)
    except AvsynthError as err:
        if not config.repair_audio or "audio_pool" not in str(err):
            raise
        logger.warning("%s has no audio pool: train rows keep their own clip every epoch", config.data)
        train = stream(False)
    val = shard_frames(config.data, config.val_split, ShardRowTransform(spec, emb, True, str(config.data)),
                       storage_options=config.storage_options)
    return _Data(train, val, None, str(config.data))


def _local_batches(data: _Data, loader: DataLoader, batch_size: int, workers: int) -> int:
    """Batches this rank's train loader yields in the current epoch."""
    if data.sampler is not None:
        return len(loader)
    ds = data.train
    groups = ds.rank_row_groups()
    n = max(1, workers)
    return sum(math.ceil(sum(ds.reader.row_groups[g].rows for g in groups[w::n]) / batch_size)
               for w in range(n))


# --------------------------------------------------------------------------- the run


class Trainer:
    """One training run (see the module docstring); :func:`train` is the entry point."""

    def __init__(self, config: TrainConfig):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.config = config
        self.model_config = resolve_model_config(config)
        if self.model_config["family"] == "stepping_stones" or (
                "mask2former" in self.model_config and len(m2f_labels(self.model_config["mask2former"]["labels"])) > 2):
            raise TrainError(f"{self.model_config['name']} is an AVSS model (71 labels); it trains through "
                             "avsynth.training.avss.train_avss (avsynth train routes it there)")
        self.recipe: Recipe = resolve_recipe(self.model_config.get("train", {}), {
            "epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
            "lr_min": config.lr_min, "weight_decay": config.weight_decay,
            "grad_accum": config.grad_accum, "max_grad_norm": config.max_grad_norm,
            "unfreeze": None if config.unfreeze is None else tuple(config.unfreeze),
        })
        if config.f_group not in ("batch4", "video"):
            raise TrainError(f"f_group must be batch4 or video, got {config.f_group!r}")
        self.audio_fn = _audio_fn(config.audio_mode)
        self.acc = Accelerator(cpu=config.cpu, mixed_precision=_mixed_precision(config))
        set_seed(config.seed)
        self.run_dir = Path(config.out)
        self.rank, self.world = self.acc.process_index, self.acc.num_processes
        self.main = self.acc.is_main_process
        self._prepare_run_dir()

    # ---- run directory ------------------------------------------------------------------
    @property
    def last_dir(self) -> Path:
        return self.run_dir / "last"

    def _prepare_run_dir(self) -> None:
        occupied = self.run_dir.is_dir() and any(self.run_dir.iterdir())
        if occupied and not self.config.resume:  # every rank sees the same folder: all refuse
            what = "a checkpoint (last/)" if (self.last_dir / "state.pt").exists() else "files of another run"
            raise TrainError(f"{self.run_dir} is not empty (it holds {what}); refusing to mix two runs' "
                             "logs. Pass --resume to continue it, or choose another --out")
        self.acc.wait_for_everyone()
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            recover_dir(self.last_dir)
        self.acc.wait_for_everyone()
        has_last = (self.last_dir / "state.pt").is_file()
        self.resuming = has_last and self.config.resume

    # ---- model ----------------------------------------------------------------------------
    def _build_model(self):
        model = build_model(self.model_config)
        self._apply_unfreeze(model)
        if self.config.init is not None and not self.resuming:
            self._load_init(model)
        return model

    def _apply_unfreeze(self, model) -> None:
        names = [n for n, _ in model.named_parameters()]
        for prefix in self.recipe.unfreeze:
            hits = [n for n in names if n.startswith(prefix)]
            if not hits:
                raise TrainError(f"--unfreeze {prefix!r} matches no parameter of {self.model_config['name']} "
                                 f"(names look like {names[0]!r})")
            for n, p in model.named_parameters():
                if n.startswith(prefix):
                    p.requires_grad_(True)

    def _load_init(self, model) -> None:
        payload = read_checkpoint(self.config.init)
        if payload["trainable_only"] and not pretrained_checkpoint(self.model_config):
            raise TrainError(
                f"--init {self.config.init} stores only the trained weights; give the checkpoint "
                f"its frozen parts come from (--sam-checkpoint / --mask2former-checkpoint; it was "
                f"trained with {pretrained_checkpoint(payload['config'])!r})")
        report = load_state_checked(model, payload["state_dict"], self.config.init)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        missing = [k for k in report.missing if (k in trainable or not payload["trainable_only"])
                   and k not in explained_missing(payload)
                   and not k.startswith(AUDIO_NORM_PREFIX)]  # absent: fitted on this run's train split
        if missing or report.unexpected:
            raise TrainError(f"--init {self.config.init} does not fit {self.model_config['name']}: "
                             f"{report.summary()}")

    # ---- the two-phase recipe (AAVS / Stepping Stones) --------------------------------------
    def _phase_recipe(self, net) -> Recipe:
        """The recipe of the model's current phase (phase 2: AdamW restarts at ``phase2_lr``)."""
        r = self.recipe
        if getattr(net, "phase", 1) == 2:
            return dataclasses.replace(r, lr=r.phase2_lr, lr_min=min(r.lr_min, r.phase2_lr))
        return r

    def _enter_phase2(self, net) -> None:
        """Reload the best weights but the Swin adapters (official ``get_fineture_model``), draw the
        Swin adapters afresh, train them with the phase-1 set (+ ``unfreeze``)."""
        best = self.run_dir / "best.pt"
        if best.is_file():
            payload = read_checkpoint(best)
            net.load_state_dict({k: v for k, v in payload["state_dict"].items() if "swin_adapt" not in k},
                                strict=False)
        net.start_phase2(seed=self.config.seed)
        self._apply_unfreeze(net)

    def _warnings(self, model) -> list[str]:
        """Setups that run but are almost certainly not what the user wants."""
        out = []
        if self.model_config["family"] in M2F_FAMILIES:
            if not pretrained_checkpoint(self.model_config) and self.model_config["name"].endswith("swin-b"):
                out.append(f"{self.model_config['name']}: no Mask2Former checkpoint (--mask2former-checkpoint): "
                           "its frozen Swin-B keeps random weights")
            for w in out:
                logger.warning(w)
            return out
        arch = self.model_config["sam"]["arch"]
        tiny = arch == "tiny" or (isinstance(arch, dict) and arch.get("base") == "tiny")
        frozen_encoder = not any(p.requires_grad for n, p in model.named_parameters()
                                 if n.startswith("sam.image_encoder.patch_embed."))
        if not self.model_config["sam"].get("checkpoint") and not tiny and frozen_encoder:
            out.append(f"{self.model_config['name']}: no SAM checkpoint (--sam-checkpoint): its frozen "
                       "image encoder keeps random weights")
        if self.recipe.batch_by == "video" and self.config.data is not None:
            out.append(f"{self.model_config['name']}: batch_by video applies to AVSBench videos; shard rows "
                       f"are single images, batched {self.recipe.batch_size} at a time")
        if not self.model_config["vggish"].get("checkpoint") and self.model_config["vggish"].get("arch") != "tiny":
            out.append(f"{self.model_config['name']}: no VGGish checkpoint (--vggish-checkpoint): audio "
                       "embeddings come from a random VGGish")
        for w in out:
            logger.warning(w)
        return out

    def _trainable_only(self) -> bool:
        return bool(pretrained_checkpoint(self.model_config))

    # ---- checkpointing --------------------------------------------------------------------
    def _save_last(self, model, optimizer, schedule, state: dict) -> None:
        tmp = self.run_dir / "last.tmp"
        if self.main:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        self.acc.wait_for_everyone()
        torch.save(capture_rng(), tmp / f"rng-{self.rank}.pt")
        if self.main:
            save_checkpoint(self.acc.unwrap_model(model), tmp / "model.pt", self.model_config,
                            trainable_only=self._trainable_only())
            torch.save({"format": STATE_FORMAT, "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), **state}, tmp / "state.pt")
        self.acc.wait_for_everyone()
        if self.main:
            swap_in(tmp, self.last_dir)
        self.acc.wait_for_everyone()

    def _load_last_model(self, model) -> None:
        payload = read_checkpoint(self.last_dir / "model.pt")
        report = load_state_checked(model, payload["state_dict"], self.last_dir / "model.pt")
        if report.unexpected or (report.missing and not payload["trainable_only"]):
            raise TrainError(f"{self.last_dir}/model.pt does not fit the model: {report.summary()}")

    def _load_last_state(self, optimizer, schedule) -> dict:
        state = load_file(self.last_dir / "state.pt", "training state")
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise TrainError(f"{self.last_dir}/state.pt is not an {STATE_FORMAT} file")
        saved = state.get("run", {})
        current = {"seed": self.config.seed, "audio_mode": self.config.audio_mode,
                   "unfreeze": self.recipe.unfreeze}
        for key, now in current.items():
            then = saved.get(key)
            then, now = (tuple(x) if isinstance(x, (list, tuple)) else x for x in (then, now))
            if then != now:
                raise TrainError(f"cannot resume {self.run_dir}: it was started with {key}={then!r}, "
                                 f"now {now!r}")
        if saved.get("model") != self.model_config["name"]:
            raise TrainError(f"cannot resume {self.run_dir}: it trains {saved.get('model')!r}, "
                             f"not {self.model_config['name']!r}")
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng_path = self.last_dir / f"rng-{self.rank}.pt"
        if rng_path.is_file():
            restore_rng(load_file(rng_path, "RNG state"))
        return state

    # ---- validation -----------------------------------------------------------------------
    def validate(self, model, val_loader: DataLoader) -> dict:
        """mIoU / F-score over the WHOLE validation split (all ranks' frames gathered)."""
        predictor = AVPredictor(self.acc.unwrap_model(model), self.acc.device, self.acc.autocast)
        return validate(predictor, val_loader, self.config.f_group, self.audio_fn)

    # ---- the loop -------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, recipe, acc = self.config, self.recipe, self.acc
        cache_dir = cfg.embedding_cache if cfg.embedding_cache is not None else self.run_dir / "cache" / "vggish"
        emb = build_audio_embeddings(self.model_config, cache_dir)
        model = self._build_model()
        if self.resuming:
            last_epoch = int(load_file(self.last_dir / "state.pt", "training state").get("epoch", 0))
            if recipe.phase2_epoch is not None and last_epoch >= recipe.phase2_epoch:
                model.start_phase2(seed=cfg.seed)  # the saved weights include the phase-2 Swin adapters
                self._apply_unfreeze(model)
            self._load_last_model(model)
        spec = InputSpec.of(model)
        data = _build_data(cfg, spec, emb, self.rank, self.world, recipe.batch_by, recipe.first_frame_per_second)
        audio_norm = fit_audio_norm(model, data.train, emb)  # once, from the train split (no-op if loaded)
        optimizer = build_optimizer(model.trainable_parameters(), self._phase_recipe(model))
        model, optimizer = acc.prepare(model, optimizer)
        schedule = CosineSchedule(optimizer, self._phase_recipe(acc.unwrap_model(model)))
        net = acc.unwrap_model(model)

        state: dict = {"epoch": 0, "step": 0, "best_miou": -1.0, "best_epoch": -1, "history": []}
        if self.resuming:
            state.update({k: v for k, v in self._load_last_state(optimizer, schedule).items()
                          if k in state})
        log = RunLogger(self.run_dir, self.main, append=self.resuming)
        workers = max(0, cfg.num_workers)
        batching = ({"batch_sampler": data.sampler} if isinstance(data.sampler, VideoBatchSampler)
                    else {"batch_size": recipe.batch_size, "sampler": data.sampler, "drop_last": False})
        train_loader = DataLoader(
            data.train, num_workers=workers, collate_fn=collate, persistent_workers=False,
            pin_memory=acc.device.type == "cuda", **batching,
        )
        val_indices = list(range(self.rank, len(data.val), self.world))
        val_loader = DataLoader(Subset(data.val, val_indices), batch_size=cfg.val_batch_size or 2 * recipe.batch_size,
                                num_workers=workers, collate_fn=collate, shuffle=False)
        trainable, total = net.parameter_counts()
        log.event("start", resumed=self.resuming, start_epoch=state["epoch"], config=cfg.to_dict(),
                  model=self.model_config, recipe=recipe.to_dict(), world_size=self.world,
                  device=str(acc.device), mixed_precision=acc.mixed_precision,
                  trainable_params=trainable, total_params=total,
                  train_rows=len(data.train) if data.sampler is not None else len(data.train.reader),
                  val_frames=len(data.val), data=data.source, audio_norm=audio_norm, warnings=self._warnings(net))
        if not self.resuming:
            log.hparams({"model": self.model_config["name"], **recipe.to_dict(), "seed": cfg.seed,
                         "audio_mode": cfg.audio_mode, "f_group": cfg.f_group, "world_size": self.world,
                         "data": str(data.source)}, metrics=("val/miou_percent", "val/fscore_percent"))
        previews = [data.val[i] for i in range(min(PREVIEW_SAMPLES, len(data.val)))] if self.main else []
        if self.main and not self.resuming:
            atomic_write_text(self.run_dir / "config.json", json.dumps(
                {"train": cfg.to_dict(), "model": self.model_config, "recipe": recipe.to_dict()}, indent=2) + "\n")

        completed = False
        epochs_run = 0
        try:
            for epoch in range(int(state["epoch"]), recipe.epochs):
                if cfg.stop_after_epochs is not None and epochs_run >= cfg.stop_after_epochs:
                    break
                if recipe.phase2_epoch is not None and epoch >= recipe.phase2_epoch and net.phase == 1:
                    self._enter_phase2(net)
                    phase_recipe = self._phase_recipe(net)
                    model, optimizer = acc.prepare(net, build_optimizer(net.trainable_parameters(), phase_recipe))
                    schedule = CosineSchedule(optimizer, phase_recipe)
                    trainable, _ = net.parameter_counts()
                    log.event("phase2", epoch=epoch + 1, lr=phase_recipe.lr, trainable_params=trainable,
                              reloaded_best_epoch=state["best_epoch"])
                record = self._train_epoch(epoch, model, net, optimizer, schedule, data, train_loader,
                                           workers, state, log)
                metrics = self.validate(model, val_loader)
                record.update(val_miou=metrics["miou"], val_fscore=metrics["fscore"],
                              val_frames=metrics["frames"], f_group=metrics["f_group"])
                improved = recipe.improves(metrics["miou"], state["best_miou"])
                if improved:
                    state["best_miou"], state["best_epoch"] = metrics["miou"], epoch + 1
                    if self.main:
                        save_checkpoint(net, self.run_dir / "best.pt", self.model_config,
                                        trainable_only=self._trainable_only())
                record.update(best_miou=state["best_miou"], best_epoch=state["best_epoch"])
                state["history"].append(record)
                state["epoch"] = epoch + 1
                log.event("epoch", **record, per_category=metrics.get("per_category"))
                log.scalars(epoch + 1, **{"val/miou_percent": 100 * metrics["miou"],
                                          "val/fscore_percent": 100 * metrics["fscore"],
                                          "train/epoch_loss": record["train_loss"],
                                          "train/epoch_samples_per_s": record["samples_per_s"]},
                            **{f"val_per_category/{c}/miou_percent": 100 * v["miou"]
                               for c, v in (metrics.get("per_category") or {}).items()})
                if previews:
                    log.image("val/predictions (green: ground truth, red: prediction)", epoch + 1,
                              prediction_grid(AVPredictor(net, acc.device, acc.autocast), previews))
                self._save_last(model, optimizer, schedule, {
                    **state, "run": {"seed": cfg.seed, "audio_mode": cfg.audio_mode,
                                     "unfreeze": recipe.unfreeze,
                                     "model": self.model_config["name"]}})
                epochs_run += 1
            completed = state["epoch"] >= recipe.epochs
        finally:
            log.event("end", completed=completed, epoch=state["epoch"], best_miou=state["best_miou"],
                      best_epoch=state["best_epoch"], embeddings=emb.stats())
            log.close()
        rates = [h["samples_per_s"] for h in state["history"] if h.get("samples_per_s")]
        result = TrainResult(float(state["best_miou"]), int(state["best_epoch"]), list(state["history"]),
                             self.run_dir, float(sum(rates) / len(rates)) if rates else 0.0, completed,
                             self.rank)
        if self.main:
            atomic_write_text(self.run_dir / "result.json", json.dumps({
                "best_miou": result.best_miou, "best_epoch": result.best_epoch, "completed": completed,
                "samples_per_s": result.samples_per_s, "audio_norm": audio_norm,
                "history": result.history}, indent=2) + "\n")
        acc.wait_for_everyone()
        return result

    def _train_epoch(self, epoch, model, net, optimizer, schedule, data, loader, workers, state, log) -> dict:
        cfg, recipe, acc = self.config, self.recipe, self.acc
        if data.sampler is not None:
            data.sampler.set_epoch(epoch)
        else:
            data.train.set_epoch(epoch)
        local = _local_batches(data, loader, recipe.batch_size, workers)
        counts = acc.gather(torch.tensor([local], device=acc.device)) if self.world > 1 else torch.tensor([local])
        n_batches = int(counts.min())
        if n_batches == 0:
            raise TrainError(f"epoch {epoch + 1}: a rank has no training batches ({counts.tolist()} per "
                             "rank); the train split has too few row groups for this many processes")
        dropped = int(counts.sum()) - n_batches * self.world
        accum = recipe.grad_accum
        steps_in_epoch = math.ceil(n_batches / accum)
        model.train()
        progress = Progress(n_batches, epoch, recipe.epochs, self.main and cfg.progress)
        t0 = time.perf_counter()
        samples = 0
        loss_sum, loss_n = 0.0, 0
        window_loss, window_n = 0.0, 0
        window_t, window_samples = t0, 0
        zero_empty = recipe.zero_loss_empty_videos and isinstance(data.sampler, VideoBatchSampler)
        group_moves = False  # some micro-batch of the current accumulation group has a loss that counts
        it = iter(loader)
        try:
            for b in range(n_batches):
                batch = next(it, None)
                if batch is None:
                    raise TrainError(f"epoch {epoch + 1}: the data loader ended after {b} of the "
                                     f"{n_batches} batches expected on rank {self.rank}")
                images = batch["image"].to(acc.device, non_blocking=True)
                if getattr(net, "native_targets", False):  # masks at each frame's native size
                    target = [m.to(acc.device, non_blocking=True) for m in batch["mask"]]
                else:
                    target = batch["target"].to(acc.device, non_blocking=True).float().unsqueeze(1)
                audio = batch["audio"].to(acc.device, non_blocking=True)
                if self.audio_fn is not None:
                    audio = self.audio_fn(audio)
                group_start = (b // accum) * accum
                group_size = min(accum, n_batches - group_start)
                sync = b == group_start + group_size - 1
                ctx = contextlib.nullcontext() if sync or self.world == 1 else acc.no_sync(model)
                empty = zero_empty and empty_ms3_video(batch)
                group_moves = group_moves or not empty
                with ctx:
                    with acc.autocast():
                        out = model(images, audio)
                    loss = net.loss(_as_output(out), target)
                    if empty:  # official get_loss: 0, no gradient (x 0 keeps DDP's all-reduce in step)
                        loss = loss * 0.0
                    acc.backward(loss / group_size)
                if sync:
                    if zero_empty and self.world > 1:
                        group_moves = bool(acc.reduce(torch.tensor([float(group_moves)], device=acc.device), "sum") > 0)
                    if group_moves or not zero_empty:
                        if recipe.max_grad_norm is not None:
                            acc.clip_grad_norm_(net.trainable_parameters(), recipe.max_grad_norm)
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    group_moves = False
                    step_in_epoch = b // accum + 1
                    lr = schedule.set((epoch + step_in_epoch / steps_in_epoch) / recipe.epochs)
                    state["step"] += 1
                n = images.shape[0]
                samples += n
                window_samples += n
                value = float(loss.detach())
                loss_sum, loss_n = loss_sum + value, loss_n + 1
                window_loss, window_n = window_loss + value, window_n + 1
                now = time.perf_counter()
                rate = samples * self.world / max(now - t0, 1e-9)
                progress.update(value, rate, optimizer.param_groups[0]["lr"])
                if sync and state["step"] % max(1, cfg.log_every) == 0:
                    mean = torch.tensor([window_loss / window_n], device=acc.device)
                    mean = float(acc.reduce(mean, "mean")) if self.world > 1 else float(mean)
                    win_rate = window_samples * self.world / max(now - window_t, 1e-9)
                    log.event("train", epoch=epoch + 1, step=state["step"], loss=mean, lr=lr,
                              samples_per_s=win_rate)
                    log.scalars(state["step"], **{"train/loss": mean, "train/lr": lr,
                                                  "train/samples_per_s": win_rate})
                    window_loss, window_n, window_t, window_samples = 0.0, 0, now, 0
        finally:
            progress.close()
            del it
        seconds = time.perf_counter() - t0
        mean_loss = torch.tensor([loss_sum / max(1, loss_n)], device=acc.device)
        mean_loss = float(acc.reduce(mean_loss, "mean")) if self.world > 1 else float(mean_loss)
        return {"epoch": epoch + 1, "train_loss": mean_loss, "batches": n_batches, "steps": steps_in_epoch,
                "dropped_batches": dropped, "samples": samples * self.world, "seconds": seconds,
                "samples_per_s": samples * self.world / max(seconds, 1e-9),
                "lr": optimizer.param_groups[0]["lr"]}


#: Labels of MS3 videos (semantic release, object release): the official AAVS zero-loss rule's subset.
MS3_LABELS = ("v1m", "ms3")


def empty_ms3_video(batch: dict) -> bool:
    """Whether a one-video batch is an MS3 video whose masks are all empty (official AAVS
    ``get_loss``: ``task == 'v1m' and torch.mean(mask) == 0``)."""
    labels = batch.get("label") or []
    return bool(labels) and all(lab in MS3_LABELS for lab in labels) and not bool(batch["target"].any())


def train(config: TrainConfig) -> TrainResult:
    """Run (or resume) one training run; see :class:`TrainConfig` and the module docstring."""
    return Trainer(config).run()


__all__ = ["AUDIO_MODES", "MODEL_NAMES", "MS3_LABELS", "TrainConfig", "TrainError", "TrainResult", "Trainer",
           "empty_ms3_video",
           "resolve_model_config", "train"]
