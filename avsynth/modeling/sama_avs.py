"""SAMA-AVS (Liu et al., WACV 2024): SAM with audio adapters in the image encoder.

Before each ViT block i every image token gets ``shared_Linear(hidden→C)(GELU(Linear_i(128→hidden)
(audio)))``. The encoder (patch embedding, blocks, neck) and the prompt encoder are frozen; the mask
decoder trains (single mask, no sparse prompts, the "no mask" dense prompt). Loss: BCE + soft IoU.

Recipe options (the official code, ``jinxiang-liu/anno-free-AVS`` ``models/sam.py``, is the
default of the ``sama-avs-vit-h`` config; avsynth's former choices stay selectable):

* ``pretrained_dense_pe``: the official model keeps the dense positional encoding (``pe_layer``)
  and ``no_mask_embed`` at its top level, so SAM's checkpoint never fills them: both start random
  (``randn`` Gaussian matrix, ``nn.Embedding``'s N(0, 1)) and ``no_mask_embed`` trains. ``False``
  reproduces that (drawn from the config's seed); ``True`` keeps SAM's values, frozen.
* ``loss_resolution``: ``"input"`` (official) upsamples the low-res logits bilinearly to the S x S
  input and compares them with the S x S target mask; ``"low_res"`` compares the low-res logits
  with the target nearest-resized to them.
* ``iou_eps``: the soft-IoU smoothing; the official ``_iou_loss`` has none (0).

Parameter count for ViT-H: the adapters hold 32 x (128·512 + 512) + (512·1280 + 1280) = 2,770,176
parameters, 0.3884 % of the rest of the system: SAM ViT-H (641,090,608) + VGGish (72,141,184).
"""

from __future__ import annotations

import torch
from segment_anything.modeling import Sam

from avsynth.modeling.adapters import AudioTokenAdapters
from avsynth.modeling.base import AVSegmenter, SegmentationOutput
from avsynth.modeling.losses import bce_iou_loss, upsample_logits
from avsynth.modeling.sam import encoder_neck, encoder_tokens, single_mask_unused


LOSS_RESOLUTIONS = ("input", "low_res")


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
        pretrained_dense_pe: bool = True,
        loss_resolution: str = "low_res",
        iou_eps: float = 1.0,
    ):
        super().__init__(sam, resize, grad_checkpointing)
        if loss_resolution not in LOSS_RESOLUTIONS:
            raise ValueError(f"loss_resolution must be one of {LOSS_RESOLUTIONS}, got {loss_resolution!r}")
        encoder = sam.image_encoder
        dim = encoder.patch_embed.proj.out_channels
        self.adapters = AudioTokenAdapters(len(encoder.blocks), dim, audio_dim, adapter_dim)
        self.bce_weight = bce_weight
        self.iou_weight = iou_weight
        self.pretrained_dense_pe = bool(pretrained_dense_pe)
        self.loss_resolution = loss_resolution
        self.iou_eps = float(iou_eps)
        if not self.pretrained_dense_pe:
            pe = sam.prompt_encoder
            with torch.no_grad():  # fresh values, as the official top-level modules start
                gauss = pe.pe_layer.positional_encoding_gaussian_matrix
                gauss.copy_(torch.randn(gauss.shape, device=gauss.device))
                torch.nn.init.normal_(pe.no_mask_embed.weight)
        self.apply_freeze()

    def is_trainable(self, name: str) -> bool:
        if name.startswith("adapters."):
            return True
        if name == "sam.prompt_encoder.no_mask_embed.weight":
            return not self.pretrained_dense_pe
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
        logits = outputs.logits
        if self.loss_resolution == "input":
            logits = upsample_logits(logits, (self.image_size, self.image_size))
        return bce_iou_loss(logits, gt_masks, self.bce_weight, self.iou_weight, self.iou_eps)

    def recipe(self) -> dict:
        """The recipe choices a report names (see the module docstring)."""
        return {"resize": self.resize, "pretrained_dense_pe": self.pretrained_dense_pe,
                "loss_resolution": self.loss_resolution, "iou_eps": self.iou_eps}
