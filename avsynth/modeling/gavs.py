"""GAVS (Wang et al., AAAI 2024): a frozen SAM prompted by sound, tuned with correlation adapters.

As the paper describes it:

* prompt = projected audio (128 → 512 → 256) + visual cue (the mean of the frozen early ViT tokens,
  projected to 256) + learnable adaptive noise (``mu + sigma * eps``; its mean at inference);
* ColA adapters (bottleneck 128) as parallel branches of the ViT blocks >= ``tune_v`` and after each
  two-way decoder block (on the image tokens), gated by correlation with the prompt;
* the prompt is also the single sparse prompt token of the mask decoder;
* trainable: adapters, prompt projections, noise, and the late LayerNorms (ViT blocks >= tune_v and
  the decoder transformer's norms); everything else is frozen;
* loss: BCE + ``triplet_weight`` x cosine triplet alignment between the audio prompt (anchor), the
  mask-pooled image embedding of the same sample (positive) and of another sample (negative).

The public GAVS code differs; these flags reproduce it: ``noise_replaces_audio_in_training=True``
(the prompt is noise alone while training, audio + noise mean at inference), ``visual_cue=False``,
``triplet_weight=0``.
"""

from __future__ import annotations

import contextlib

import torch
from segment_anything.modeling import Sam
from torch import nn

from avsynth.modeling.adapters import AdaptiveNoise, AudioPromptMLP, CorrelationAdapter
from avsynth.modeling.base import AVSegmenter, SegmentationOutput
from avsynth.modeling.losses import bce_loss, cosine_triplet_loss, masked_average
from avsynth.modeling.sam import encoder_neck, encoder_tokens

_DECODER_NORMS = ("norm1", "norm2", "norm3", "norm4")


class Gavs(AVSegmenter):
    """SAM (ViT-B in the paper) + semantic audio prompt + ColA adapters."""

    family = "gavs"

    def __init__(
        self,
        sam: Sam,
        audio_dim: int = 128,
        audio_hidden_dim: int = 512,
        tune_v: int = 6,
        bottleneck: int = 128,
        visual_cue: bool = True,
        noise_replaces_audio_in_training: bool = False,
        noise_init_sigma: float = 1.0,
        triplet_weight: float = 1.0,
        triplet_margin: float = 0.2,
        resize: str = "longest",
        grad_checkpointing: bool = False,
    ):
        super().__init__(sam, resize, grad_checkpointing)
        depth = len(sam.image_encoder.blocks)
        if not 0 <= tune_v <= depth:
            raise ValueError(f"tune_v={tune_v} must be within 0..{depth} (encoder depth)")
        dim = sam.image_encoder.patch_embed.proj.out_channels
        prompt_dim = sam.prompt_encoder.embed_dim
        self.tune_v = tune_v
        self.audio_proj = AudioPromptMLP(audio_dim, audio_hidden_dim, prompt_dim)
        self.visual_proj = nn.Linear(dim, prompt_dim) if visual_cue else None
        self.noise = AdaptiveNoise(prompt_dim, noise_init_sigma)
        self.encoder_adapters = nn.ModuleList(
            CorrelationAdapter(dim, prompt_dim, bottleneck) for _ in range(tune_v, depth)
        )
        self.decoder_adapters = nn.ModuleList(
            CorrelationAdapter(prompt_dim, prompt_dim, bottleneck)
            for _ in sam.mask_decoder.transformer.layers
        )
        self.noise_replaces_audio_in_training = noise_replaces_audio_in_training
        self.triplet_weight = triplet_weight
        self.triplet_margin = triplet_margin
        self.apply_freeze()

    def is_trainable(self, name: str) -> bool:
        head = name.split(".")[0]
        if head == "audio_proj":
            # the public code's noise-only training never feeds the audio projection: freeze it
            # then (unless the triplet loss uses it), so every trainable parameter gets a gradient
            return not self.noise_replaces_audio_in_training or bool(self.triplet_weight)
        if head in ("visual_proj", "noise", "encoder_adapters", "decoder_adapters"):
            return True
        parts = name.split(".")
        if name.startswith("sam.image_encoder.blocks."):
            return int(parts[3]) >= self.tune_v and parts[4] in ("norm1", "norm2")
        if name.startswith("sam.mask_decoder.transformer."):
            if parts[3] == "norm_final_attn":
                return True
            return parts[3] == "layers" and parts[5] in _DECODER_NORMS
        return False

    def build_prompt(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prompt [B, P], projected audio [B, P]) from audio embeddings and pooled early tokens."""
        audio_prompt = self.audio_proj(audio)
        noise = self.noise(audio.shape[0])
        if self.training and self.noise_replaces_audio_in_training:
            prompt = noise
        else:
            prompt = audio_prompt + noise
        if self.visual_proj is not None:
            prompt = prompt + self.visual_proj(visual)
        return prompt, audio_prompt

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> SegmentationOutput:
        encoder = self.sam.image_encoder
        frozen = torch.no_grad() if self.tune_v > 0 else contextlib.nullcontext()
        with frozen:  # patch embedding and blocks < tune_v have nothing to train
            x = encoder_tokens(encoder, images)
            for block in encoder.blocks[: self.tune_v]:
                x = block(x)
        prompt, audio_prompt = self.build_prompt(audio, x.mean(dim=(1, 2)))
        for block, adapter in zip(encoder.blocks[self.tune_v :], self.encoder_adapters):
            x = self.run_block(block, x) + adapter(x, prompt)
        embeddings = encoder_neck(encoder, x)

        def transformer(src, pos, tokens):
            return self._adapted_transformer(src, pos, tokens, prompt)

        logits, iou = self.decode(embeddings, prompt.unsqueeze(1), transformer)
        return SegmentationOutput(logits, iou, {"audio_prompt": audio_prompt, "image_embeddings": embeddings})

    def _adapted_transformer(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor, prompt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """SAM's TwoWayTransformer with a ColA branch on the image tokens of every block."""
        t = self.sam.mask_decoder.transformer
        keys = image_embedding.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = tokens
        for layer, adapter in zip(t.layers, self.decoder_adapters):
            queries, new_keys = layer(queries=queries, keys=keys, query_pe=tokens, key_pe=key_pe)
            keys = new_keys + adapter(keys, prompt)
        attn = t.final_attn_token_to_image(q=queries + tokens, k=keys + key_pe, v=keys)
        return t.norm_final_attn(queries + attn), keys

    def loss(self, outputs: SegmentationOutput, gt_masks: torch.Tensor) -> torch.Tensor:
        total = bce_loss(outputs.logits, gt_masks)
        if self.triplet_weight:
            positive = masked_average(outputs.aux["image_embeddings"], gt_masks)
            total = total + self.triplet_weight * cosine_triplet_loss(
                outputs.aux["audio_prompt"], positive, self.triplet_margin
            )
        return total
