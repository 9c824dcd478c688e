"""The Stepping Stones AVSS pipeline: stage-1 binary masks written once, stage 2 trained on them.

Stage 1 is an AAVS binary model trained by the ordinary trainer on the AVSS videos' binary masks
(``avsynth train --config aavs-avss-swin-b --avsbench ROOT --subset avss``). Then:

1. :func:`write_stage1_masks` predicts every frame of the val / test videos once with the stage-1
   checkpoint (through :class:`~avsynth.modeling.predictor.AVPredictor`) and writes 0 / 255 PNGs in
   the official layout ``MASKS/<label>/<uid>/<i>.png`` (label = v1s / v1m / v2), 224² by default;
   a video whose PNGs all exist is kept (so the masks are computed once, by whatever run first needs
   them); :func:`read_stage1_masks` reads them back (a missing PNG is an error naming it).
2. :func:`train_avss` trains the stage-2 model (or, for comparison, a one-stage 71-label AAVS) one
   video per step with the config's recipe (AdamW, constant learning rate, phase 2 at
   ``epochs // phase2_divisor``: best weights reloaded, Swin adapters drawn and trained, new AdamW at
   ``phase2_lr``). Training conditions on the ground truth (``mask != 0``), validation on the stage-1
   PNGs; the best validation mIoU (AVSS, with background) is kept in ``OUT/best.pt``, one line per
   epoch in ``OUT/log.jsonl``, the run in ``OUT/result.json``.
3. :func:`evaluate_avss` scores a model with :class:`~avsynth.evaluation.metrics.AVSSMetric`:
   ``miou`` / ``fscore`` (all 71 classes), ``*_no_bg`` (the Stepping Stones code's ``[1:]``),
   ``*_official_no_bg`` (the AVSBench code's ``[:-1]``); frames ``pad_to=None`` scores the annotated
   frames (the Stepping Stones protocol: 5 for v1s / v1m), ``pad_to=10`` appends background frames
   as the official AVSBench AVSS test loader does.

S4 train videos annotate frame 0 only; as officially, they train on 5 copies of frame 0 with the
audio seconds 0-4.

Pre-training on shards (``data``: ``avsynth train --data SHARDS --config <AVSS config>``): a one-stage
71-label AAVS (family ``aavs``, ``mask2former.labels: avss``) trains on the ``semantic_mask`` rows of a
``--semantic --semantic-classes avsbench`` build (:mod:`avsynth.training.avss_shards`; other shards,
a binary config or a Stepping Stones config, whose stage-1 masks shards do not have, are one-line
errors), the recipe's ``batch_size`` rows per step, validated on the shards' validation split with
the same AVSS metric. ``init`` starts a run (e.g. the AVSBench fine-tune) from such a ``best.pt``:
every tensor must fit and no trainable weight may be missing (:func:`load_init`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from avsynth.errors import AvsynthError, SourceError
from avsynth.evaluation.metrics import AVSSMetric
from avsynth.io import atomic_write_text
from avsynth.modeling.checkpoint import explained_missing, load_checkpoint, read_checkpoint, save_checkpoint
from avsynth.modeling.predictor import AVPredictor, resolve_device
from avsynth.modeling.registry import (
    build_model,
    build_vggish_for,
    load_config,
    m2f_labels,
    pretrained_checkpoint,
    validate_config,
    with_weight_paths,
)
from avsynth.modeling.sam import load_state_checked
from avsynth.modeling.stepping_stones import SteppingStones
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.sources.avsbench import (
    OFFICIAL_SIZE,
    AVSBenchVideo,
    AVSBenchSource,
    audio_windows,
    load_audio,
    load_frame,
    load_mask,
)
from avsynth.training.avss_shards import SemanticShardRows, check_semantic_shards
from avsynth.training.recipe import build_optimizer, resolve_recipe

log = logging.getLogger(__name__)

S4_TRAIN_COPIES = 5


# --------------------------------------------------------------------------- videos → tensors


@dataclass
class AVSSVideo:
    """One video ready for a model: frames uint8 [T, H, W, 3], class maps [T, H, W], audio [T, 128]."""

    video: AVSBenchVideo | None
    frames: list[np.ndarray]
    labels: torch.Tensor
    audio: torch.Tensor
    frame_ids: list[int]


def load_avss_video(video: AVSBenchVideo, vggish: VGGishEmbedder, train: bool,
                    resolution: int = OFFICIAL_SIZE) -> AVSSVideo:
    """The annotated frames of ``video`` with their class maps and per-second VGGish vectors (S4
    train videos: frame 0 five times, audio seconds 0-4)."""
    windows = audio_windows(load_audio(video.audio_path), max(video.num_frames, S4_TRAIN_COPIES))
    annotated = [i for i, a in enumerate(video.annotated) if a]
    if train and video.label in ("v1s", "s4") and annotated == [0]:
        ids, seconds = [0] * S4_TRAIN_COPIES, list(range(S4_TRAIN_COPIES))
    else:
        ids, seconds = annotated, annotated
    frames = [load_frame(video.frame_paths[i], resolution) for i in ids]
    labels = torch.stack([torch.from_numpy(load_mask(video.mask_paths[i], "semantic", (resolution, resolution)))
                          for i in ids])
    audio = vggish.embed_windows(windows[seconds], 16000)
    return AVSSVideo(video, frames, labels, audio, ids)


# --------------------------------------------------------------------------- stage-1 masks


def mask_path(root: Path, video: AVSBenchVideo, frame: int) -> Path:
    return Path(root) / video.label / video.uid / f"{frame}.png"


@torch.no_grad()
def write_stage1_masks(checkpoint: str | Path, videos: Sequence[AVSBenchVideo], out: str | Path,
                       vggish: VGGishEmbedder | None = None, device: str | None = None,
                       resolution: int = OFFICIAL_SIZE) -> dict:
    """Predict the binary masks of every frame of ``videos`` with a stage-1 checkpoint and write them
    (see the module docstring). Returns ``{"written": videos predicted, "kept": videos whose PNGs
    were already there}``."""
    out = Path(out)
    todo = [v for v in videos if not all(mask_path(out, v, i).is_file() for i in range(v.num_frames))]
    if todo:
        model = load_checkpoint(checkpoint)
        vggish = vggish or build_vggish_for(model.config)
        predictor = AVPredictor(model, device=resolve_device(device))
        with predictor.evaluating():
            for v in todo:
                frames = [load_frame(p, resolution) for p in v.frame_paths]
                audio = vggish.embed_windows(audio_windows(load_audio(v.audio_path), v.num_frames), 16000)
                logits = predictor.predict(frames, audio)
                folder = out / v.label / v.uid
                folder.mkdir(parents=True, exist_ok=True)
                for i, lg in enumerate(logits):
                    tmp = folder / f".{i}.png.tmp"
                    Image.fromarray(((lg > 0).cpu().numpy() * 255).astype(np.uint8)).save(tmp, format="PNG")
                    tmp.replace(folder / f"{i}.png")
    return {"written": len(todo), "kept": len(videos) - len(todo)}


def read_stage1_masks(root: str | Path, video: AVSBenchVideo, frames: Sequence[int]) -> torch.Tensor:
    """The stage-1 masks of ``frames`` of ``video`` as float [T, H, W] in {0, 1} (PNG / 255)."""
    out = []
    for i in frames:
        p = mask_path(Path(root), video, i)
        if not p.is_file():
            raise SourceError(p, "stage-1 mask not found (write them with the stage-1 checkpoint first)")
        out.append(torch.from_numpy(np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255.0))
    return torch.stack(out)


# --------------------------------------------------------------------------- evaluation


def _forward(model, batch_images, audio, stage1):
    if isinstance(model, SteppingStones):
        return model(batch_images, audio, stage1)
    return model(batch_images, audio)


@torch.no_grad()
def evaluate_avss(model, videos: Sequence[AVSSVideo], stage1_root: str | Path | None,
                  pad_to: int | None = None, device: str | torch.device = "cpu") -> dict:
    """AVSS figures of ``model`` on ``videos`` (see the module docstring; ``stage1_root`` feeds a
    Stepping Stones model its stage-1 PNGs)."""
    metric = AVSSMetric(num_classes=model.num_labels)
    was = model.training
    model.eval().to(device)
    try:
        for v in videos:
            batch = model.preprocess(v.frames, device=device)
            stage1 = (read_stage1_masks(stage1_root, v.video, v.frame_ids).to(device)
                      if isinstance(model, SteppingStones) else None)
            out = _forward(model, batch.images, v.audio.to(device), stage1)
            scores = torch.cat([model.postprocess(out.logits[i:i + 1], batch.input_sizes[i], tuple(v.labels.shape[-2:]))
                                for i in range(len(v.frames))])
            labels = v.labels
            if pad_to is not None and len(v.frames) < pad_to:
                extra = pad_to - len(v.frames)
                blank = model.preprocess([np.zeros_like(v.frames[0])] * extra, device=device)
                pad_audio = torch.zeros(extra, v.audio.shape[1], device=device)
                pad_stage1 = torch.zeros(extra, *labels.shape[-2:], device=device) if stage1 is not None else None
                pad_out = _forward(model, blank.images, pad_audio, pad_stage1)
                scores = torch.cat([scores, model.postprocess(pad_out.logits, blank.input_sizes[0],
                                                              tuple(labels.shape[-2:]))])
                labels = torch.cat([labels, labels.new_zeros(extra, *labels.shape[-2:])])
            metric.update(scores.cpu(), labels)
    finally:
        model.train(was)
    result = metric.compute()
    result.pop("per_class")
    return result


# --------------------------------------------------------------------------- training


@dataclass
class AVSSTrainConfig:
    """One stage-2 (or one-stage 71-label) AVSS run; ``None`` recipe fields take the config's."""

    root: Path | None  # AVSBench root (None: pre-training on ``data``)
    out: Path
    model: str | Path | dict = "stepping-stones-swin-b"
    data: str | None = None  # a --semantic --semantic-classes avsbench shard directory (pre-training)
    init: Path | None = None  # start from this checkpoint (best.pt of an AVSS run)
    batch_size: int | None = None  # shards: rows per step (None: the config's)
    train_split: str = "train"
    val_split: str = "validation"
    storage_options: dict | None = None
    stage1_masks: Path | None = None  # where the stage-1 PNGs are (needed by a Stepping Stones model)
    stage1_checkpoint: Path | None = None  # predicts the missing PNGs of the validation videos first
    mask2former_checkpoint: Path | None = None
    vggish_checkpoint: Path | None = None
    subset: str = "avss"
    epochs: int | None = None
    lr: float | None = None
    seed: int = 3407
    device: str | None = None
    max_videos: int | None = None  # first n train videos (quick runs)
    val_videos: int | None = None  # first n validation videos (quick runs)


def _model_config(spec: str | Path | dict) -> dict:
    return validate_config(spec, str(spec.get("name", "<config>"))) if isinstance(spec, dict) else load_config(spec)


def is_avss_config(spec: str | Path | dict) -> bool:
    """Whether a model config is an AVSS one (Stepping Stones, or a Mask2Former with more than the
    two binary labels): such a model trains through :func:`train_avss`, not the binary trainer."""
    cfg = _model_config(spec)
    return cfg["family"] == "stepping_stones" or (
        "mask2former" in cfg and len(m2f_labels(cfg["mask2former"]["labels"])) > 2)


def load_init(model, path: str | Path, model_cfg: dict) -> dict:
    """Load the checkpoint ``path`` into ``model`` to start a run from it; every tensor of the file
    must fit and no trainable weight may be missing (weights the file leaves out on purpose, e.g.
    frozen pre-trained ones, must come from the config's own checkpoint). Returns the keys left
    missing and unexpected."""
    payload = read_checkpoint(path)
    if payload["trainable_only"] and not pretrained_checkpoint(model_cfg):
        raise AvsynthError(f"--init {path} stores only the trained weights; give the checkpoint its frozen parts "
                           f"come from (--mask2former-checkpoint; it was trained with "
                           f"{pretrained_checkpoint(payload['config'])!r})")
    report = load_state_checked(model, payload["state_dict"], path)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = [k for k in report.missing if (k in trainable or not payload["trainable_only"])
               and k not in explained_missing(payload)]
    if missing or report.unexpected:
        raise AvsynthError(f"--init {path} does not fit {model_cfg['name']}: {report.summary()}")
    return {"missing": list(report.missing), "unexpected": list(report.unexpected)}


def _loss(model, output, labels, device) -> torch.Tensor:
    """The model's loss; ``labels``: class maps [T, H, W] or a list of [H_i, W_i] (shard rows of
    their own sizes, each brought to the input size by the model itself)."""
    if isinstance(labels, torch.Tensor):
        return model.loss(output, labels.to(device))
    masks, classes = [], []
    for lab in labels:
        m, c = model.labels_from_maps(lab[None].to(device))
        masks += m
        classes += c
    return model.loss_from_labels(output, masks, classes)


def train_avss(cfg: AVSSTrainConfig) -> dict:
    """Train and validate (see the module docstring); returns and writes ``OUT/result.json``."""
    model_cfg = with_weight_paths(_model_config(cfg.model), vggish_checkpoint=cfg.vggish_checkpoint,
                                  mask2former_checkpoint=cfg.mask2former_checkpoint)
    if model_cfg["family"] not in ("aavs", "stepping_stones"):
        raise AvsynthError(f"{model_cfg['name']}: AVSS training takes an aavs / stepping_stones config")
    if len(m2f_labels(model_cfg["mask2former"]["labels"])) < 3:
        raise AvsynthError(f"{model_cfg['name']}: a binary config (labels {model_cfg['mask2former']['labels']}); "
                           "an AVSS model needs the 71 labels (mask2former.labels: avss)")
    if (cfg.data is None) == (cfg.root is None):
        raise AvsynthError("AVSS training reads one source: AVSBench (--avsbench) or shards (--data)")
    if cfg.data is not None:
        if model_cfg["family"] == "stepping_stones":
            raise AvsynthError(f"{model_cfg['name']}: Stepping Stones needs stage-1 masks, which shards do not "
                               "have; pre-train a one-stage AAVS config with labels: avss on shards")
        check_semantic_shards(cfg.data, cfg.train_split, cfg.storage_options)
    recipe = resolve_recipe(model_cfg.get("train", {}), {"epochs": cfg.epochs, "lr": cfg.lr,
                                                        "batch_size": cfg.batch_size})
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg).to(device)
    for prefix in recipe.unfreeze:
        for n, p in model.named_parameters():
            if n.startswith(prefix):
                p.requires_grad_(True)
    if model.num_labels < 3:
        raise AvsynthError(f"{model_cfg['name']}: an AVSS model needs the 71 labels (labels: avss)")
    stepping = isinstance(model, SteppingStones)
    if stepping and cfg.stage1_masks is None:
        raise AvsynthError("a Stepping Stones model needs the stage-1 masks (stage1_masks)")
    init = load_init(model, cfg.init, model_cfg) if cfg.init is not None else None
    vggish = build_vggish_for(model_cfg)
    if cfg.data is not None:
        train_data = SemanticShardRows(cfg.data, cfg.train_split, vggish, cfg.storage_options)
        val_data = SemanticShardRows(cfg.data, cfg.val_split, vggish, cfg.storage_options)
    else:
        source = AVSBenchSource(Path(cfg.root), subset=cfg.subset)
        train_videos = source.videos("train")[: cfg.max_videos]
        val_videos = source.videos("val")[: cfg.val_videos]
        if stepping and cfg.stage1_checkpoint is not None:
            write_stage1_masks(cfg.stage1_checkpoint, val_videos, cfg.stage1_masks, device=str(device))
        train_data = [load_avss_video(v, vggish, train=True) for v in train_videos]
        val_data = [load_avss_video(v, vggish, train=False) for v in val_videos]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    def fresh_optimizer(r):
        return build_optimizer(model.trainable_parameters(), r)

    def unfreeze_again():
        for prefix in recipe.unfreeze:
            for n, p in model.named_parameters():
                if n.startswith(prefix):
                    p.requires_grad_(True)

    phase_recipe = recipe
    optimizer = fresh_optimizer(recipe)
    history, best, best_epoch = [], -1.0, -1
    order_gen = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(recipe.epochs):
        if recipe.phase2_epoch is not None and epoch == recipe.phase2_epoch:
            if (out / "best.pt").is_file():
                state = read_checkpoint(out / "best.pt")["state_dict"]
                model.load_state_dict({k: v for k, v in state.items() if "swin_adapt" not in k}, strict=False)
            model.start_phase2(seed=cfg.seed)
            unfreeze_again()
            phase_recipe = replace(recipe, lr=recipe.phase2_lr, lr_min=min(recipe.lr_min, recipe.phase2_lr))
            optimizer = fresh_optimizer(phase_recipe)
        model.train()
        t0, losses = time.perf_counter(), []
        units = (train_data.epoch(order_gen, recipe.batch_size) if isinstance(train_data, SemanticShardRows)
                 else (train_data[i] for i in torch.randperm(len(train_data), generator=order_gen).tolist()))
        for v in units:
            batch = model.preprocess(v.frames, device=device)
            stage1 = (v.labels != 0).float().to(device) if stepping else None
            output = _forward(model, batch.images, v.audio.to(device), stage1)
            loss = _loss(model, output, v.labels, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), recipe.max_grad_norm)
            optimizer.step()
            losses.append(float(loss.detach()))
        seconds = time.perf_counter() - t0
        metrics = evaluate_avss(model, val_data, cfg.stage1_masks, device=device)
        record = {"epoch": epoch + 1, "phase": model.phase, "lr": phase_recipe.lr,
                  "train_loss": float(np.mean(losses)), "seconds": seconds,
                  "steps_per_s": len(losses) / max(seconds, 1e-9), **{f"val_{k}": v for k, v in metrics.items()}}
        history.append(record)
        with open(out / "log.jsonl", "a") as fh:  # one line per epoch, readable while the run goes on
            fh.write(json.dumps(record) + "\n")
        log.info("epoch %d: loss %.4f val mIoU %.2f%%", epoch + 1, record["train_loss"], 100 * metrics["miou"])
        if metrics["miou"] > best:
            best, best_epoch = metrics["miou"], epoch + 1
            save_checkpoint(model, out / "best.pt", model_cfg)
    result = {"model": model_cfg["name"], "best_miou": best, "best_epoch": best_epoch,
              "train_videos": len(train_data), "val_videos": len(val_data), "history": history}
    if cfg.data is not None:  # shard rows, not videos
        result.update(data=str(cfg.data), train_rows=result.pop("train_videos"),
                      val_rows=result.pop("val_videos"))
    if init is not None:
        result["init"] = {"path": str(cfg.init), **init}
    atomic_write_text(out / "result.json", json.dumps(result, indent=2) + "\n")
    return result


__all__ = [
    "AVSSTrainConfig",
    "AVSSVideo",
    "evaluate_avss",
    "is_avss_config",
    "load_avss_video",
    "load_init",
    "mask_path",
    "read_stage1_masks",
    "train_avss",
    "write_stage1_masks",
]
