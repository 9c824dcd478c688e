"""AAVS (Ma, Sun, Wang, Hu, ECCV 2024): Mask2Former with adaptive audio queries, on current transformers.

The official release (``GeWu-Lab/Stepping-Stones``) vendors a patched transformers 4.35.2. Here the
same model is the stock :class:`transformers.Mask2FormerForUniversalSegmentation` with the changes
attached from outside, by hooks and added child modules, so the HF code is not copied:

* **adaptive audio query generator** (``audio_proj`` = Linear(128, h)-ReLU-Linear(h, C)): a forward
  pre-hook on the masked-attention decoder adds ``cos(query position embedding q, audio_t) · audio_t``
  to the content query q of frame t (every frame is its own batch item with its own audio second);
* **adapters** (C → C/4 → ReLU → C, child ``avs_adapt`` of the attention module): ``mode="replace"``
  (the AVS model) returns ``avs_adapt(x)`` in place of the deformable-attention ``output_proj`` of the
  pixel decoder and the decoder self-attention ``out_proj``; ``mode="follow"`` (the AVSS model)
  returns ``avs_adapt(proj(x))``. The replaced projections stay in the module (as in the official
  model, whose checkpoints carry them), unused;
* **Swin adapters** (residual, child ``swin_adapt_1`` of each Swin attention after ``o_proj`` and
  ``swin_adapt_3`` of each MLP after ``fc2``): zero in phase 1 (identity), re-drawn and trained in
  phase 2 (:meth:`Aavs.start_phase2`), as the official ``set_params`` / ``get_fineture_model`` do.

Parameter names follow the official ``.pth`` files (``model.*`` → ``m2f.*``) apart from the Swin
renames of transformers 5; :func:`convert_official_aavs` maps an official state dict.

The model's ``logits`` are the official post-processing at the input size S (masks upsampled
bilinearly to S, ``scores[c] = Σ_q softmax(class_q)[c] · sigmoid(mask_q)``): for the binary model
``s_fg − s_bg`` [B, 1, S, S], so thresholding at 0 is the official argmax (:func:`aavs_f_scores`
gives the AAVS code's F-score input ``sigmoid(2·s_fg − s_bg)``); for more labels the scores
[B, L, S, S]. Images are resized straight to S x S ("square") and ImageNet-normalised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avsynth.modeling.base import AVSegmenter, SegmentationOutput

#: Mask2Former architectures: the ADE20k Swin-B of the paper and a tiny CPU one (the fixtures' size).
M2F_ARCHS: dict[str, dict[str, Any]] = {
    "swin-b": dict(
        swin=dict(image_size=384, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12,
                  drop_path_rate=0.3),
        m2f=dict(feature_size=256, mask_feature_size=256, hidden_dim=256, encoder_feedforward_dim=1024,
                 dim_feedforward=2048, encoder_layers=6, decoder_layers=10, num_attention_heads=8,
                 train_num_points=12544),
        image_size=384,
    ),
    "tiny": dict(
        swin=dict(image_size=32, embed_dim=4, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 2], window_size=4,
                  drop_path_rate=0.3),
        m2f=dict(feature_size=32, mask_feature_size=32, hidden_dim=32, encoder_feedforward_dim=32,
                 dim_feedforward=32, encoder_layers=2, decoder_layers=4, num_attention_heads=4,
                 train_num_points=256),
        image_size=32,
    ),
}


def mask2former_config(arch: str | Mapping[str, Any], num_queries: int, labels: Sequence[str]):
    """The :class:`transformers.Mask2FormerConfig` of ``arch`` (a name of :data:`M2F_ARCHS` or a dict
    ``{base: name, swin: {...}, m2f: {...}}`` of overrides) with the paper's loss settings."""
    from transformers import Mask2FormerConfig, SwinConfig

    spec = _arch(arch)
    swin = SwinConfig(patch_size=4, out_features=["stage1", "stage2", "stage3", "stage4"], **spec["swin"])
    id2label = {i: str(name) for i, name in enumerate(labels)}
    return Mask2FormerConfig(
        backbone_config=swin, num_queries=num_queries, id2label=id2label,
        label2id={v: k for k, v in id2label.items()}, class_weight=2.0, mask_weight=5.0, dice_weight=5.0,
        no_object_weight=0.1, oversample_ratio=3.0, importance_sample_ratio=0.75, use_auxiliary_loss=True,
        ignore_value=255, **spec["m2f"])


def _arch(arch: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(arch, str):
        if arch not in M2F_ARCHS:
            raise ValueError(f"unknown mask2former arch {arch!r}; known: {sorted(M2F_ARCHS)}")
        return M2F_ARCHS[arch]
    if not isinstance(arch, Mapping) or arch.get("base") not in M2F_ARCHS:
        raise ValueError(f"a mask2former arch dict needs 'base' in {sorted(M2F_ARCHS)}")
    base = M2F_ARCHS[arch["base"]]
    return {
        "swin": {**base["swin"], **arch.get("swin", {})},
        "m2f": {**base["m2f"], **arch.get("m2f", {})},
        "image_size": int(arch.get("image_size", base["image_size"])),
    }


def bottleneck(dim: int) -> nn.Sequential:
    """The adapter of the paper: Linear(d, d/4) - ReLU - Linear(d/4, d)."""
    return nn.Sequential(nn.Linear(dim, dim // 4), nn.ReLU(), nn.Linear(dim // 4, dim))


def _swin_projections(block: nn.Module) -> list[tuple[nn.Module, nn.Linear]]:
    """(owner, projection) of the attention output and the MLP output of a Swin block: the adapters
    are children of the owner (transformers 5: ``attention.o_proj``, ``mlp.fc2``; 4.x:
    ``attention.output.dense``, ``output.dense`` — the official names)."""
    if hasattr(block.attention, "o_proj"):
        return [(block.attention, block.attention.o_proj), (block.mlp, block.mlp.fc2)]
    return [(block.attention.output, block.attention.output.dense), (block.output, block.output.dense)]


def _current_swin_names() -> bool:
    """Whether the installed transformers uses the renamed Swin modules (``q_proj``, ``mlp.fc1``)."""
    from transformers.models.swin import modeling_swin

    return hasattr(modeling_swin, "SwinMLP")


def _replace_hook(adapter: nn.Module):
    return lambda module, args, output: adapter(args[0])


def _follow_hook(adapter: nn.Module):
    return lambda module, args, output: adapter(output)


def _residual_hook(adapter: nn.Module):
    return lambda module, args, output: adapter(output) + output


class Aavs(AVSegmenter):
    """AAVS stage-1 (binary AVS) model; :class:`~avsynth.modeling.stepping_stones.SteppingStones`
    extends it for the AVSS stage 2.

    ``m2f``: a :class:`transformers.Mask2FormerForUniversalSegmentation` (its ``config.num_labels``
    classes include the background as class 0). ``adapter_mode``: ``replace`` (AVS) or ``follow``
    (AVSS). ``image_size``: the square input side (384 in the paper). ``trainable``: substrings of the
    parameter names trained in phase 1 (``swin_adapt`` is added in phase 2).
    """

    family = "aavs"
    #: the official ``set_params`` name lists
    PHASE1 = ("queries_embedder", "queries_features", "avs_adapt", "class_predictor", "audio_proj")

    def __init__(self, m2f: nn.Module, audio_dim: int = 128, audio_hidden_dim: int = 512,
                 adapter_mode: str = "replace", image_size: int = 384,
                 trainable: Sequence[str] | None = None):
        # "square": resize straight to S x S, normalise with the ImageNet mean / std (SAM's pixel
        # mean / std are the same numbers x 255), as the official Mask2FormerImageProcessor does
        super().__init__(sam=None, resize="square")
        if adapter_mode not in ("replace", "follow"):
            raise ValueError(f"adapter_mode must be 'replace' or 'follow', not {adapter_mode!r}")
        self.m2f = m2f
        cfg = m2f.config
        hidden = cfg.hidden_dim
        self.audio_proj = nn.Sequential(nn.Linear(audio_dim, audio_hidden_dim), nn.ReLU(),
                                        nn.Linear(audio_hidden_dim, hidden))
        self.adapter_mode = adapter_mode
        self._image_size = int(image_size)
        self.trainable_names = tuple(trainable) if trainable is not None else self.PHASE1
        self.phase = 1
        self._ctx: dict[str, Any] = {}
        hook = _replace_hook if adapter_mode == "replace" else _follow_hook
        pixel_encoder = m2f.model.pixel_level_module.decoder.encoder
        for layer in pixel_encoder.layers:
            attn = layer.self_attn
            attn.avs_adapt = bottleneck(attn.output_proj.out_features)
            attn.output_proj.register_forward_hook(hook(attn.avs_adapt))
        decoder = m2f.model.transformer_module.decoder
        for layer in decoder.layers:
            attn = layer.self_attn
            attn.avs_adapt = bottleneck(attn.out_proj.out_features)
            attn.out_proj.register_forward_hook(hook(attn.avs_adapt))
        for block in self.swin_blocks():
            for (owner, proj), name in zip(_swin_projections(block), ("swin_adapt_1", "swin_adapt_3")):
                adapter = bottleneck(proj.out_features)
                setattr(owner, name, adapter)
                proj.register_forward_hook(_residual_hook(adapter))
                for p in adapter.parameters():
                    nn.init.zeros_(p)  # phase 1: the Swin adapters are the identity (official set_params)
        decoder.register_forward_pre_hook(self._decoder_pre_hook, with_kwargs=True)
        self.apply_freeze()

    # ---- structure --------------------------------------------------------------------------
    def swin_blocks(self) -> list[nn.Module]:
        backbone = self.m2f.model.pixel_level_module.encoder
        swin = getattr(backbone, "swin", backbone)  # transformers 5 nests the Swin model under .swin
        return [block for stage in swin.encoder.layers for block in stage.blocks]

    def swin_adapters(self) -> list[nn.Module]:
        return [getattr(owner, name) for block in self.swin_blocks()
                for (owner, _), name in zip(_swin_projections(block), ("swin_adapt_1", "swin_adapt_3"))]

    @property
    def num_labels(self) -> int:
        return int(self.m2f.config.num_labels)

    def is_trainable(self, name: str) -> bool:
        names = self.trainable_names + (("swin_adapt",) if self.phase == 2 else ())
        return any(n in name for n in names)

    def start_phase2(self, seed: int | None = None) -> None:
        """Phase 2 of the recipe: the Swin adapters are drawn afresh (``nn.Linear``'s default
        initialisation, as the official code rebuilds the model) and train with the phase-1 set."""
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            for adapter in self.swin_adapters():
                for m in adapter:
                    if isinstance(m, nn.Linear):
                        m.reset_parameters()
        self.phase = 2
        self.apply_freeze()

    # ---- hooks ------------------------------------------------------------------------------
    def _decoder_pre_hook(self, module, args, kwargs):
        audio = self._ctx.get("audio")
        if audio is not None:
            queries = self.m2f.model.transformer_module.queries_embedder.weight  # [Q, C]
            sim = F.cosine_similarity(queries.unsqueeze(1), audio.unsqueeze(0), dim=-1)  # [Q, B]
            kwargs["inputs_embeds"] = kwargs["inputs_embeds"] + sim.unsqueeze(-1) * audio.unsqueeze(0)
        return args, kwargs

    # ---- forward ----------------------------------------------------------------------------
    def project_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """VGGish vectors [B, 128] (one per frame) → the projected audio [B, C]."""
        return self.audio_proj(audio.reshape(-1, audio.shape[-1]))

    def run_m2f(self, images: torch.Tensor, audio: torch.Tensor | None, **ctx):
        """The HF forward with the audio (and ``ctx``) visible to the hooks; ``audio=None`` is the
        audio-blind model (no query generator)."""
        self._ctx = {"audio": None if audio is None else self.project_audio(audio), **ctx}
        try:
            return self.m2f(pixel_values=images, output_auxiliary_logits=True)
        finally:
            self._ctx = {}

    def semantic_scores(self, out, size: int | None = None) -> torch.Tensor:
        """The official post-processing before resizing: [B, L, S, S] class scores (L labels)."""
        size = size or self.image_size
        masks = F.interpolate(out.masks_queries_logits, size=(size, size), mode="bilinear", align_corners=False)
        classes = out.class_queries_logits.softmax(dim=-1)[..., : self.num_labels]
        return torch.einsum("bqc,bqhw->bchw", classes, masks.sigmoid())

    def forward(self, images: torch.Tensor, audio: torch.Tensor | None) -> SegmentationOutput:
        out = self.run_m2f(images, audio)
        return self._output(out)

    def _output(self, out) -> SegmentationOutput:
        scores = self.semantic_scores(out)
        logits = (scores[:, 1:2] - scores[:, 0:1]) if self.num_labels == 2 else scores
        aux = {"class_queries_logits": out.class_queries_logits,
               "masks_queries_logits": out.masks_queries_logits,
               "aux_class_queries_logits": torch.stack([a["class_queries_logits"] for a in out.auxiliary_logits]),
               "aux_masks_queries_logits": torch.stack([a["masks_queries_logits"] for a in out.auxiliary_logits])}
        return SegmentationOutput(logits, scores.new_zeros(scores.shape[0], 1), aux)

    # ---- loss -------------------------------------------------------------------------------
    def loss_from_labels(self, outputs: SegmentationOutput, mask_labels: list[torch.Tensor],
                         class_labels: list[torch.Tensor]) -> torch.Tensor:
        """Mask2Former's loss (Hungarian matching, class 2 / mask 5 / dice 5, auxiliary layers) from
        per-frame binary masks [K_i, S, S] and their class ids [K_i]."""
        aux = outputs.aux
        layers = [{"class_queries_logits": c, "masks_queries_logits": m}
                  for c, m in zip(aux["aux_class_queries_logits"], aux["aux_masks_queries_logits"])]
        loss_dict = self.m2f.get_loss_dict(
            masks_queries_logits=aux["masks_queries_logits"], class_queries_logits=aux["class_queries_logits"],
            mask_labels=mask_labels, class_labels=class_labels, auxiliary_predictions=layers)
        return self.m2f.get_loss(loss_dict)

    def labels_from_maps(self, maps: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Class-id maps [B, H, W] (or binary masks [B, 1, H, W]) → the per-frame mask / class labels
        at the input size (nearest), as the official image processor makes them (every class present,
        background 0 included; 255 ignored)."""
        if maps.dim() == 4:
            maps = maps[:, 0]
        maps = maps.float()
        if maps.shape[-2:] != (self.image_size, self.image_size):
            maps = F.interpolate(maps[:, None], size=(self.image_size,) * 2, mode="nearest")[:, 0]
        maps = maps.round().long()
        masks, classes = [], []
        for m in maps:
            ids = torch.unique(m)
            ids = ids[ids != 255]
            classes.append(ids)
            masks.append(torch.stack([(m == c).float() for c in ids]) if len(ids) else m.new_zeros(0, *m.shape).float())
        return masks, classes

    def loss(self, outputs: SegmentationOutput, gt_masks: torch.Tensor) -> torch.Tensor:
        """``gt_masks``: {0,1} [B, 1, H, W] (binary AVS) or class ids [B, H, W] (AVSS)."""
        masks, classes = self.labels_from_maps(gt_masks)
        return self.loss_from_labels(outputs, masks, classes)

    # ---- geometry (preprocessing: the base class's "square" resize, ImageNet mean / std) -------
    @property
    def image_size(self) -> int:
        return self._image_size

    @property
    def low_res_size(self) -> int:
        return self._image_size


def aavs_f_scores(scores: torch.Tensor) -> torch.Tensor:
    """The AAVS code's F-score input from binary class scores [.., 2, H, W]: ``sigmoid(2·s_fg − s_bg)``."""
    return torch.sigmoid(2 * scores[..., 1, :, :] - scores[..., 0, :, :])


# ---- official checkpoints -------------------------------------------------------------------------
_SWIN = [
    (re.compile(r"pixel_level_module\.encoder\.(embeddings|encoder)\."), r"pixel_level_module.encoder.swin.\1."),
    (re.compile(r"\.attention\.self\.query\."), ".attention.q_proj."),
    (re.compile(r"\.attention\.self\.key\."), ".attention.k_proj."),
    (re.compile(r"\.attention\.self\.value\."), ".attention.v_proj."),
    (re.compile(r"\.attention\.self\.relative_position_bias_table$"),
     ".attention.relative_position_bias.relative_position_bias_table"),
    (re.compile(r"\.attention\.output\.dense\."), ".attention.o_proj."),
    (re.compile(r"\.attention\.output\.swin_adapt_1\."), ".attention.swin_adapt_1."),
    (re.compile(r"\.intermediate\.dense\."), ".mlp.fc1."),
    (re.compile(r"(blocks\.\d+)\.output\.dense\."), r"\1.mlp.fc2."),
    (re.compile(r"(blocks\.\d+)\.output\.swin_adapt_3\."), r"\1.mlp.swin_adapt_3."),
]


def convert_mask2former_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers-4.x Mask2Former state dict (Swin names of 4.x) → the installed transformers'
    names (unchanged on 4.x). Buffers the renamed Swin recomputes (``relative_position_index``) are
    dropped."""
    if not _current_swin_names():
        return dict(state_dict)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.endswith("relative_position_index"):
            continue
        if ".swin." not in key:
            for pattern, repl in _SWIN:
                key = pattern.sub(repl, key)
        out[key] = value
    return out


def convert_official_aavs(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official AAVS / Stepping Stones ``.pth`` state dict (``AdaptiveAVS.state_dict()`` on the
    vendored transformers 4.35) → this module's names: ``model.*`` → ``m2f.*`` with the Swin renames,
    ``audio_proj.*`` unchanged."""
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}
    unknown = sorted(k for k in state if not k.startswith(("model.", "audio_proj.")))
    if unknown:
        raise KeyError(f"not an AAVS state dict: unexpected keys {unknown[:3]}")
    renamed = {("m2f." + k[len("model."):]) if k.startswith("model.") else k: v for k, v in state.items()}
    return convert_mask2former_keys(renamed)


def read_mask2former_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a local Mask2Former checkpoint (a ``from_pretrained`` directory holding
    ``model.safetensors`` or ``pytorch_model.bin``, or such a file), keys in current names."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise FileNotFoundError(f"{path}: no model.safetensors or pytorch_model.bin")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        state = torch.load(p, map_location="cpu", weights_only=True)
    return convert_mask2former_keys(state)


def load_mask2former_pretrained(m2f: nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Load the pre-trained Mask2Former (e.g. the ADE20k Swin-B) into ``m2f``; tensors whose shapes
    differ (the class head and queries of another label / query count) are left at their fresh
    initialisation, as ``from_pretrained(..., ignore_mismatched_sizes=True)`` does. Returns
    (keys left at initialisation, checkpoint keys not used)."""
    state = read_mask2former_weights(path)
    own = m2f.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    m2f.load_state_dict(fitting, strict=False)
    return sorted(set(own) - set(fitting)), sorted(set(state) - set(fitting))




def load_official_aavs(model: Aavs, path: str | Path) -> list[str]:
    """Load a released AAVS / Stepping Stones ``.pth`` (``torch.save(model.state_dict())`` of the
    official code) into ``model`` through :func:`convert_official_aavs`. Every official tensor must
    fit; returns this model's keys the file does not hold (transformers 5's unused Swin
    ``layernorm``)."""
    from avsynth.errors import SourceError
    from avsynth.modeling.sam import read_state_dict

    p = Path(path)
    state = read_state_dict(p, "AAVS / Stepping Stones state dict")
    try:
        converted = convert_official_aavs(state)
    except KeyError as err:
        raise SourceError(p, str(err.args[0])) from err
    own = model.state_dict()
    bad = sorted(k for k, v in converted.items() if k not in own or own[k].shape != v.shape)
    if bad:
        raise SourceError(p, f"{len(bad)} tensors do not fit {type(model).__name__} (first: {bad[0]})")
    model.load_state_dict(converted, strict=False)
    return sorted(set(own) - set(converted))


__all__ = [
    "Aavs",
    "M2F_ARCHS",
    "aavs_f_scores",
    "bottleneck",
    "convert_mask2former_keys",
    "convert_official_aavs",
    "load_mask2former_pretrained",
    "load_official_aavs",
    "mask2former_config",
    "read_mask2former_weights",
]
