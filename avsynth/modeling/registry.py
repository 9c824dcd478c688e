"""Model configs (plain YAML dicts, shipped in ``models/``) → built models.

A config::

    name: sama-avs-vit-h
    family: sama_avs            # sama_avs | ap_sam | gavs
    description: ...
    seed: 0                     # initialisation seed of the new (non-SAM) weights
    sam: {arch: vit_h, checkpoint: null}          # arch: a SAM_ARCHS name or a dict of fields
    mask2former: {arch: swin-b, checkpoint: null, num_queries: 30, labels: [background, audio]}
                                # instead of ``sam`` for the Mask2Former families (aavs,
                                # stepping_stones); ``labels: avss`` = the 71 AVSS classes
    vggish: {arch: vggish, checkpoint: null, pca_params: null, postprocess: false}
    model: {...}                # keyword arguments of the family's class (SamaAvs, ApSam, Gavs), and
                                # audio_norm: none | fit (any family; see avsynth.modeling.audio_norm)
    train: {...}                # the paper's optimisation recipe, read by the trainer

``checkpoint`` paths are local files (nothing is downloaded); ``null`` leaves random weights.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from avsynth import resources
from avsynth.errors import AvsynthError
from avsynth.modeling.aavs import M2F_ARCHS, Aavs, load_mask2former_pretrained, mask2former_config
from avsynth.modeling.ap_sam import ApSam
from avsynth.modeling.audio_norm import AUDIO_NORM_MODES
from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.gavs import Gavs
from avsynth.modeling.sam import build_sam, load_sam_checkpoint, sam_arch
from avsynth.modeling.sama_avs import SamaAvs
from avsynth.modeling.stepping_stones import SteppingStones
from avsynth.modeling.vggish import CLIP_TOKENS, VGGishEmbedder, build_vggish

MODEL_FAMILIES: dict[str, type[AVSegmenter]] = {"sama_avs": SamaAvs, "ap_sam": ApSam, "gavs": Gavs,
                                                 "aavs": Aavs, "stepping_stones": SteppingStones}
#: families built on a transformers Mask2Former (config key ``mask2former`` instead of ``sam``)
M2F_FAMILIES = {"aavs", "stepping_stones"}
_M2F_KEYS = {"arch", "checkpoint", "num_queries", "labels"}
#: The command line's model names (``--model``) → model family and its default (paper) config.
MODEL_NAMES: dict[str, tuple[str, str]] = {
    "sama-avs": ("sama_avs", "sama-avs-vit-h"),
    "ap-sam": ("ap_sam", "ap-sam-vit-h"),
    "gavs": ("gavs", "gavs-vit-b"),
    "aavs": ("aavs", "aavs-swin-b"),
    "stepping-stones": ("stepping_stones", "stepping-stones-swin-b"),
}
_TOP_KEYS = {"name", "family", "description", "seed", "sam", "mask2former", "vggish", "model", "train"}
_VGGISH_KEYS = {"arch", "checkpoint", "pca_params", "postprocess", "clip_token"}


class ModelConfigError(AvsynthError):
    """A model config is malformed (the message names the config and the problem)."""


def list_configs() -> list[str]:
    """Names of the shipped model configs."""
    return resources.list_names("models")


def validate_config(config: Mapping[str, Any], source: str = "<config>") -> dict:
    """Check a config's structure; returns a deep copy with defaults filled in."""
    if not isinstance(config, Mapping):
        raise ModelConfigError(f"{source}: a model config must be a mapping, not {type(config).__name__}")
    cfg = copy.deepcopy(dict(config))
    unknown = sorted(set(cfg) - _TOP_KEYS)
    if unknown:
        raise ModelConfigError(f"{source}: unknown keys {unknown}; allowed: {sorted(_TOP_KEYS)}")
    family = cfg.get("family")
    if family not in MODEL_FAMILIES:
        raise ModelConfigError(f"{source}: family must be one of {sorted(MODEL_FAMILIES)}, got {family!r}")
    cfg.setdefault("name", Path(source).stem)
    cfg.setdefault("seed", 0)
    if family in M2F_FAMILIES:
        _validate_m2f(cfg, source)
    else:
        _validate_sam(cfg, source)
    vgg = cfg.setdefault("vggish", {"arch": "vggish"})
    if not isinstance(vgg, Mapping) or set(vgg) - _VGGISH_KEYS:
        raise ModelConfigError(f"{source}: 'vggish' must be a mapping with keys among {sorted(_VGGISH_KEYS)}")
    if vgg.get("clip_token", "mean") not in CLIP_TOKENS:
        raise ModelConfigError(f"{source}: vggish.clip_token must be one of {list(CLIP_TOKENS)}, "
                               f"got {vgg.get('clip_token')!r}")
    model = cfg.setdefault("model", {})
    params = inspect.signature(MODEL_FAMILIES[family].__init__).parameters
    bad = sorted(set(model) - (set(params) - {"self", "sam", "m2f"}) - {"audio_norm"})
    if bad:
        raise ModelConfigError(f"{source}: {family} has no parameters {bad}")
    if model.get("audio_norm", "none") not in AUDIO_NORM_MODES:
        raise ModelConfigError(f"{source}: model.audio_norm must be one of {list(AUDIO_NORM_MODES)}, "
                               f"got {model.get('audio_norm')!r}")
    cfg.setdefault("train", {})
    return cfg


def m2f_labels(spec: Any) -> list[str]:
    """The label names of a ``mask2former.labels`` entry (``avss``: the 71 AVSBench-semantic classes)."""
    if spec == "avss":
        from avsynth.sources.avsbench import load_palette

        return list(load_palette()[0])
    return [str(x) for x in spec]


def _validate_m2f(cfg: dict, source: str) -> None:
    m2f = cfg.get("mask2former")
    if not isinstance(m2f, Mapping) or "arch" not in m2f or set(m2f) - _M2F_KEYS:
        raise ModelConfigError(f"{source}: 'mask2former' must be a mapping with an 'arch' and keys among "
                               f"{sorted(_M2F_KEYS)}")
    if "sam" in cfg:
        raise ModelConfigError(f"{source}: a {cfg['family']} config has 'mask2former', not 'sam'")
    arch = m2f["arch"]
    if not ((isinstance(arch, str) and arch in M2F_ARCHS)
            or (isinstance(arch, Mapping) and arch.get("base") in M2F_ARCHS)):
        raise ModelConfigError(f"{source}: mask2former.arch must be one of {sorted(M2F_ARCHS)} "
                               f"(or a dict with such a 'base')")
    m2f.setdefault("num_queries", 100)
    m2f.setdefault("labels", ["background", "audio"])
    m2f.setdefault("checkpoint", None)
    if len(m2f_labels(m2f["labels"])) < 2:
        raise ModelConfigError(f"{source}: mask2former.labels needs at least 2 labels (background first)")


def _validate_sam(cfg: dict, source: str) -> None:
    sam = cfg.get("sam")
    if not isinstance(sam, Mapping) or "arch" not in sam:
        raise ModelConfigError(f"{source}: 'sam' must be a mapping with an 'arch'")
    if set(sam) - {"arch", "checkpoint"}:
        raise ModelConfigError(f"{source}: unknown sam keys {sorted(set(sam) - {'arch', 'checkpoint'})}")
    try:
        sam_arch(sam["arch"])
    except (ValueError, TypeError) as err:
        raise ModelConfigError(f"{source}: sam.arch: {err}") from err


def load_config(name_or_path: str | Path) -> dict:
    """A shipped config by name (``sama-avs-vit-h``) or a YAML file path, validated."""
    try:
        path = resources.resolve("models", name_or_path)
    except FileNotFoundError as err:
        raise ModelConfigError(str(err)) from err
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ModelConfigError(f"{path}: invalid YAML: {err}") from err
    return validate_config(data, str(path))


def with_weight_paths(config: Mapping[str, Any], sam_checkpoint: str | Path | None = None,
                      vggish_checkpoint: str | Path | None = None,
                      mask2former_checkpoint: str | Path | None = None) -> dict:
    """``config`` with the local SAM / Mask2Former / VGGish checkpoint paths replaced where given (in
    place on a dict, which is also returned)."""
    cfg = config if isinstance(config, dict) else dict(config)
    m2f = cfg.get("family") in M2F_FAMILIES
    if (sam_checkpoint is not None and m2f) or (mask2former_checkpoint is not None and not m2f):
        wrong = "a SAM checkpoint" if m2f else "a Mask2Former checkpoint"
        raise ModelConfigError(f"{cfg.get('name')}: a {cfg.get('family')} model takes no {wrong}")
    for part, path in (("sam", sam_checkpoint), ("vggish", vggish_checkpoint),
                       ("mask2former", mask2former_checkpoint)):
        if path is not None:
            cfg[part]["checkpoint"] = str(Path(path).expanduser())
    return cfg


def pretrained_checkpoint(config: Mapping[str, Any]) -> str | None:
    """The local checkpoint the frozen (pre-trained) weights come from: ``sam.checkpoint`` or, for the
    Mask2Former families, ``mask2former.checkpoint`` (None: random weights)."""
    part = "mask2former" if config["family"] in M2F_FAMILIES else "sam"
    return config.get(part, {}).get("checkpoint") or None


def _local(path: str | None) -> Path | None:
    return None if path in (None, "") else Path(str(path)).expanduser()


def build_model(
    config: Mapping[str, Any],
    load_weights: bool = True,
    device: torch.device | str | None = None,
) -> AVSegmenter:
    """Build the model a config describes; ``model.config`` keeps the (validated) config.

    With ``load_weights`` the SAM checkpoint named in the config (if any) is loaded before the new
    modules are added. New modules are initialised from ``config['seed']`` without touching the
    global RNG state. Build under ``torch.device("meta")`` with ``load_weights=False`` to count
    parameters instantly.
    """
    cfg = validate_config(config, str(config.get("name", "<config>")))
    if cfg["family"] in M2F_FAMILIES:
        model = _build_m2f_model(cfg, load_weights)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(cfg["seed"]))
            sam = build_sam(sam_arch(cfg["sam"]["arch"]))
            ckpt = _local(cfg["sam"].get("checkpoint"))
            if load_weights and ckpt is not None:
                load_sam_checkpoint(sam, ckpt)
            model = MODEL_FAMILIES[cfg["family"]](sam, **_family_kwargs(cfg))
    if cfg["model"].get("audio_norm", "none") == "fit":
        model.enable_audio_norm(int(cfg["model"].get("audio_dim", 128)))
    model.config = cfg
    if device is not None:
        model = model.to(device)
    return model


def _build_m2f_model(cfg: dict, load_weights: bool) -> AVSegmenter:
    """A Mask2Former family: the HF model from its config (random weights, seeded), the pre-trained
    Mask2Former from ``mask2former.checkpoint`` (a local directory or file) when given, then the
    AAVS modules."""
    try:
        from transformers import Mask2FormerForUniversalSegmentation
    except ImportError as err:
        raise ModelConfigError(f"{cfg['name']}: needs transformers (pip install 'avsynth[aavs]')") from err
    spec = cfg["mask2former"]
    hf_config = mask2former_config(spec["arch"], int(spec["num_queries"]), m2f_labels(spec["labels"]))
    arch = spec["arch"]
    image_size = M2F_ARCHS[arch if isinstance(arch, str) else arch["base"]]["image_size"]
    if isinstance(arch, Mapping):
        image_size = int(arch.get("image_size", image_size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg["seed"]))
        m2f = Mask2FormerForUniversalSegmentation(hf_config)
        ckpt = _local(spec.get("checkpoint"))
        if load_weights and ckpt is not None:
            try:
                load_mask2former_pretrained(m2f, ckpt)
            except (OSError, RuntimeError, ValueError) as err:
                raise ModelConfigError(f"{ckpt}: cannot load the Mask2Former weights: {err}") from err
        return MODEL_FAMILIES[cfg["family"]](m2f, image_size=image_size, **_family_kwargs(cfg))


def _family_kwargs(cfg: dict) -> dict:
    """The config's ``model`` section without the keys the registry handles (``audio_norm``)."""
    return {k: v for k, v in cfg["model"].items() if k != "audio_norm"}


def build_vggish_for(config: Mapping[str, Any], load_weights: bool = True) -> VGGishEmbedder:
    """The frozen VGGish embedder a config names (weights from its local paths when given).

    Weights without a checkpoint (tiny test configs) are drawn from the config's ``seed`` without
    touching the global RNG state, so training, evaluation, every process and every resumed run
    get the same network (and the same embedding-cache fingerprint).
    """
    cfg = validate_config(config, str(config.get("name", "<config>")))
    vgg = cfg["vggish"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg["seed"]))
        return build_vggish(
            arch=vgg.get("arch", "vggish"),
            checkpoint=_local(vgg.get("checkpoint")) if load_weights else None,
            pca_params=_local(vgg.get("pca_params")) if load_weights else None,
            postprocess=bool(vgg.get("postprocess", False)) and load_weights,
            clip_token=str(vgg.get("clip_token", "mean")),
        )


@dataclass(frozen=True)
class ParameterCounts:
    """Parameter elements of a config's model (VGGish counted apart: it is frozen and separate)."""

    name: str
    family: str
    sam_arch: str
    trainable: int
    total: int
    vggish: int

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable / self.total


def parameter_counts(config: Mapping[str, Any]) -> ParameterCounts:
    """Count a config's parameters on the meta device (no memory, no weights)."""
    cfg = validate_config(config, str(config.get("name", "<config>")))
    with torch.device("meta"):
        model = build_model(cfg, load_weights=False)
        vgg = build_vggish_for(cfg, load_weights=False)
    trainable, total = model.parameter_counts()
    if cfg["family"] in M2F_FAMILIES:
        arch = "mask2former-" + str(cfg["mask2former"]["arch"] if isinstance(cfg["mask2former"]["arch"], str)
                                    else cfg["mask2former"]["arch"].get("base"))
    else:
        arch = cfg["sam"]["arch"]
    return ParameterCounts(
        name=cfg["name"],
        family=cfg["family"],
        sam_arch=arch if isinstance(arch, str) else str(arch.get("base", "custom")),
        trainable=trainable,
        total=total,
        vggish=sum(p.numel() for p in vgg.parameters()),
    )
