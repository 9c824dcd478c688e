"""GAVS (Wang et al., AAAI 2024): a frozen SAM prompted by sound, tuned with small adapters.

The modules are those of the public code (GeWu-Lab/Generalizable-Audio-Visual-Segmentation,
commit 753b23b), attached where the public code has them and under its names, so an official
checkpoint loads key for key (``sam.`` + the official ``model_v.`` key; :func:`convert_official_gavs`):

* ``sam.mask_decoder.audio_proj``: the audio projection, Linear(128, 512)-ReLU-Linear(512, 256); its
  output is the single sparse prompt token of the mask decoder (the dense prompt is SAM's no-mask
  embedding). It trains.
* ``sam.image_encoder.blocks.<i>.adapter_v``: Linear(dim, 128)-ReLU-Linear(128, dim), present in every
  ViT block, applied in blocks ``i >= tune_v`` on the MLP output (``mlp_out + adapter_v(mlp_out)``);
  no audio enters the encoder.
* ``sam.mask_decoder.transformer.layers.<j>.adapter_tf``: ``x + proj(GELU(dense(x)))`` (256 → 128 →
  256) on the token MLP output of each two-way decoder block.
* trainable: ``audio_proj``, ``adapter_tf``, ``adapter_v`` of blocks >= ``tune_v``, the LayerNorms of
  ViT blocks >= ``tune_v + 1``; everything else is frozen.
* training: the audio embedding is *replaced* by ``randn_like(a) * std(a)`` (per frame) before the
  projection (``noise_replaces_audio_in_training``); BCE on the logits upsampled to the frame's
  native size (``loss_size: native``); frames read by OpenCV (BGR) normalised with SAM's RGB
  mean/std (``channel_order: bgr``).

The paper's version is the same network with options on top (config ``gavs-vit-b``):
``adaptive_noise`` (a learnable ``mu + sigma * eps`` added to the projected audio; ``mu`` at
inference), ``visual_cue`` (the mean of the frozen early ViT tokens, projected, added to the prompt)
and ``triplet_weight`` (BCE + cosine triplet alignment between the projected audio and the
mask-pooled image embedding of the same / another sample).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence

import torch
from segment_anything.modeling import Sam
from torch import nn
from torch.nn import functional as F

from avsynth.errors import AvsynthError
from avsynth.modeling.adapters import AdaptiveNoise
from avsynth.modeling.base import AVSegmenter, SegmentationOutput
from avsynth.modeling.losses import cosine_triplet_loss, masked_average
from avsynth.modeling.sam import encoder_neck, encoder_tokens
from avsynth.modeling.transforms import CHANNEL_ORDERS, input_size_for

LOSS_SIZES = ("native", "low_res")


class TokenAdapter(nn.Module):
    """The public code's decoder adapter (``AdapterLayer``): ``x + proj(GELU(dense(x)))``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.dense = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(F.gelu(self.dense(x)))


class Gavs(AVSegmenter):
    """SAM (ViT-B in the paper) + audio prompt token + encoder / decoder adapters."""

    family = "gavs"

    def __init__(
        self,
        sam: Sam,
        audio_dim: int = 128,
        audio_hidden_dim: int = 512,
        tune_v: int = 9,
        encoder_adapter_dim: int = 128,
        decoder_adapter_dim: int = 128,
        noise_replaces_audio_in_training: bool = True,
        adaptive_noise: bool = False,
        noise_init_sigma: float = 1.0,
        visual_cue: bool = False,
        triplet_weight: float = 0.0,
        triplet_margin: float = 0.2,
        loss_size: str = "native",
        channel_order: str = "bgr",
        resize: str = "longest",
        grad_checkpointing: bool = False,
    ):
        super().__init__(sam, resize, grad_checkpointing)
        encoder = sam.image_encoder
        depth = len(encoder.blocks)
        if not 0 <= tune_v <= depth:
            raise ValueError(f"tune_v={tune_v} must be within 0..{depth} (encoder depth)")
        if loss_size not in LOSS_SIZES:
            raise ValueError(f"loss_size must be one of {LOSS_SIZES}, got {loss_size!r}")
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
        dim = encoder.patch_embed.proj.out_channels
        prompt_dim = sam.prompt_encoder.embed_dim
        self.tune_v = tune_v
        self.loss_size = loss_size
        self.channel_order = channel_order
        self.native_targets = loss_size == "native"
        self.noise_replaces_audio_in_training = noise_replaces_audio_in_training
        self.triplet_weight = triplet_weight
        self.triplet_margin = triplet_margin

        # the public code's modules, where it has them (official names → official checkpoints load)
        sam.mask_decoder.audio_proj = nn.Sequential(
            nn.Linear(audio_dim, audio_hidden_dim), nn.ReLU(), nn.Linear(audio_hidden_dim, prompt_dim)
        )
        for i, block in enumerate(encoder.blocks):
            block.adapter_v = nn.Sequential(
                nn.Linear(dim, encoder_adapter_dim), nn.ReLU(), nn.Linear(encoder_adapter_dim, dim)
            )
            if i >= tune_v:  # mlp_out + adapter_v(mlp_out), inside SAM's own Block.forward
                _attach(block.mlp, block.adapter_v, _residual_hook)
        for layer in sam.mask_decoder.transformer.layers:
            layer.adapter_tf = TokenAdapter(prompt_dim, decoder_adapter_dim)
            _attach(layer.mlp, layer.adapter_tf, _replace_hook)
        # the paper's additions (absent from the public code)
        self.noise = AdaptiveNoise(prompt_dim, noise_init_sigma) if adaptive_noise else None
        self.visual_proj = nn.Linear(dim, prompt_dim) if visual_cue else None
        self.apply_freeze()

    @property
    def audio_proj(self) -> nn.Sequential:
        """Audio embedding [B, audio_dim] → prompt token [B, prompt_dim] (``sam.mask_decoder.audio_proj``)."""
        return self.sam.mask_decoder.audio_proj

    def is_trainable(self, name: str) -> bool:
        head = name.split(".")[0]
        if head in ("noise", "visual_proj"):
            return True
        if name.startswith("sam.mask_decoder.audio_proj.") or ".adapter_tf." in name:
            return True
        m = re.match(r"sam\.image_encoder\.blocks\.(\d+)\.(\w+)\.", name)
        if m:
            block, part = int(m.group(1)), m.group(2)
            if part == "adapter_v":
                return block >= self.tune_v
            return part.startswith("norm") and block >= self.tune_v + 1
        return False

    def audio_input(self, audio: torch.Tensor) -> torch.Tensor:
        """What enters the audio projection: in training with ``noise_replaces_audio_in_training``
        ``randn_like(a) * std(a)`` (each frame's own unbiased std), otherwise ``a``."""
        if self.training and self.noise_replaces_audio_in_training:
            return torch.randn_like(audio) * audio.std(dim=-1, keepdim=True)
        return audio

    def build_prompt(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt [B, P], projected audio [B, P]) from audio embeddings and pooled early tokens."""
        audio_prompt = self.audio_proj(self.audio_input(audio))
        prompt = audio_prompt
        if self.noise is not None:
            prompt = prompt + self.noise(audio.shape[0])
        if self.visual_proj is not None:
            prompt = prompt + self.visual_proj(visual)
        return prompt, audio_prompt

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> SegmentationOutput:
        encoder = self.sam.image_encoder
        early = list(encoder.patch_embed.parameters()) + list(encoder.blocks[: self.tune_v].parameters())
        if encoder.pos_embed is not None:
            early.append(encoder.pos_embed)
        frozen = contextlib.nullcontext() if any(p.requires_grad for p in early) else torch.no_grad()
        with frozen:  # nothing before block tune_v trains (unless a config unfreezes it)
            x = encoder_tokens(encoder, images)
            for block in encoder.blocks[: self.tune_v]:
                x = block(x)
        prompt, audio_prompt = self.build_prompt(audio, x.mean(dim=(1, 2)))
        for block in encoder.blocks[self.tune_v :]:
            x = self.run_block(block, x)
        embeddings = encoder_neck(encoder, x)
        logits, iou = self.decode(embeddings, prompt.unsqueeze(1))
        return SegmentationOutput(logits, iou, {"audio_prompt": audio_prompt, "image_embeddings": embeddings})

    def loss(self, outputs: SegmentationOutput, gt_masks: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """BCE (+ triplet alignment). ``gt_masks``: {0,1} masks at each frame's native size, a
        [B, 1, H, W] tensor or a list of [H, W] (sizes may differ). With ``loss_size: native`` the
        logits are mapped to each mask's size the way inference maps them (upsample to S x S, crop
        the padding, resize) and BCE is averaged per frame, then over frames (the public code's
        per-video loss); with ``low_res`` the masks are resized (nearest) to the logits instead."""
        masks = [m.float().reshape(m.shape[-2:]) for m in gt_masks]
        logits = outputs.logits
        if self.loss_size == "native":
            per_frame = []
            for i, m in enumerate(masks):
                size = (int(m.shape[0]), int(m.shape[1]))
                up = self.postprocess(logits[i : i + 1], input_size_for(size, self.image_size, self.resize), size)
                per_frame.append(F.binary_cross_entropy_with_logits(up[0, 0], m))
            total = torch.stack(per_frame).mean()
        else:
            small = torch.stack([F.interpolate(m[None, None], size=logits.shape[-2:], mode="nearest")[0] for m in masks])
            total = F.binary_cross_entropy_with_logits(logits, small)
        if self.triplet_weight:
            emb = outputs.aux["image_embeddings"]
            placed = torch.stack([self._in_input_frame(m, emb.shape[-2:]) for m in masks])
            positive = masked_average(emb, placed)
            total = total + self.triplet_weight * cosine_triplet_loss(
                outputs.aux["audio_prompt"], positive, self.triplet_margin
            )
        return total

    def _in_input_frame(self, mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """A native-size mask placed like its frame in the S x S input, at ``size`` [1, h, w]."""
        s = self.image_size
        h, w = input_size_for((int(mask.shape[0]), int(mask.shape[1])), s, self.resize)
        canvas = mask.new_zeros(1, 1, s, s)
        canvas[..., :h, :w] = F.interpolate(mask[None, None], size=(h, w), mode="nearest")
        return F.interpolate(canvas, size=tuple(size), mode="area")[0]


def _attach(mlp: nn.Module, adapter: nn.Module, hook) -> None:
    """Run ``adapter`` on ``mlp``'s output through a forward hook. The adapter is registered where
    the public code has it (its keys); ``mlp`` only points at it, outside the module registry, so
    the state dict is unchanged and a deep copy of the model points at the copied adapter."""
    object.__setattr__(mlp, "_gavs_adapter", adapter)
    mlp.register_forward_hook(hook)


def _residual_hook(mlp: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    """Encoder blocks >= tune_v: ``mlp_out + adapter_v(mlp_out)``."""
    return output + mlp._gavs_adapter(output)


def _replace_hook(mlp: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    """Decoder blocks: ``adapter_tf(mlp_out)`` (the adapter carries its own skip connection)."""
    return mlp._gavs_adapter(output)


# ---- official checkpoints -----------------------------------------------------------------------

_OFFICIAL_PREFIX = "model_v."  # the public code saves AVSM.state_dict(); SAM sits in AVSM.model_v
_SAM_PARTS = ("image_encoder.", "prompt_encoder.", "mask_decoder.")
_OFFICIAL_MARKERS = (
    re.compile(r"(?:model_v\.)?image_encoder\.blocks\.\d+\.adapter_v\."),
    re.compile(r"(?:model_v\.)?mask_decoder\.transformer\.layers\.\d+\.adapter_tf\."),
    re.compile(r"(?:model_v\.)?mask_decoder\.audio_proj\."),
)

#: Why a key of avsynth's GAVS can be absent from an official checkpoint.
OFFICIAL_MISSING_REASONS = {
    "noise.": "the paper's adaptive noise is not in the public code; it keeps its initialisation "
              "(mu 0, sigma noise_init_sigma)",
    "visual_proj.": "the paper's visual cue is not in the public code; it keeps its seeded initialisation",
}


class OfficialCheckpointError(AvsynthError):
    """A state dict claimed to be an official GAVS checkpoint holds keys outside that layout."""


def is_official_gavs(state_dict: Mapping[str, object]) -> bool:
    """True when ``state_dict`` has the public GAVS code's layout (``AVSM.state_dict()`` or its
    ``model_v`` SAM alone): no avsynth ``sam.`` keys and the public code's own modules present."""
    keys = list(state_dict)
    if not keys or any(k.startswith("sam.") for k in keys):
        return False
    return any(p.match(k) for k in keys for p in _OFFICIAL_MARKERS)


def convert_official_gavs(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official GAVS state dict → avsynth's ``gavs-vit-b-public-code`` state dict.

    Keys ``model_v.<k>`` (or ``<k>`` when only the SAM was saved) become ``sam.<k>``; ``k`` must be
    under ``image_encoder.`` / ``prompt_encoder.`` / ``mask_decoder.``. Anything else raises
    :class:`OfficialCheckpointError` listing the keys. Missing keys are a matter of the target model:
    :func:`official_missing_keys` names and explains them (none for the public-code config).
    """
    out: dict[str, torch.Tensor] = {}
    unexpected = []
    for key, value in state_dict.items():
        k = key[len(_OFFICIAL_PREFIX):] if key.startswith(_OFFICIAL_PREFIX) else key
        if not k.startswith(_SAM_PARTS) or not isinstance(value, torch.Tensor):
            unexpected.append(key)
            continue
        out["sam." + k] = value
    if unexpected:
        shown = ", ".join(unexpected[:10]) + (f", ... ({len(unexpected)} in all)" if len(unexpected) > 10 else "")
        raise OfficialCheckpointError(
            f"not an official GAVS checkpoint: {len(unexpected)} keys outside its layout "
            f"(model_v.image_encoder/prompt_encoder/mask_decoder): {shown}"
        )
    return out


def official_missing_keys(model: nn.Module, converted: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """Keys of ``model`` that a converted official checkpoint lacks → why (raises on a key with no
    known reason: that would be a layout this converter does not understand)."""
    missing = {}
    for key in model.state_dict():
        if key in converted:
            continue
        reason = next((r for p, r in OFFICIAL_MISSING_REASONS.items() if key.startswith(p)), None)
        if reason is None:
            raise OfficialCheckpointError(f"the official GAVS checkpoint lacks {key!r}, which the public code has")
        missing[key] = reason
    return missing
