"""Stepping Stones (Ma et al., ECCV 2024), stage 2 of the AVSS pipeline: AAVS conditioned on a binary mask.

Stage 2 restarts from the pre-trained Mask2Former (the stage-1 weights are not loaded) and reads a
stage-1 binary mask per frame — the ground truth (``mask != 0``) in training, the stage-1 predictions
in validation / test:

* the first decoder layer's attention mask is the stage-1 mask resized (bilinear) to the first
  feature level and thresholded at 0.5 (a hook on the decoder's first ``mask_predictor`` call);
* learned ``silence_embed`` / ``audio_embed`` / ``uncertain_embed`` are added to the decoder's
  position embeddings where the resized mask is ≤ 0.4 / ≥ 0.6 / in between (decoder pre-hook);
* ``mask_features += bilinear(mask)`` (the decoder's ``pixel_embeddings``, same pre-hook).

The adapters follow the projections (``mode="follow"``); the content queries stay frozen.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from avsynth.modeling.aavs import Aavs
from avsynth.modeling.base import SegmentationOutput

SILENCE_AT, AUDIO_AT = 0.4, 0.6


def _resize(mask: torch.Tensor, size) -> torch.Tensor:
    """[B, H, W] → [B, 1, h, w], bilinear (align_corners=False), as the official interpolation."""
    return F.interpolate(mask.unsqueeze(1).float(), size=tuple(size), mode="bilinear")


class SteppingStones(Aavs):
    """The stage-2 AVSS model; ``forward(images, audio, stage1_masks)``."""

    family = "stepping_stones"
    PHASE1 = ("queries_embedder", "avs_adapt", "class_predictor", "audio_proj", "audio_embed", "silence_embed",
              "uncertain_embed")

    def __init__(self, m2f: nn.Module, audio_dim: int = 128, audio_hidden_dim: int = 512,
                 adapter_mode: str = "follow", image_size: int = 384, trainable: Sequence[str] | None = None):
        module = m2f.model.transformer_module
        hidden = m2f.config.hidden_dim
        module.audio_embed = nn.Embedding(1, hidden)
        module.silence_embed = nn.Embedding(1, hidden)
        module.uncertain_embed = nn.Embedding(1, hidden)
        super().__init__(m2f, audio_dim, audio_hidden_dim, adapter_mode, image_size, trainable)
        module.decoder.mask_predictor.register_forward_hook(self._first_mask_hook)

    def _decoder_pre_hook(self, module, args, kwargs):
        args, kwargs = super()._decoder_pre_hook(module, args, kwargs)
        mask = self._ctx.get("stage1")
        if mask is None:
            return args, kwargs
        tm = self.m2f.model.transformer_module
        kwargs["pixel_embeddings"] = kwargs["pixel_embeddings"] + _resize(mask, kwargs["pixel_embeddings"].shape[-2:])
        embeds = []
        for pos, size in zip(kwargs["multi_stage_positional_embeddings"], kwargs["feature_size_list"]):
            prompt = _resize(mask, size).flatten(2).squeeze(1).transpose(0, 1).unsqueeze(-1)  # [hw, B, 1]
            extra = torch.where(prompt <= SILENCE_AT, tm.silence_embed.weight[0],
                                torch.where(prompt >= AUDIO_AT, tm.audio_embed.weight[0], tm.uncertain_embed.weight[0]))
            embeds.append(pos + extra)
        kwargs["multi_stage_positional_embeddings"] = embeds
        self._ctx["first_mask_pending"] = True
        return args, kwargs

    def _first_mask_hook(self, module, args, output):
        if not self._ctx.get("first_mask_pending"):
            return output
        self._ctx["first_mask_pending"] = False
        predicted, attention = output
        size = args[2]
        keep = _resize(self._ctx["stage1"], size).flatten(2)  # [B, 1, hw]
        heads = attention.shape[0] // keep.shape[0]
        masked = (keep < 0.5).unsqueeze(1).expand(-1, heads, attention.shape[1], -1).flatten(0, 1)
        return predicted, masked.reshape(attention.shape).to(attention.dtype)

    def forward(self, images: torch.Tensor, audio: torch.Tensor | None,
                stage1_masks: torch.Tensor | None = None) -> SegmentationOutput:
        """``stage1_masks``: [B, H, W] in [0, 1] (any size; resized inside)."""
        if stage1_masks is None:
            raise ValueError("SteppingStones needs the stage-1 masks of the frames (stage1_masks)")
        out = self.run_m2f(images, audio, stage1=stage1_masks.to(images.device).float())
        return self._output(out)


__all__ = ["SteppingStones"]
