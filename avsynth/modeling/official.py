"""Checkpoints released with the papers' code, read into avsynth models.

A *format* (:class:`OfficialFormat`, registered in :data:`FORMATS`) is a function from the
official state dict to avsynth's keys, the model family and config it fits, and optionally a rule
that recognises the layout. :func:`convert_official` runs it and checks the result against the
model the config builds (on the meta device): every official key lands on a model parameter of
the same shape, or is listed as unexpected; every model key the official file does not fill is
listed as missing, with the reason where the format explains it. Nothing is dropped silently.

The converter contract: ``convert(state_dict) -> dict``; keys of the avsynth model
(``model.state_dict()``), plus ``vggish.<torchvggish key>`` for the audio network's weights (the
frozen VGGish is a separate module in avsynth); a key the converter does not understand is
returned unchanged, so it shows up as unexpected.

Registered: ``sama-avs-official`` (jinxiang-liu/anno-free-AVS ``train_avs.py`` saves
``model.state_dict()`` of ``models/sam.py`` ``SAM``) and ``gavs-official`` (the public GAVS code's
``AVSM.state_dict()``; its converter raises on a key outside that layout). Register another with
:func:`register_format` (one call: name, family, converter, config).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from avsynth.errors import AvsynthError
from avsynth.modeling.aavs import convert_official_aavs
from avsynth.modeling.gavs import OFFICIAL_MISSING_REASONS, convert_official_gavs, is_official_gavs
from avsynth.modeling.registry import build_model, load_config, validate_config
from avsynth.modeling.sam import SAM_ARCHS, SamArch

StateDict = Mapping[str, torch.Tensor]
VGGISH_PREFIX = "vggish."


class OfficialCheckpointError(AvsynthError):
    """An official checkpoint cannot be read or converted (the message names file and problem)."""


@dataclass(frozen=True)
class OfficialFormat:
    """One released checkpoint layout.

    ``convert``: official state dict → avsynth keys (see the module docstring); ``config``: the
    name of the config the released model fits, or a function of the official state dict giving
    the config (e.g. sizes read from the tensor shapes); ``detect``: True for a state dict in
    this layout (None: only by name, ``--from``); ``explained``: model-key prefix → why the
    official file has no value for it.
    """

    name: str
    family: str
    convert: Callable[[StateDict], dict]
    config: str | Callable[[StateDict], dict]
    detect: Callable[[StateDict], bool] | None = None
    explained: Mapping[str, str] = field(default_factory=dict)

    def config_for(self, state: StateDict) -> dict:
        cfg = load_config(self.config) if isinstance(self.config, str) else self.config(state)
        if cfg["family"] != self.family:
            raise OfficialCheckpointError(f"{self.name}: config {cfg['name']} is a {cfg['family']} "
                                          f"model, not {self.family}")
        return cfg


#: Official checkpoint formats by name (``avsynth convert-checkpoint --from NAME``).
FORMATS: dict[str, OfficialFormat] = {}


def register_format(fmt: OfficialFormat) -> OfficialFormat:
    """Add ``fmt`` to :data:`FORMATS` (a later registration of the same name replaces it)."""
    FORMATS[fmt.name] = fmt
    return fmt


@dataclass
class ConversionReport:
    """What a conversion did: how many official keys became model / VGGish weights, and the
    model keys left without a value (``missing``, with ``explained`` reasons) and the official
    keys that fit nowhere (``unexpected``, with the reason: unknown name or shape)."""

    format: str
    model_keys: int
    vggish_keys: int
    missing: list[str]
    explained: dict[str, str]
    unexpected: dict[str, str]

    @property
    def unexplained_missing(self) -> list[str]:
        return [k for k in self.missing if k not in self.explained]

    @property
    def clean(self) -> bool:
        """No unexpected key and every missing one explained."""
        return not self.unexpected and not self.unexplained_missing

    def lines(self) -> list[str]:
        out = [f"format {self.format}: {self.model_keys} keys -> model, {self.vggish_keys} keys -> VGGish"]
        out.append(f"unexpected keys: {len(self.unexpected)}")
        out += [f"  {k}: {why}" for k, why in self.unexpected.items()]
        out.append(f"missing keys: {len(self.missing)} ({len(self.unexplained_missing)} unexplained)")
        reasons: dict[str, list[str]] = {}
        for k in self.missing:
            reasons.setdefault(self.explained.get(k, "NOT EXPLAINED"), []).append(k)
        for why, keys in reasons.items():
            out.append(f"  {len(keys)} x {keys[0]}{' ...' if len(keys) > 1 else ''}: {why}")
        return out

    def to_dict(self) -> dict:
        return {"format": self.format, "model_keys": self.model_keys, "vggish_keys": self.vggish_keys,
                "missing": self.missing, "explained": self.explained, "unexpected": self.unexpected}


def state_dict_of(obj: Any) -> StateDict | None:
    """The tensor mapping inside a loaded checkpoint file: the mapping itself, or its
    ``state_dict`` / ``model`` entry; None if there is none."""
    for cand in (obj, *(obj.get(k) for k in ("state_dict", "model") if isinstance(obj, Mapping))):
        if isinstance(cand, Mapping) and cand and all(isinstance(v, torch.Tensor) for v in cand.values()):
            return cand
    return None


def detect_format(state: StateDict) -> OfficialFormat | None:
    """The registered format that recognises ``state``, if exactly one does."""
    hits = [f for f in FORMATS.values() if f.detect is not None and f.detect(state)]
    return hits[0] if len(hits) == 1 else None


def convert_official(state: StateDict, fmt: str | OfficialFormat,
                     config: Mapping[str, Any] | None = None) -> tuple[dict, dict, dict, ConversionReport]:
    """``(config, model_state, vggish_state, report)`` of an official state dict.

    ``config`` replaces the format's own (it must be of the format's family).
    """
    if isinstance(fmt, str):
        if fmt not in FORMATS:
            raise OfficialCheckpointError(f"unknown checkpoint format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
        fmt = FORMATS[fmt]
    cfg = validate_config(config, "--config") if config is not None else fmt.config_for(state)
    if cfg["family"] != fmt.family:
        raise OfficialCheckpointError(f"{fmt.name} holds a {fmt.family} model but config {cfg['name']} "
                                      f"is {cfg['family']}")
    converted = fmt.convert(state)
    vggish = {k[len(VGGISH_PREFIX):]: v for k, v in converted.items() if k.startswith(VGGISH_PREFIX)}
    model_part = {k: v for k, v in converted.items() if not k.startswith(VGGISH_PREFIX)}
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in build_model(cfg, load_weights=False).state_dict().items()}
    unexpected = {}
    for k, v in model_part.items():
        if k not in shapes:
            unexpected[k] = "no such model key"
        elif tuple(v.shape) != shapes[k]:
            unexpected[k] = f"shape {tuple(v.shape)} but the model's is {shapes[k]}"
    kept = {k: v for k, v in model_part.items() if k not in unexpected}
    missing = [k for k in shapes if k not in kept]
    explained = {k: why for k in missing for prefix, why in fmt.explained.items() if k.startswith(prefix)}
    report = ConversionReport(fmt.name, len(kept), len(vggish), missing, explained, unexpected)
    return cfg, kept, vggish, report


# --------------------------------------------------------------------------- SAMA-AVS

_SAMA_DOWN = re.compile(r"image_encoder\.prompt_generator\.lightweight_mlp_(\d+)\.0\.(weight|bias)$")
_SAMA_UP = "image_encoder.prompt_generator.shared_mlp."
_SAMA_AUDIO = "audio_encoder.audio_backbone."


def _strip_module(state: StateDict) -> dict:
    """Keys without the ``module.`` prefix DistributedDataParallel adds."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def convert_official_sama_avs(state: StateDict) -> dict:
    """anno-free-AVS ``SAM`` keys → avsynth ``SamaAvs`` keys (``vggish.*`` for its VGGish)."""
    out = {}
    for k, v in _strip_module(state).items():
        m = _SAMA_DOWN.match(k)
        if m:
            out[f"adapters.down.{m[1]}.{m[2]}"] = v
        elif k.startswith(_SAMA_UP):
            out["adapters.shared_up." + k[len(_SAMA_UP):]] = v
        elif k.startswith(("image_encoder.", "mask_decoder.")):
            out["sam." + k] = v
        elif k in ("pe_layer.positional_encoding_gaussian_matrix", "no_mask_embed.weight"):
            out["sam.prompt_encoder." + k] = v
        elif k.startswith(_SAMA_AUDIO):
            out[VGGISH_PREFIX + k[len(_SAMA_AUDIO):]] = v
        else:
            out[k] = v  # not understood: reported as unexpected
    return out


def _is_sama_avs(state: StateDict) -> bool:
    keys = _strip_module(state)
    return _SAMA_UP + "weight" in keys and "no_mask_embed.weight" in keys


def infer_sam_arch(state: StateDict, prefix: str = "image_encoder.",
                   decoder: str = "mask_decoder.") -> str | dict:
    """The SAM shape of an official state dict, from its tensor shapes: a :data:`SAM_ARCHS` name
    when one matches, else a full arch dict. Not in the weights (set as the official code does):
    the decoder's 8 attention heads, the prompt encoder's 16 mask channels."""
    s = _strip_module(state)
    proj = s[prefix + "patch_embed.proj.weight"]
    dim, patch = int(proj.shape[0]), int(proj.shape[-1])
    grid = int(s[prefix + "pos_embed"].shape[1])
    depth = len({k.split(".")[2] for k in s if k.startswith(prefix + "blocks.")})
    rel = [int(s[f"{prefix}blocks.{i}.attn.rel_pos_h"].shape[0]) for i in range(depth)]
    head_dim = int(s[prefix + "blocks.0.attn.rel_pos_h"].shape[1])
    glob = tuple(i for i, r in enumerate(rel) if r == 2 * grid - 1)
    local = [r for r in rel if r != 2 * grid - 1]
    layers = {k.split(".")[3] for k in s if k.startswith(decoder + "transformer.layers.")}
    arch = SamArch(
        encoder_embed_dim=dim, encoder_depth=depth, encoder_num_heads=dim // head_dim,
        encoder_global_attn_indexes=glob, image_size=grid * patch, patch_size=patch,
        window_size=(local[0] + 1) // 2 if local else 14,
        prompt_embed_dim=int(s[prefix + "neck.0.weight"].shape[0]),
        decoder_depth=len(layers),
        decoder_mlp_dim=int(s[decoder + "transformer.layers.0.mlp.lin1.weight"].shape[0]),
        iou_head_hidden_dim=int(s[decoder + "iou_prediction_head.layers.0.weight"].shape[0]),
        num_multimask_outputs=int(s[decoder + "mask_tokens.weight"].shape[0]) - 1,
    )
    for name, known in SAM_ARCHS.items():
        if known == arch:
            return name
    return arch.to_dict()


def sama_avs_official_config(state: StateDict) -> dict:
    """The ``sama-avs-vit-h`` config (the official recipe) with the SAM shape and adapter sizes
    read from the checkpoint."""
    s = _strip_module(state)
    cfg = load_config("sama-avs-vit-h")
    cfg["name"] = "sama-avs-official"
    cfg["description"] = "SAMA-AVS official checkpoint (anno-free-AVS layout), official recipe"
    cfg["sam"]["arch"] = infer_sam_arch(s)
    down = s["image_encoder.prompt_generator.lightweight_mlp_0.0.weight"]
    cfg["model"]["adapter_dim"], cfg["model"]["audio_dim"] = int(down.shape[0]), int(down.shape[1])
    return validate_config(cfg, "sama-avs-official")


register_format(OfficialFormat(
    name="sama-avs-official", family="sama_avs", convert=convert_official_sama_avs,
    config=sama_avs_official_config, detect=_is_sama_avs,
    explained={
        "sam.prompt_encoder.point_embeddings.": "SAM's point/box prompt embeddings: the official model "
                                                "has no prompt encoder and SAMA-AVS uses no sparse prompt",
        "sam.prompt_encoder.not_a_point_embed.": "SAM's padding-point embedding: no point prompts in SAMA-AVS",
        "sam.prompt_encoder.mask_downscaling.": "SAM's mask-prompt encoder: SAMA-AVS feeds no mask prompt "
                                                "(no_mask_embed is the dense prompt)",
    },
))

# GAVS: the public code's AVSM.state_dict() (GeWu-Lab/Generalizable-Audio-Visual-Segmentation);
# converter, detection and missing-key reasons live with the model (avsynth.modeling.gavs).
register_format(OfficialFormat(
    name="gavs-official", family="gavs", convert=convert_official_gavs, config="gavs-vit-b-public-code",
    detect=is_official_gavs, explained=OFFICIAL_MISSING_REASONS,
))

# AAVS / Stepping Stones: the released ``.pth`` files (GeWu-Lab/Stepping-Stones, AdaptiveAVS.state_dict()
# on its vendored transformers 4.35); the key map lives with the model (avsynth.modeling.aavs). The
# three layouts share their key names, so they are chosen by name (``--from``), not detected.
_M2F_LAYERNORM = {prefix: "transformers 5's extra Swin layernorm: unused by Mask2Former, absent from 4.35 files"
                  for prefix in ("m2f.model.pixel_level_module.encoder.swin.layernorm.",
                                 "m2f.model.pixel_level_module.encoder.layernorm.")}
for _name, _family, _config in (("aavs-official", "aavs", "aavs-swin-b"),
                                ("aavs-avss-official", "aavs", "aavs-avss-swin-b"),
                                ("stepping-stones-official", "stepping_stones", "stepping-stones-swin-b")):
    register_format(OfficialFormat(name=_name, family=_family, convert=convert_official_aavs, config=_config,
                                   explained=_M2F_LAYERNORM))

__all__ = ["FORMATS", "ConversionReport", "OfficialCheckpointError", "OfficialFormat", "convert_official",
           "convert_official_sama_avs", "detect_format", "infer_sam_arch", "register_format",
           "sama_avs_official_config", "state_dict_of"]
