"""Benchmark protocols: evaluation of a checkpoint on AVSBench (zero-shot, few-shot), on AVS-V3
(unseen classes, k-shot) and on a shard directory's synthetic test split.

The evaluation path is the inference path: frames go through the model's own ``preprocess``
(resize, SAM normalisation, padding), audio through the config's frozen VGGish (one 128-d
embedding per 1-second window, frame i <-> second i, as the AVSBench loaders cut them; a whole
clip for a shard row), logits through the model's ``postprocess`` back to the ground truth's
resolution (224 x 224 by default, the official evaluation size), and the scores through
:class:`avsynth.evaluation.metrics.AVSBenchMetric` with the F-score grouping named in every result.

Protocols (each returns :class:`EvalResult` records; ``to_dict()`` is JSON-serialisable). AVSBench
roots are the semantic release (``metadata.csv``) or the old object release (detected):

* :func:`zero_shot`: the checkpoint as given, on S4 / MS3 ``split`` (default test).
* :func:`few_shot`: for each fraction of the train videos per class (or k videos per class), a
  copy of the checkpoint is fine-tuned through the trainer (:func:`avsynth.training.trainer.train`,
  ``init`` = the checkpoint; the subset is drawn per class from ``seed``; model selection on the
  AVSBench val split), then evaluated.
* :func:`avs_v3`: the GAVS AVS-V3 protocol (AAAI 2024; splits shipped in ``avs_v3/``): evaluate on
  the unseen classes (``meta_v3_unseen``); optionally first train on ``meta_v3_seen_train`` (val
  ``meta_v3_seen_val``); for each k, train on ``v3_{k}_shot_train`` (val ``meta_v3_seen_val``)
  and test on ``v3_{k}_shot_test``. The uid lists select videos of the AVSBench semantic release;
  on the demo tree (whose videos have other uids) the same class split is applied by name
  (:func:`select_avs_v3`), which the results say.
* :func:`synthetic_test`: a shard directory's test split (each row is its own "video").

:func:`run_bench` runs what a :class:`BenchConfig` asks for (the ``avsynth bench`` command) and
writes the report (:mod:`avsynth.evaluation.report`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from avsynth.errors import AvsynthError
from avsynth.evaluation.avsbench import (
    OFFICIAL_SIZE,
    AVSBenchDataset,
    AVSBenchObjectDataset,
    AVSBenchVideo,
    load_avs_v3_split,
    load_metadata,
)
from avsynth.evaluation.metrics import F_GROUPS, AVSBenchMetric, frame_iou
from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.checkpoint import load_checkpoint, read_checkpoint
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.training.data import AVSBenchSource

#: Binary subsets the AVSBench protocols evaluate.
BENCH_SUBSETS = ("s4", "ms3")
#: The shipped AVS-V3 split files (GeWu-Lab/Generalizable-Audio-Visual-Segmentation, MIT).
AVS_V3_SPLITS = {
    "seen_train": "meta_v3_seen_train.csv",
    "seen_val": "meta_v3_seen_val.csv",
    "unseen": "meta_v3_unseen.csv",
    **{f"{k}_shot_{part}": f"v3_{k}_shot_{part}.csv" for k in (1, 3, 5) for part in ("train", "test")},
}
AVS_V3_SHOTS = (1, 3, 5)
#: Pseudo-labels of the AVS-V3 a_obj column that are not object classes.
_NOT_CLASSES = {"background", "off-the-screen"}


class BenchError(AvsynthError):
    """A benchmark cannot run (bad options, missing checkpoint, data that does not fit)."""


# --------------------------------------------------------------------------- results


@dataclass
class EvalResult:
    """The figures of one evaluation (see :meth:`AVSBenchMetric.compute`) and what was evaluated.

    ``per_video``: uid, category, frames, miou (mean IoU of the video's scored frames), sorted as
    evaluated. ``frames_per_s``: scored frames per wall-clock second of the whole evaluation
    (loading, audio embedding, inference and metric).
    """

    protocol: str  # zero-shot / few-shot / avs-v3 / synthetic
    dataset: str  # avsbench / avs-v3 / shards
    subset: str  # s4 / ms3 / unseen / 1_shot_test / test ...
    split: str | None
    f_group: str
    miou: float
    fscore: float
    frames: int
    videos: int
    groups: int
    resolution: int | None
    per_category: dict[str, dict] = field(default_factory=dict)
    per_video: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    frames_per_s: float = 0.0
    setting: dict = field(default_factory=dict)  # e.g. {"fraction": 0.5} or {"k_shot": 1}
    notes: list[str] = field(default_factory=list)
    skipped: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        """Short name: ``zero-shot s4/test`` or ``few-shot s4 fraction=0.5``."""
        extra = " ".join(f"{k}={v:g}" for k, v in self.setting.items() if k in ("fraction", "k_shot"))
        where = self.subset + (f"/{self.split}" if self.split else "")
        return " ".join(x for x in (self.protocol, where, extra) if x)


# --------------------------------------------------------------------------- audio


class WindowEmbedder:
    """Frozen VGGish of a model config: waveforms → [N, 128] (one mean embedding per waveform).

    Built exactly as the trainer builds it (:func:`avsynth.training.embeddings.
    build_audio_embeddings`: weights from the config's local checkpoint, or drawn from the config
    seed when it names none), so evaluation sees the embeddings training saw. Equal-length windows
    are embedded in one batched call.
    """

    def __init__(self, model_config: dict):
        from avsynth.training.embeddings import build_audio_embeddings

        self.vggish: VGGishEmbedder = build_audio_embeddings(model_config).vggish

    @torch.no_grad()
    def windows(self, windows: np.ndarray | torch.Tensor, sample_rate: int = 16000) -> torch.Tensor:
        """[T, L] windows of equal length (16 kHz) → [T, 128]."""
        w = torch.as_tensor(np.asarray(windows, dtype=np.float32))
        if sample_rate != 16000 or w.shape[-1] < 15600:
            return torch.stack([self.clip(x.numpy(), sample_rate) for x in w])
        examples = self.vggish.frontend(w.to(self.vggish.frontend.window.device))  # [T, N, 96, 64]
        t, n = examples.shape[:2]
        emb = self.vggish(examples.reshape(t * n, *examples.shape[2:]))
        return emb.reshape(t, n, -1).mean(dim=1).float().cpu()

    @torch.no_grad()
    def clip(self, waveform: np.ndarray, sample_rate: int) -> torch.Tensor:
        """One clip → [128] (mean over its 0.96 s examples; short clips zero-padded)."""
        return self.vggish.embed_clip(np.asarray(waveform), int(sample_rate)).float().cpu()


# --------------------------------------------------------------------------- evaluation items


@dataclass
class VideoSample:
    """One video ready for the model: frames, masks, which frames are scored, one embedding per
    frame. A shard row is a one-frame video."""

    uid: str
    category: str
    frames: list[np.ndarray]  # uint8 H x W x 3
    masks: list[np.ndarray]  # {0,1} H x W at the evaluation resolution
    scored: list[bool]
    audio: torch.Tensor  # [T, 128]


def _first(batch: list) -> Any:
    return batch[0]


def avsbench_samples(dataset: AVSBenchDataset | AVSBenchObjectDataset, embedder: WindowEmbedder,
                     num_workers: int = 0) -> Iterator[VideoSample]:
    """The videos of an AVSBench dataset (binary mode) as :class:`VideoSample`, in order."""
    if getattr(dataset, "mode", "binary") != "binary":
        raise BenchError("the binary AVSBench protocols need mode='binary' datasets")
    loader = DataLoader(dataset, batch_size=1, num_workers=num_workers, collate_fn=_first)
    for item in loader:
        frames = item["frames"].permute(0, 2, 3, 1).numpy()
        scored = item["annotated"].tolist()
        yield VideoSample(
            uid=item["uid"], category=item["category"],
            frames=[np.ascontiguousarray(f) for f in frames],
            masks=[m.numpy() for m in item["masks"]],
            scored=scored,
            audio=embedder.windows(item["audio_windows"].numpy(), item["sample_rate"]),
        )


def shard_samples(source: str | Path, split: str, embedder: WindowEmbedder,
                  limit: int | None = None, ids: Iterable[str] | None = None) -> Iterator[VideoSample]:
    """The rows of a shard split as one-frame :class:`VideoSample` (native resolution, the row's
    own clip embedded whole, as the trainer's validation does); ``ids`` keeps only those rows."""
    from avsynth.media.audio import decode_audio
    from avsynth.shards.reader import ShardReader, decode_image_and_mask

    reader = ShardReader(source, split, ["id", "category", "image", "mask", "audio"])
    wanted = None if ids is None else set(ids)
    for n, row in enumerate(reader.iter_rows()):
        if limit is not None and n >= limit:
            return
        if wanted is not None and str(row["id"]) not in wanted:
            continue
        where = f"{source} {split} row {row['id']!r}"
        image, mask = decode_image_and_mask(row, where)
        wave, sr = decode_audio(row["audio"]["bytes"], where)
        yield VideoSample(uid=str(row["id"]), category=str(row["category"]),
                          frames=[image], masks=[mask.astype(np.uint8)],
                          scored=[True], audio=embedder.clip(wave, sr)[None])


# --------------------------------------------------------------------------- inference


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` or the first GPU when there is one, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def predict_videos(model: AVSegmenter, videos: Sequence[VideoSample],
                   device: torch.device) -> list[list[torch.Tensor]]:
    """Logits [H, W] of every frame of ``videos`` (one forward over all their frames), at each
    frame's own resolution, through the model's preprocess / postprocess."""
    frames = [f for v in videos for f in v.frames]
    audio = torch.cat([v.audio for v in videos]).to(device)
    batch = model.preprocess(frames, device=device)
    logits = model(batch.images, audio).logits.float()
    flat = [model.postprocess(logits[i : i + 1], batch.input_sizes[i], batch.original_sizes[i])[0, 0].cpu()
            for i in range(len(frames))]
    out, start = [], 0
    for v in videos:
        out.append(flat[start : start + len(v.frames)])
        start += len(v.frames)
    return out


def evaluate(model: AVSegmenter, samples: Iterable[VideoSample], *, f_group: str = "batch4",
             batch_frames: int = 16, device: str | torch.device | None = None,
             progress: Callable[[int], None] | None = None) -> dict:
    """Score ``model`` on ``samples`` with the official AVSBench rules.

    Videos are run ``batch_frames`` frames at a time (whole videos per forward) and fed to
    :class:`AVSBenchMetric` in order, only their scored frames. Returns the metric's figures plus
    ``per_video`` (uid, category, frames, miou), ``seconds`` and ``frames_per_s``.
    """
    if f_group not in F_GROUPS:
        raise BenchError(f"--f-group must be one of {', '.join(F_GROUPS)}, got {f_group!r}")
    dev = resolve_device(device)
    was_training = model.training
    model.eval()
    model.to(dev)
    metric = AVSBenchMetric(f_group=f_group)
    per_video: list[dict] = []
    pending: list[VideoSample] = []
    t0 = time.perf_counter()

    def flush() -> None:
        for v, logits in zip(pending, predict_videos(model, pending, dev)):
            idx = [i for i, s in enumerate(v.scored) if s]
            if not idx:
                continue
            lg = torch.stack([logits[i] for i in idx])
            gt = torch.from_numpy(np.stack([np.asarray(v.masks[i], dtype=np.uint8) for i in idx]))
            metric.update(lg, gt, [v.uid] * len(idx), [v.category] * len(idx))
            per_video.append({"uid": v.uid, "category": v.category, "frames": len(idx),
                              "miou": float(frame_iou(lg, gt).mean())})
            if progress is not None:
                progress(len(idx))
        pending.clear()

    try:
        for sample in samples:
            if pending and sum(len(p.frames) for p in pending) + len(sample.frames) > batch_frames:
                flush()
            pending.append(sample)
        if pending:
            flush()
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - t0
    out = metric.compute()
    out["per_video"] = per_video
    out["seconds"] = seconds
    out["frames_per_s"] = out["frames"] / seconds if seconds > 0 else 0.0
    return out


def _result(figures: dict, *, protocol: str, dataset: str, subset: str, split: str | None,
            resolution: int | None, setting: dict | None = None, notes: Sequence[str] = (),
            skipped: dict | None = None) -> EvalResult:
    if figures["frames"] == 0:
        raise BenchError(f"{protocol} {subset}: no scored frames to evaluate")
    return EvalResult(
        protocol=protocol, dataset=dataset, subset=subset, split=split, f_group=figures["f_group"],
        miou=float(figures["miou"]), fscore=float(figures["fscore"]), frames=int(figures["frames"]),
        videos=int(figures["videos"]), groups=int(figures["groups"]), resolution=resolution,
        per_category=figures.get("per_category", {}), per_video=figures["per_video"],
        seconds=float(figures["seconds"]), frames_per_s=float(figures["frames_per_s"]),
        setting=dict(setting or {}), notes=list(notes), skipped=dict(skipped or {}),
    )


# --------------------------------------------------------------------------- options


@dataclass
class EvalOptions:
    """How to evaluate: F grouping, frame resolution (224 official; None native), device, batch."""

    f_group: str = "batch4"
    resolution: int | None = OFFICIAL_SIZE
    batch_frames: int = 16
    device: str | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
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
    cfg = read_checkpoint(checkpoint)["config"]
    if sam_checkpoint is not None:
        cfg["sam"]["checkpoint"] = str(Path(sam_checkpoint).expanduser())
    if vggish_checkpoint is not None:
        cfg["vggish"]["checkpoint"] = str(Path(vggish_checkpoint).expanduser())
    return cfg


def load_model(checkpoint: str | Path, config: dict, device: torch.device | None = None) -> AVSegmenter:
    """Rebuild a checkpoint's model from ``config`` (the stored config, possibly with local weight
    paths overridden); a partial checkpoint takes its frozen SAM from ``config``'s SAM path. Every
    stored key must fit the model (:func:`avsynth.modeling.checkpoint.load_checkpoint`)."""
    payload = read_checkpoint(checkpoint)
    if payload["trainable_only"] and not config["sam"].get("checkpoint"):
        raise BenchError(f"{checkpoint}: stores only the trained weights; give the SAM weights it was "
                         "trained from with --sam-checkpoint")
    return load_checkpoint(checkpoint, device=device, config=config)


# --------------------------------------------------------------------------- AVSBench protocols


def is_object_release(root: str | Path) -> bool:
    """Whether ``root`` is the old AVSBench object release (``Single-source/`` / ``Multi-sources/``)."""
    root = Path(root)
    return not (root / "metadata.csv").is_file() and ((root / "Single-source").is_dir()
                                                      or (root / "Multi-sources").is_dir())


def avsbench_dataset(root: str | Path, subset: str, split: str | None, resolution: int | None,
                     uids: Sequence[str] | None = None) -> AVSBenchDataset | AVSBenchObjectDataset:
    """A binary AVSBench dataset: the semantic release (``metadata.csv``) or the old object
    release (detected); a missing file is an error naming it."""
    if is_object_release(root):
        return AVSBenchObjectDataset(root, subset, split, resolution=resolution, uids=uids)
    return AVSBenchDataset(root, subset, split, resolution=resolution, mode="binary", uids=uids)


def evaluate_avsbench(model: AVSegmenter, embedder: WindowEmbedder,
                      dataset: AVSBenchDataset | AVSBenchObjectDataset,
                      opts: EvalOptions) -> dict:
    """:func:`evaluate` over an AVSBench dataset."""
    return evaluate(model, avsbench_samples(dataset, embedder, opts.num_workers), f_group=opts.f_group,
                    batch_frames=opts.batch_frames, device=opts.device)


def zero_shot(checkpoint: str | Path, root: str | Path, *, subsets: Sequence[str] = BENCH_SUBSETS,
              split: str = "test", opts: EvalOptions | None = None, config: dict | None = None,
              notes: Sequence[str] = (), model: AVSegmenter | None = None,
              embedder: WindowEmbedder | None = None) -> list[EvalResult]:
    """The checkpoint as given, evaluated on each AVSBench ``subset``'s ``split`` (``model`` /
    ``embedder``: the already loaded checkpoint and its VGGish, to avoid reloading them)."""
    opts = opts or EvalOptions()
    config = config or checkpoint_config(checkpoint)
    model = model or load_model(checkpoint, config)
    embedder = embedder or WindowEmbedder(config)
    out = []
    for subset in subsets:
        _check_subset(subset)
        ds = avsbench_dataset(root, subset, split, opts.resolution)
        if not ds.videos:
            raise BenchError(f"{root}: no {subset} videos in split {split!r}")
        figures = evaluate_avsbench(model, embedder, ds, opts)
        out.append(_result(figures, protocol="zero-shot", dataset="avsbench", subset=subset, split=split,
                           resolution=opts.resolution, notes=notes))
    return out


def _check_subset(subset: str) -> None:
    if subset not in BENCH_SUBSETS:
        raise BenchError(f"--subsets takes {', '.join(BENCH_SUBSETS)}; got {subset!r}")


def _on_cpu(opts: EvalOptions) -> bool:
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
    from avsynth.training.trainer import TrainConfig, train

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


def few_shot(checkpoint: str | Path, root: str | Path, *, subsets: Sequence[str] = BENCH_SUBSETS,
             fractions: Sequence[float] | None = None, k_shots: Sequence[int] | None = None,
             split: str = "test", out_dir: str | Path, opts: EvalOptions | None = None,
             ft: FineTuneOptions | None = None, config: dict | None = None,
             notes: Sequence[str] = (), embedder: WindowEmbedder | None = None) -> list[EvalResult]:
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
    embedder = embedder or WindowEmbedder(config)
    settings = [("fraction", float(f)) for f in fractions or ()] + [("k_shot", int(k)) for k in k_shots or ()]
    out_dir = Path(out_dir)
    results = []
    for subset in subsets:
        _check_subset(subset)
        test = avsbench_dataset(root, subset, split, opts.resolution)
        for kind, value in settings:
            source = AVSBenchSource(root=Path(root), subset=subset, **{kind: value})
            run_dir = out_dir / "finetune" / f"{subset}-{kind}{value:g}"
            best, summary = fine_tune(checkpoint, config, source, run_dir, ft, opts.f_group,
                                      out_dir / "cache" / "vggish", cpu=_on_cpu(opts))
            model = load_model(best, config)
            figures = evaluate_avsbench(model, embedder, test, opts)
            res = _result(figures, protocol="few-shot", dataset="avsbench", subset=subset, split=split,
                          resolution=opts.resolution, setting={kind: value}, notes=notes)
            res.setting["fine_tune"] = summary
            results.append(res)
    return results


# --------------------------------------------------------------------------- AVS-V3


def shipped_avs_v3(name: str) -> pd.DataFrame:
    """One shipped AVS-V3 split file (``name`` a key of :data:`AVS_V3_SPLITS`) as a DataFrame."""
    if name not in AVS_V3_SPLITS:
        raise BenchError(f"unknown AVS-V3 split {name!r}; known: {', '.join(AVS_V3_SPLITS)}")
    with resources.as_file(resources.files("avsynth.evaluation").joinpath("avs_v3").joinpath(AVS_V3_SPLITS[name])) as p:
        return load_avs_v3_split(p).table


def avs_v3_unseen_classes() -> list[str]:
    """The 14 unseen object classes of AVS-V3 (the objects of ``meta_v3_unseen``)."""
    objs = {o for a in shipped_avs_v3("unseen")["a_obj"] for o in a.split("_") if o}
    return sorted(objs - _NOT_CLASSES)


@dataclass
class AVSV3Selection:
    """The videos of each AVS-V3 split in one AVSBench tree.

    ``mode``: ``release`` (the shipped uid lists, restricted to uids in the tree's metadata; the
    rest are counted in ``missing``) or ``demo-class-split`` (the demo tree: videos split by the
    AVS-V3 unseen class names, k-shot train videos drawn per unseen class from ``seed``).
    """

    mode: str
    uids: dict[str, list[str]]
    missing: dict[str, int]
    unseen_classes: list[str]
    classes_present: list[str]

    def note(self) -> str:
        if self.mode == "release":
            lost = sum(self.missing.values())
            return ("AVS-V3 splits of GAVS (AAAI 2024) on the AVSBench release"
                    + (f"; {lost} listed uids are not in this tree's metadata.csv and were skipped "
                       f"({', '.join(f'{k}: {v}' for k, v in self.missing.items() if v)})" if lost else ""))
        return ("DEMO tree: the AVS-V3 uids do not exist here, so its class split is applied by name "
                f"(unseen classes present: {', '.join(self.classes_present) or 'none'}); not the "
                "real AVS-V3 benchmark, which needs the AVSBench semantic release")


def _objects(a_obj: str) -> set[str]:
    return {o for o in str(a_obj).split("_") if o} - _NOT_CLASSES


def select_avs_v3(metadata: pd.DataFrame, *, k_shots: Sequence[int] = (), demo: bool = False,
                  seed: int = 0, root: Path | None = None) -> AVSV3Selection:
    """Which videos of a tree (its ``metadata.csv`` as a DataFrame) make up each AVS-V3 split.

    With the real release the shipped uid lists are used (uids absent from the metadata are
    counted, not fatal, unless none of them is present). With ``demo`` (a tree without AVS-V3
    uids) the class split is applied by name. Splits: seen_train, seen_val, unseen, and for each
    k: ``{k}_shot_train`` / ``{k}_shot_test``.
    """
    unseen_cls = avs_v3_unseen_classes()
    for k in k_shots:
        if k not in AVS_V3_SHOTS:
            raise BenchError(f"AVS-V3 defines 1, 3 and 5-shot splits; got k={k}")
    present = set(metadata["uid"])
    names = ["seen_train", "seen_val", "unseen"] + [f"{k}_shot_{p}" for k in k_shots for p in ("train", "test")]
    tables = {n: shipped_avs_v3(n) for n in names}
    found = {n: [u for u in t["uid"] if u in present] for n, t in tables.items()}
    if any(found[n] for n in ("unseen", "seen_train")):
        return AVSV3Selection(
            mode="release", uids=found,
            missing={n: len(tables[n]) - len(found[n]) for n in names},
            unseen_classes=unseen_cls,
            classes_present=sorted({o for u in found["unseen"] for o in _objects(_a_obj(metadata)[u])}
                                   & set(unseen_cls)),
        )
    if not demo:
        raise BenchError(f"{root or 'the AVSBench tree'}: none of the AVS-V3 uids is in its metadata.csv; "
                         "AVS-V3 needs the AVSBench semantic release (v1m + v2 videos)")
    return _demo_selection(metadata, unseen_cls, k_shots, seed)


def _a_obj(metadata: pd.DataFrame) -> dict[str, str]:
    """uid → a_obj of a metadata table."""
    return dict(zip(metadata["uid"], metadata["a_obj"]))


def _demo_selection(metadata: pd.DataFrame, unseen_cls: list[str], k_shots: Sequence[int],
                    seed: int) -> AVSV3Selection:
    unseen_set = set(unseen_cls)
    rows = metadata.to_dict("records")
    is_unseen = {r["uid"]: bool(_objects(r["a_obj"]) & unseen_set) for r in rows}
    uids: dict[str, list[str]] = {
        "seen_train": [r["uid"] for r in rows if not is_unseen[r["uid"]] and r["split"] == "train"],
        "seen_val": [r["uid"] for r in rows if not is_unseen[r["uid"]] and r["split"] == "val"],
        "unseen": [r["uid"] for r in rows if is_unseen[r["uid"]]],
    }
    # k-shot: per unseen class (a video's first unseen object), k videos drawn from the seed,
    # preferring the AVSBench train split and always leaving one video of the class for the test
    by_class: dict[str, list[dict]] = {}
    for r in rows:
        if is_unseen[r["uid"]]:
            by_class.setdefault(min(_objects(r["a_obj"]) & unseen_set), []).append(r)
    for k in k_shots:
        train: list[str] = []
        for cls, members in sorted(by_class.items()):
            ranked = sorted(members, key=lambda r: (r["split"] != "train", hashlib.sha256(
                f"{seed}:{cls}:{r['uid']}".encode()).hexdigest()))
            train.extend(r["uid"] for r in ranked[: min(k, len(ranked) - 1)])
        chosen = set(train)
        uids[f"{k}_shot_train"] = [u for u in uids["unseen"] if u in chosen]
        uids[f"{k}_shot_test"] = [u for u in uids["unseen"] if u not in chosen]
    a_obj = _a_obj(metadata)
    present = sorted({o for u in uids["unseen"] for o in _objects(a_obj[u])} & unseen_set)
    return AVSV3Selection(mode="demo-class-split", uids=uids, missing={n: 0 for n in uids},
                          unseen_classes=unseen_cls, classes_present=present)


@dataclass(frozen=True)
class UidListSource(AVSBenchSource):
    """Trainer data: AVSBench videos named by uid lists (any AVSBench split), ``train_uids`` for
    training and ``val_uids`` for model selection (the AVS-V3 protocol mixes AVSBench splits)."""

    train_uids: tuple[str, ...] = ()
    val_uids: tuple[str, ...] = ()

    def videos(self, split: str, uids: Sequence[str] | None = None) -> list[AVSBenchVideo]:
        wanted = self.train_uids if split == self.train_split else self.val_uids
        return list(AVSBenchDataset(self.root, self.subset, None, resolution=None, mode="binary",
                                    uids=wanted).videos)


def _uid_source(root: Path, train: Sequence[str], val: Sequence[str]) -> UidListSource:
    return UidListSource(root=Path(root), subset="all", train_split="avs_v3_train",
                         val_split="avs_v3_val", train_uids=tuple(train), val_uids=tuple(val))


def avs_v3(checkpoint: str | Path, root: str | Path, *, k_shots: Sequence[int] = (), out_dir: str | Path,
           demo: bool = False, seen_epochs: int = 0, opts: EvalOptions | None = None,
           ft: FineTuneOptions | None = None, config: dict | None = None,
           notes: Sequence[str] = (), model: AVSegmenter | None = None,
           embedder: WindowEmbedder | None = None) -> list[EvalResult]:
    """The AVS-V3 protocol: unseen-class evaluation, then k-shot fine-tuning per k.

    ``seen_epochs`` > 0 first trains the checkpoint on ``seen_train`` (val ``seen_val``), as GAVS
    does; the k-shot runs start from that model (``ft.epochs`` each, GAVS: 10). With 0 the
    checkpoint itself is the base (the synthetic-pretraining zero-shot setting).
    """
    opts, ft = opts or EvalOptions(), ft or FineTuneOptions()
    root, out_dir = Path(root), Path(out_dir)
    config = config or checkpoint_config(checkpoint, ft.sam_checkpoint, ft.vggish_checkpoint)
    sel = select_avs_v3(load_metadata(root), k_shots=k_shots, demo=demo, seed=ft.seed, root=root)
    notes = [*notes, sel.note()]
    if not sel.uids["unseen"]:
        raise BenchError(f"{root}: no video of an AVS-V3 unseen class ({', '.join(sel.unseen_classes)})")
    embedder = embedder or WindowEmbedder(config)
    base = Path(checkpoint)
    results = []
    if seen_epochs > 0:
        source = _uid_source(root, sel.uids["seen_train"], sel.uids["seen_val"])
        base, summary = fine_tune(checkpoint, config, source, out_dir / "finetune" / "avs_v3-seen",
                                  FineTuneOptions(**{**asdict(ft), "epochs": seen_epochs}), opts.f_group,
                                  out_dir / "cache" / "vggish", cpu=_on_cpu(opts))
    model = load_model(base, config) if seen_epochs > 0 or model is None else model
    test = AVSBenchDataset(root, "all", None, resolution=opts.resolution, mode="binary", uids=sel.uids["unseen"])
    res = _result(evaluate_avsbench(model, embedder, test, opts), protocol="avs-v3", dataset="avs-v3",
                  subset="unseen", split=None, resolution=opts.resolution, notes=notes,
                  setting={"base": "seen_train" if seen_epochs > 0 else "checkpoint"},
                  skipped={k: v for k, v in sel.missing.items() if v})
    if seen_epochs > 0:
        res.setting["fine_tune"] = summary
    results.append(res)
    for k in k_shots:
        train_uids, test_uids = sel.uids[f"{k}_shot_train"], sel.uids[f"{k}_shot_test"]
        if not train_uids or not test_uids:
            raise BenchError(f"{root}: AVS-V3 {k}-shot has {len(train_uids)} train and {len(test_uids)} "
                             "test videos in this tree; both must be non-empty")
        val_uids = sel.uids["seen_val"] or train_uids
        source = _uid_source(root, train_uids, val_uids)
        best, summary = fine_tune(base, config, source, out_dir / "finetune" / f"avs_v3-{k}shot", ft,
                                  opts.f_group, out_dir / "cache" / "vggish", cpu=_on_cpu(opts))
        model = load_model(best, config)
        test = AVSBenchDataset(root, "all", None, resolution=opts.resolution, mode="binary", uids=test_uids)
        r = _result(evaluate_avsbench(model, embedder, test, opts), protocol="avs-v3", dataset="avs-v3",
                    subset=f"{k}_shot_test", split=None, resolution=opts.resolution, notes=notes,
                    setting={"k_shot": k, "fine_tune": summary},
                    skipped={n: sel.missing.get(n, 0) for n in (f"{k}_shot_train", f"{k}_shot_test")
                             if sel.missing.get(n)})
        results.append(r)
    return results


# --------------------------------------------------------------------------- synthetic test split


def synthetic_test(checkpoint: str | Path, shard_dir: str | Path, *, split: str = "test",
                   opts: EvalOptions | None = None, config: dict | None = None,
                   limit: int | None = None, notes: Sequence[str] = (), model: AVSegmenter | None = None,
                   embedder: WindowEmbedder | None = None) -> EvalResult:
    """The checkpoint on a shard directory's ``split`` (native resolution; a row is a video)."""
    opts = opts or EvalOptions()
    config = config or checkpoint_config(checkpoint)
    model = model or load_model(checkpoint, config)
    embedder = embedder or WindowEmbedder(config)
    figures = evaluate(model, shard_samples(shard_dir, split, embedder, limit),
                       f_group=opts.f_group, batch_frames=opts.batch_frames, device=opts.device)
    return _result(figures, protocol="synthetic", dataset="shards", subset=str(shard_dir), split=split,
                   resolution=None, notes=notes)


# --------------------------------------------------------------------------- examples for overlays


@dataclass
class VideoExample:
    """A video's frames with the predicted and ground-truth masks (for the report's overlays)."""

    uid: str
    category: str
    miou: float
    frames: list[np.ndarray]
    predictions: list[np.ndarray]  # bool H x W (p > 0.5)
    masks: list[np.ndarray]
    scored: list[bool]
    caption: str = ""


def video_examples(checkpoint: str | Path, config: dict, result: EvalResult, root: str | Path, *,
                   which: Sequence[str] = ("best", "worst"), opts: EvalOptions | None = None,
                   shard_dir: str | Path | None = None, model: AVSegmenter | None = None,
                   embedder: WindowEmbedder | None = None) -> list[VideoExample]:
    """Re-predict the best and worst videos (by mIoU) of an AVSBench or synthetic result."""
    opts = opts or EvalOptions()
    if not result.per_video:
        return []
    ranked = sorted(result.per_video, key=lambda v: (v["miou"], v["uid"]))
    chosen: list[tuple[str, dict]] = []
    for w in which:
        pick = ranked[-1] if w == "best" else ranked[0]
        if all(pick["uid"] != c[1]["uid"] for c in chosen):
            chosen.append((w, pick))
    model = model or load_model(checkpoint, config)
    embedder = embedder or WindowEmbedder(config)
    uids = [c[1]["uid"] for c in chosen]
    if result.dataset == "shards":
        wanted = set(uids)
        samples = {s.uid: s for s in shard_samples(shard_dir or result.subset, result.split or "test",
                                                   embedder, ids=wanted)}
    else:
        subset = result.subset if result.dataset == "avsbench" else "all"
        ds = (avsbench_dataset(root, subset, result.split, opts.resolution, uids) if result.dataset == "avsbench"
              else AVSBenchDataset(root, subset, result.split, resolution=opts.resolution, mode="binary", uids=uids))
        samples = {s.uid: s for s in avsbench_samples(ds, embedder)}
    dev = resolve_device(opts.device)
    model.eval().to(dev)
    out = []
    for w, info in chosen:
        s = samples[info["uid"]]
        logits = predict_videos(model, [s], dev)[0]
        out.append(VideoExample(
            uid=s.uid, category=s.category, miou=float(info["miou"]), frames=s.frames,
            predictions=[(torch.sigmoid(lg) > 0.5).numpy() for lg in logits], masks=s.masks,
            scored=s.scored, caption=f"{w}: {result.label} {s.uid} ({s.category}) mIoU {info['miou']:.3f}",
        ))
    return out


def fingerprint(path: str | Path) -> str:
    """sha256 (first 16 hex) of a file: names the checkpoint a report describes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- the whole bench


MODEL_FAMILY_NAMES = {"sama-avs": "sama_avs", "ap-sam": "ap_sam", "gavs": "gavs"}


@dataclass
class BenchConfig:
    """One ``avsynth bench`` run. ``avsbench`` None = the demo AVSBench tree (``demo_dir`` or the
    cached demo corpus). ``fractions``: few-shot on S4/MS3; ``k_shots``: the AVS-V3 k-shot splits
    (implies ``avs_v3``); ``synthetic``: a shard directory whose ``synthetic_split`` is evaluated."""

    checkpoint: Path
    out: Path
    avsbench: Path | None = None
    demo_dir: Path | None = None
    model: str | None = None  # sama-avs / ap-sam / gavs: checked against the checkpoint
    config: str | None = None  # a model config (name or YAML) replacing the stored one
    subsets: tuple[str, ...] = BENCH_SUBSETS
    split: str = "test"
    zero_shot: bool = True
    fractions: tuple[float, ...] = ()
    k_shots: tuple[int, ...] = ()
    avs_v3: bool = False
    seen_epochs: int = 0
    synthetic: Path | None = None
    synthetic_split: str = "test"
    eval: EvalOptions = field(default_factory=EvalOptions)
    fine_tune: FineTuneOptions = field(default_factory=FineTuneOptions)
    overlays: bool = True


def resolve_config(cfg: BenchConfig) -> dict:
    """The model config to evaluate with: the checkpoint's (or ``cfg.config``), weight paths applied."""
    from avsynth.modeling.registry import load_config

    if not Path(cfg.checkpoint).is_file():
        raise BenchError(f"{cfg.checkpoint}: checkpoint not found (train one with `avsynth train`)")
    stored = checkpoint_config(cfg.checkpoint, cfg.fine_tune.sam_checkpoint, cfg.fine_tune.vggish_checkpoint)
    config = stored
    if cfg.config is not None:
        config = load_config(cfg.config)
        for part, path in (("sam", cfg.fine_tune.sam_checkpoint), ("vggish", cfg.fine_tune.vggish_checkpoint)):
            if path is not None:
                config[part]["checkpoint"] = str(Path(path).expanduser())
        if config["family"] != stored["family"]:
            raise BenchError(f"--config {cfg.config} is a {config['family']} model but the checkpoint "
                             f"holds a {stored['family']} model")
    if cfg.model is not None:
        family = MODEL_FAMILY_NAMES.get(cfg.model)
        if family is None:
            raise BenchError(f"--model must be one of {', '.join(MODEL_FAMILY_NAMES)}, got {cfg.model!r}")
        if family != config["family"]:
            raise BenchError(f"--model {cfg.model} but the checkpoint holds a {config['family']} model "
                             f"({config['name']})")
    return config


def resolve_avsbench(cfg: BenchConfig) -> tuple[Path, bool]:
    """(AVSBench root, whether it is the demo tree)."""
    if cfg.avsbench is not None:
        if not (Path(cfg.avsbench) / "metadata.csv").is_file() and not is_object_release(cfg.avsbench):
            raise BenchError(f"{cfg.avsbench}: not an AVSBench root (no metadata.csv of the semantic "
                             "release, no Single-source/ or Multi-sources/ of the object release)")
        if (cfg.avs_v3 or cfg.k_shots) and is_object_release(cfg.avsbench):
            raise BenchError(f"{cfg.avsbench}: AVS-V3 needs the AVSBench semantic release (metadata.csv "
                             "with the v1m and v2 videos), not the object release")
        return Path(cfg.avsbench), False
    from avsynth.sources.demo import DemoCorpus, ensure_demo

    corpus = DemoCorpus.load(cfg.demo_dir) if cfg.demo_dir is not None else ensure_demo()
    return Path(corpus.avsbench_root), True


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = lambda s: None):
    """Run every protocol ``cfg`` asks for, write the report into ``cfg.out``.

    Returns ``(BenchRun, {name: path written})``.
    """
    from avsynth import __version__
    from avsynth.evaluation.report import BenchRun, write_report

    config = resolve_config(cfg)
    root, demo = resolve_avsbench(cfg)
    notes = []
    if demo:
        notes.append(f"DEMO AVSBench tree {root}: generated data, not the real benchmark")
        log(f"[bold yellow]No --avsbench given: running on the DEMO AVSBench tree {root} "
            "(procedural objects and sounds, NOT the real AVSBench).[/]")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[EvalResult] = []
    examples: dict[str, list[VideoExample]] = {}
    loaded = {"model": load_model(cfg.checkpoint, config), "embedder": WindowEmbedder(config)}

    def add_examples(r: EvalResult, key: str) -> None:
        if cfg.overlays:
            examples[key] = video_examples(cfg.checkpoint, config, r, root, opts=cfg.eval,
                                           shard_dir=cfg.synthetic, **loaded)

    if cfg.zero_shot:
        for r in zero_shot(cfg.checkpoint, root, subsets=cfg.subsets, split=cfg.split, opts=cfg.eval,
                           config=config, **loaded):
            log(f"zero-shot {r.subset}/{r.split}: mIoU {100 * r.miou:.2f}  F {r.fscore:.3f} "
                f"({r.videos} videos, F grouping {r.f_group})")
            results.append(r)
            add_examples(r, f"zero-shot-{r.subset}")
    if cfg.fractions:
        for r in few_shot(cfg.checkpoint, root, subsets=cfg.subsets, fractions=cfg.fractions,
                          split=cfg.split, out_dir=out, opts=cfg.eval, ft=cfg.fine_tune, config=config,
                          embedder=loaded["embedder"]):
            log(f"{r.label}: mIoU {100 * r.miou:.2f}  F {r.fscore:.3f}")
            results.append(r)
    if cfg.avs_v3 or cfg.k_shots:
        for r in avs_v3(cfg.checkpoint, root, k_shots=cfg.k_shots, out_dir=out, demo=demo,
                        seen_epochs=cfg.seen_epochs, opts=cfg.eval, ft=cfg.fine_tune, config=config,
                        **loaded):
            log(f"{r.label}: mIoU {100 * r.miou:.2f}  F {r.fscore:.3f}")
            results.append(r)
            if r.subset == "unseen" and r.setting.get("base") == "checkpoint":
                add_examples(r, "avs-v3-unseen")
    if cfg.synthetic is not None:
        r = synthetic_test(cfg.checkpoint, cfg.synthetic, split=cfg.synthetic_split, opts=cfg.eval,
                           config=config, **loaded)
        log(f"synthetic {cfg.synthetic_split}: mIoU {100 * r.miou:.2f}  F {r.fscore:.3f} ({r.frames} rows)")
        results.append(r)
        add_examples(r, "synthetic")
    if not results:
        raise BenchError("nothing to evaluate: enable zero-shot, --few-shot, --avs-v3 or --synthetic")
    run = BenchRun(
        checkpoint=str(cfg.checkpoint), checkpoint_sha256=fingerprint(cfg.checkpoint), model=config["name"],
        demo=demo, avsbench_root=str(root), f_group=cfg.eval.f_group, resolution=cfg.eval.resolution,
        results=results, notes=notes, tool_version=__version__,
        arguments=_arguments(cfg),
    )
    return run, write_report(out, run, examples)


def _arguments(cfg: BenchConfig) -> dict:
    def plain(v):
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, tuple):
            return list(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in asdict(cfg).items()}


__all__ = [
    "AVS_V3_SHOTS",
    "AVS_V3_SPLITS",
    "BENCH_SUBSETS",
    "AVSV3Selection",
    "BenchConfig",
    "BenchError",
    "EvalOptions",
    "EvalResult",
    "FineTuneOptions",
    "UidListSource",
    "VideoExample",
    "VideoSample",
    "WindowEmbedder",
    "avs_v3",
    "avs_v3_unseen_classes",
    "avsbench_dataset",
    "avsbench_samples",
    "checkpoint_config",
    "evaluate",
    "evaluate_avsbench",
    "few_shot",
    "fine_tune",
    "fingerprint",
    "is_object_release",
    "load_model",
    "predict_videos",
    "resolve_avsbench",
    "resolve_config",
    "resolve_device",
    "run_bench",
    "select_avs_v3",
    "shard_samples",
    "shipped_avs_v3",
    "synthetic_test",
    "video_examples",
    "zero_shot",
]
