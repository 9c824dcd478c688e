"""``avsynth bench``: run the protocols a :class:`BenchConfig` asks for and write the report.

:func:`run_bench` loads the checkpoint's model and VGGish once, runs zero-shot
(:mod:`~avsynth.protocols.zero_shot`), few-shot (:mod:`~avsynth.protocols.few_shot`), AVS-V3
(:mod:`~avsynth.protocols.avs_v3`) and the synthetic split (:mod:`~avsynth.protocols.synthetic`),
re-predicts the best and worst videos for the overlays (:func:`video_examples`) and writes the
report (:mod:`avsynth.protocols.report`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from avsynth.evaluation.evaluate import avsbench_samples, predict_videos, shard_samples
from avsynth.io import sha256_file
from avsynth.modeling.checkpoint import read_checkpoint
from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.predictor import AVPredictor, resolve_device
from avsynth.modeling.registry import MODEL_NAMES, build_vggish_for, load_config, with_weight_paths
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.protocols.avs_v3 import avs_v3
from avsynth.protocols.common import BENCH_SUBSETS, EvalOptions, FineTuneOptions, checkpoint_config, load_model
from avsynth.protocols.few_shot import few_shot, identical_settings
from avsynth.protocols.report import BenchRun, write_report
from avsynth.protocols.results import BenchError, EvalResult, VideoExample
from avsynth.protocols.synthetic import synthetic_test
from avsynth.protocols.zero_shot import zero_shot
from avsynth.sources.avsbench import AUDIO_PREPROCESSING, AVSBenchDataset, avsbench_dataset, is_object_release


def video_examples(checkpoint: str | Path, config: dict, result: EvalResult, root: str | Path, *,
                   which: Sequence[str] = ("best", "worst"), opts: EvalOptions | None = None,
                   shard_dir: str | Path | None = None, model: AVSegmenter | None = None,
                   vggish: VGGishEmbedder | None = None) -> list[VideoExample]:
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
    vggish = vggish or build_vggish_for(config)
    uids = [c[1]["uid"] for c in chosen]
    if result.dataset == "shards":
        wanted = set(uids)
        samples = {s.uid: s for s in shard_samples(shard_dir or result.subset, result.split or "test",
                                                   vggish, ids=wanted)}
    else:
        subset = result.subset if result.dataset == "avsbench" else "all"
        ds = (avsbench_dataset(root, subset, result.split, opts.resolution, uids) if result.dataset == "avsbench"
              else AVSBenchDataset(root, subset, result.split, resolution=opts.resolution, mode="binary", uids=uids))
        samples = {s.uid: s for s in avsbench_samples(ds, vggish)}
    predictor = AVPredictor(model, device=resolve_device(opts.device))
    out = []
    with predictor.evaluating():
        for w, info in chosen:
            s = samples[info["uid"]]
            logits = predict_videos(predictor, [s])[0]
            out.append(VideoExample(
                uid=s.uid, category=s.category, miou=float(info["miou"]), frames=s.frames,
                predictions=[(torch.sigmoid(lg) > 0.5).numpy() for lg in logits], masks=s.masks,
                scored=s.scored, caption=f"{w}: {result.label} {s.uid} ({s.category}) mIoU {100 * info['miou']:.1f}%",
            ))
    return out


def official_vggish(checkpoint: str | Path, config: dict, vggish: VGGishEmbedder) -> str | None:
    """A released checkpoint read directly (not converted) that ships VGGish weights: load them
    into ``vggish`` unless the config names a VGGish file; returns the report note, None for an
    avsynth checkpoint."""
    payload = read_checkpoint(checkpoint)
    if "official" not in payload:
        return None
    rep = payload["official"]
    note = (f"released checkpoint ({rep['format']}) converted on reading: {rep['model_keys']} keys -> model, "
            f"{len(rep['missing'])} model keys not in the file (each explained), 0 unexpected")
    state = payload.get("vggish_state_dict") or {}
    if state and not config["vggish"].get("checkpoint"):
        vggish.network.load_state_dict(state, strict=True)
        note += f"; its VGGish weights ({len(state)} keys) used"
    elif state:
        note += f"; its VGGish weights not used: the config names {config['vggish']['checkpoint']}"
    return note


def recipe_of(config: dict, model: AVSegmenter | None = None) -> dict:
    """The recipe choices of a model config, as a report names them: its ``model`` keys, the
    model's effective choices (its ``recipe()``, defaults included) and how a clip becomes one
    audio vector."""
    own = {"resize": model.resize, **(model.recipe() if hasattr(model, "recipe") else {})} if model else {}
    return {"config": config["name"], **config.get("model", {}), **own,
            "vggish.clip_token": config.get("vggish", {}).get("clip_token", "mean")}


def fingerprint(path: str | Path) -> str:
    """sha256 (first 16 hex) of a file: names the checkpoint a report describes."""
    return sha256_file(path)[:16]


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


def validate_bench(cfg: BenchConfig) -> None:
    """Check every argument of every protocol ``cfg`` asks for, so that a bad one fails at once
    (not after an hour of zero-shot evaluation). One-line BenchErrors."""
    import math

    import torch

    from avsynth.protocols.common import check_subset
    from avsynth.sources.avs_v3 import AVS_V3_SHOTS as K_SHOTS

    for subset in cfg.subsets:
        check_subset(subset)
    if not cfg.subsets:
        raise BenchError("--subsets is empty; give s4, ms3 or both")
    if cfg.split not in ("test", "val"):
        raise BenchError(f"--split must be test or val, got {cfg.split!r}")
    for f in cfg.fractions:
        if not (isinstance(f, (int, float)) and math.isfinite(f) and 0 < f <= 1):
            raise BenchError(f"--few-shot fractions must be in (0, 1], got {f}")
    for k in cfg.k_shots:
        if k not in K_SHOTS:
            raise BenchError(f"--few-shot-k: AVS-V3 defines {', '.join(map(str, K_SHOTS))}-shot "
                             f"splits; got {k}")
    if cfg.seen_epochs < 0:
        raise BenchError(f"--avs-v3-seen-epochs must be 0 or more, got {cfg.seen_epochs}")
    ft = cfg.fine_tune
    if ft.lr is not None and not (math.isfinite(ft.lr) and ft.lr > 0):
        raise BenchError(f"--lr must be a number above 0, got {ft.lr}")
    if ft.batch_size is not None and ft.batch_size < 1:
        raise BenchError(f"--batch-size must be at least 1, got {ft.batch_size}")
    if ft.num_workers < 0 or cfg.eval.num_workers < 0:
        raise BenchError("--workers must be 0 or more")
    if cfg.eval.device is not None:
        try:
            device = torch.device(cfg.eval.device)
        except (RuntimeError, ValueError):
            raise BenchError(f"--device {cfg.eval.device!r} is not a device (cpu, cuda, cuda:N)") from None
        if device.type == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if count == 0 or (device.index or 0) >= count:
                raise BenchError(f"--device {cfg.eval.device}: no such CUDA device here "
                                 f"({count} GPU(s) visible); use --device cpu")
        elif device.type not in ("cpu", "cuda", "mps"):
            raise BenchError(f"--device must be cpu or cuda[:N], got {cfg.eval.device!r}")
    if cfg.synthetic is not None and not Path(cfg.synthetic).is_dir():
        raise BenchError(f"{cfg.synthetic}: --synthetic is not a shard directory")
    if cfg.avsbench is not None and not Path(cfg.avsbench).is_dir():
        raise BenchError(f"{cfg.avsbench}: --avsbench is not a folder")


def resolve_config(cfg: BenchConfig) -> dict:
    """The model config to evaluate with: the checkpoint's (or ``cfg.config``), weight paths applied."""
    if not Path(cfg.checkpoint).is_file():
        raise BenchError(f"{cfg.checkpoint}: checkpoint not found (train one with `avsynth train`)")
    stored = checkpoint_config(cfg.checkpoint, cfg.fine_tune.sam_checkpoint, cfg.fine_tune.vggish_checkpoint)
    config = stored
    if cfg.config is not None:
        config = with_weight_paths(load_config(cfg.config), cfg.fine_tune.sam_checkpoint,
                                   cfg.fine_tune.vggish_checkpoint)
        if config["family"] != stored["family"]:
            raise BenchError(f"--config {cfg.config} is a {config['family']} model but the checkpoint "
                             f"holds a {stored['family']} model")
    if cfg.model is not None:
        if cfg.model not in MODEL_NAMES:
            raise BenchError(f"--model must be one of {', '.join(MODEL_NAMES)}, got {cfg.model!r}")
        family = MODEL_NAMES[cfg.model][0]
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
    from avsynth.demo import DemoCorpus, ensure_demo

    corpus = DemoCorpus.load(cfg.demo_dir) if cfg.demo_dir is not None else ensure_demo()
    return Path(corpus.avsbench_root), True


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = lambda s: None):
    """Run every protocol ``cfg`` asks for, write the report into ``cfg.out``.

    Returns ``(BenchRun, {name: path written})``.
    """
    from avsynth import __version__

    validate_bench(cfg)  # every protocol argument, before any protocol runs
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
    loaded = {"model": load_model(cfg.checkpoint, config), "vggish": build_vggish_for(config)}
    official = official_vggish(cfg.checkpoint, config, loaded["vggish"])
    if official:
        notes.append(official)

    def add_examples(r: EvalResult, key: str) -> None:
        if cfg.overlays:
            examples[key] = video_examples(cfg.checkpoint, config, r, root, opts=cfg.eval,
                                           shard_dir=cfg.synthetic, **loaded)

    if cfg.zero_shot:
        for r in zero_shot(cfg.checkpoint, root, subsets=cfg.subsets, split=cfg.split, opts=cfg.eval,
                           config=config, **loaded):
            log(f"zero-shot {r.subset}/{r.split}: mIoU {100 * r.miou:.2f}%  F {100 * r.fscore:.2f}% "
                f"({r.videos} videos, F grouping {r.f_group})")
            results.append(r)
            add_examples(r, f"zero-shot-{r.subset}")
    if cfg.fractions:
        for warning in identical_settings(root, cfg.subsets, cfg.fractions, seed=cfg.fine_tune.seed):
            log(f"[bold yellow]warning:[/] {warning}")
            notes.append(warning)
        for r in few_shot(cfg.checkpoint, root, subsets=cfg.subsets, fractions=cfg.fractions,
                          split=cfg.split, out_dir=out, opts=cfg.eval, ft=cfg.fine_tune, config=config,
                          vggish=loaded["vggish"]):
            log(f"{r.label}: mIoU {100 * r.miou:.2f}%  F {100 * r.fscore:.2f}%")
            results.append(r)
    if cfg.avs_v3 or cfg.k_shots:
        for r in avs_v3(cfg.checkpoint, root, k_shots=cfg.k_shots, out_dir=out, demo=demo,
                        seen_epochs=cfg.seen_epochs, opts=cfg.eval, ft=cfg.fine_tune, config=config,
                        **loaded):
            log(f"{r.label}: mIoU {100 * r.miou:.2f}%  F {100 * r.fscore:.2f}%")
            results.append(r)
            if r.subset == "unseen" and r.setting.get("base") == "checkpoint":
                add_examples(r, "avs-v3-unseen")
    if cfg.synthetic is not None:
        r = synthetic_test(cfg.checkpoint, cfg.synthetic, split=cfg.synthetic_split, opts=cfg.eval,
                           config=config, **loaded)
        log(f"synthetic {cfg.synthetic_split}: mIoU {100 * r.miou:.2f}%  F {100 * r.fscore:.2f}% ({r.frames} rows)")
        results.append(r)
        add_examples(r, "synthetic")
    if not results:
        raise BenchError("nothing to evaluate: enable zero-shot, --few-shot, --avs-v3 or --synthetic")
    run = BenchRun(
        checkpoint=str(cfg.checkpoint), checkpoint_sha256=fingerprint(cfg.checkpoint), model=config["name"],
        demo=demo, avsbench_root=str(root), f_group=cfg.eval.f_group, resolution=cfg.eval.resolution,
        results=results, notes=notes, tool_version=__version__,
        arguments=_arguments(cfg), variant=cfg.eval.scoring.to_dict(),
        audio_preprocessing=AUDIO_PREPROCESSING, recipe=recipe_of(config, loaded["model"]),
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


__all__ = ["BenchConfig", "fingerprint", "official_vggish", "recipe_of", "resolve_avsbench", "resolve_config", "run_bench", "video_examples"]
