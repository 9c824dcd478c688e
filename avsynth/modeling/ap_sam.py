"""AP-SAM, the SAMA-AVS paper's baseline: audio as one sparse prompt token of a frozen-encoder SAM.

audio [B, 128] → MLP → one prompt token [B, 1, 256] → SAM mask decoder (trained, single mask) on
the frozen encoder's image embeddings. Loss: BCE + soft IoU (as SAMA-AVS).
"""

from __future__ import annotations

import torch
from segment_anything.modeling import Sam

from avsynth.modeling.adapters import AudioPromptMLP
from avsynth.modeling.base import AVSegmenter, SegmentationOutput
from avsynth.modeling.losses import bce_iou_loss
from avsynth.modeling.sam import single_mask_unused


class ApSam(AVSegmenter):
    """Frozen SAM encoder + audio prompt token + trained mask decoder."""

    family = "ap_sam"

    def __init__(
        self,
        sam: Sam,
        audio_dim: int = 128,
        prompt_hidden_dim: int = 256,
        bce_weight: float = 1.0,
        iou_weight: float = 1.0,
        resize: str = "longest",
    ):
        super().__init__(sam, resize)
        self.audio_prompt = AudioPromptMLP(audio_dim, prompt_hidden_dim, sam.prompt_encoder.embed_dim)
        self.bce_weight = bce_weight
        self.iou_weight = iou_weight
        self.apply_freeze()

    def is_trainable(self, name: str) -> bool:
        if name.startswith("audio_prompt."):
            return True
        if name.startswith("sam.mask_decoder."):
            return not single_mask_unused(name[len("sam.") :])
        return False

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> SegmentationOutput:
        with torch.no_grad():  # the encoder is frozen: keep no activations for it
            embeddings = self.sam.image_encoder(images)
        sparse = self.audio_prompt(audio).unsqueeze(1)
        logits, iou = self.decode(embeddings, sparse)
        return SegmentationOutput(logits, iou)

    def loss(self, outputs: SegmentationOutput, gt_masks: torch.Tensor) -> torch.Tensor:
        return bce_iou_loss(outputs.logits, gt_masks, self.bce_weight, self.iou_weight)
