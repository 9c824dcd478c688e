"""SAMA-AVS (Liu et al., WACV 2024): SAM with audio adapters in the image encoder.

Before each ViT block i every image token gets ``shared_Linear(hidden→C)(GELU(Linear_i(128→hidden)
(audio)))``. The encoder (patch embedding, blocks, neck) and the prompt encoder are frozen; the mask
decoder trains (single mask, no sparse prompts, the "no mask" dense prompt). Loss: BCE + soft IoU.

Parameter count for ViT-H: the adapters hold 32 x (128·512 + 512) + (512·1280 + 1280) = 2,770,176
parameters, 0.3884 % of the rest of the system: SAM ViT-H (641,090,608) + VGGish (72,141,184).
"""

from __future__ import annotations

import torch
from segment_anything.modeling import Sam

from avsynth.modeling.adapters import AudioTokenAdapters
from avsynth.modeling.base import AVSegmenter, SegmentationOutput
from avsynth.modeling.losses import bce_iou_loss
from avsynth.modeling.sam import encoder_neck, encoder_tokens, single_mask_unused


class SamaAvs(AVSegmenter):
    """SAM + per-block audio adapters; ``audio_dim``-d audio, ``adapter_dim`` hidden units."""

    family = "sama_avs"

    def __init__(
        self,
        sam: Sam,
        audio_dim: int = 128,
        adapter_dim: int = 512,
        bce_weight: float = 1.0,
        iou_weight: float = 1.0,
        resize: str = "longest",
        grad_checkpointing: bool = False,
    ):
        super().__init__(sam, resize, grad_checkpointing)
        encoder = sam.image_encoder
        dim = encoder.patch_embed.proj.out_channels
        self.adapters = AudioTokenAdapters(len(encoder.blocks), dim, audio_dim, adapter_dim)
        self.bce_weight = bce_weight
        self.iou_weight = iou_weight
        self.apply_freeze()

    def is_trainable(self, name: str) -> bool:
        if name.startswith("adapters."):
            return True
        if name.startswith("sam.mask_decoder."):
            return not single_mask_unused(name[len("sam.") :])
        return False

    def encode_image(self, images: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        """Image embeddings [B, C, h, w]; ``audio=None`` runs the plain (vanilla SAM) encoder."""
        encoder = self.sam.image_encoder
        x = encoder_tokens(encoder, images)
        for i, block in enumerate(encoder.blocks):
            if audio is not None:
                x = x + self.adapters(audio, i)
            x = self.run_block(block, x)
        return encoder_neck(encoder, x)

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> SegmentationOutput:
        embeddings = self.encode_image(images, audio)
        logits, iou = self.decode(embeddings, self.empty_sparse(images.shape[0], embeddings))
        return SegmentationOutput(logits, iou)

    def loss(self, outputs: SegmentationOutput, gt_masks: torch.Tensor) -> torch.Tensor:
        return bce_iou_loss(outputs.logits, gt_masks, self.bce_weight, self.iou_weight)
