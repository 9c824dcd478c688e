"""The common interface of the audio-visual segmentation models (SAMA-AVS, AP-SAM, GAVS).

An :class:`AVSegmenter` wraps a ``segment_anything`` SAM. Its subclasses decide which parameters
train (:meth:`AVSegmenter.is_trainable`), how audio enters, and the paper's loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from segment_anything.modeling import Sam
from torch import nn
from torch.utils.checkpoint import checkpoint

from avsynth.modeling.audio_norm import AudioNorm
from avsynth.modeling.transforms import (
    ImageLike,
    PreprocessedBatch,
    postprocess_logits,
    preprocess_images,
)
from avsynth.modeling.sam import decode_masks, dense_no_mask


@dataclass
class SegmentationOutput:
    """A model's forward result.

    ``logits``: low-res mask logits [B, 1, 4h, 4w] (256 x 256 for 1024² SAM inputs).
    ``iou``: SAM's predicted IoU [B, 1] (from the frozen IoU head; informative only).
    ``aux``: extra tensors a model's loss needs (GAVS: ``audio_prompt``, ``image_embeddings``).
    """

    logits: torch.Tensor
    iou: torch.Tensor
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


class AVSegmenter(nn.Module):
    """Base class: a SAM plus audio conditioning; ``forward(images, audio) -> SegmentationOutput``.

    ``images`` [B, 3, S, S] are SAM-normalised and padded (see :meth:`preprocess`), ``audio``
    [B, audio_dim] are VGGish embeddings.
    """

    #: Short model-family name used in configs ("sama_avs", "ap_sam", "gavs").
    family: str = ""
    #: Channel order the encoder is fed ("rgb"; GAVS's public code: "bgr", see transforms).
    channel_order: str = "rgb"
    #: Whether :meth:`loss` wants the ground truth at each frame's native size (a list of [H, W]
    #: masks) instead of the [B, 1, S, S] target placed like the model input.
    native_targets: bool = False

    def __init__(self, sam: Sam, resize: str = "longest", grad_checkpointing: bool = False):
        super().__init__()
        self.sam = sam
        self.resize = resize
        self.grad_checkpointing = grad_checkpointing
        self.audio_norm: AudioNorm | None = None
        self.register_forward_pre_hook(_normalise_audio, with_kwargs=True)

    def enable_audio_norm(self, dim: int = 128) -> AudioNorm:
        """Attach an (unfitted) :class:`~avsynth.modeling.audio_norm.AudioNorm` (config key
        ``model.audio_norm: fit``): every forward's ``audio`` is standardised before the model sees it."""
        self.audio_norm = AudioNorm(dim)
        return self.audio_norm

    def run_block(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """One ViT block; with ``grad_checkpointing`` its activations are recomputed in backward
        (SAMA-AVS backpropagates through all 32 ViT-H blocks: this trades time for memory)."""
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    # ---- trainable / frozen ---------------------------------------------------------------
    def is_trainable(self, name: str) -> bool:
        """Whether the parameter ``name`` (as in ``named_parameters()``) is trained."""
        raise NotImplementedError

    def apply_freeze(self) -> None:
        """Set ``requires_grad`` of every parameter from :meth:`is_trainable`."""
        for name, p in self.named_parameters():
            p.requires_grad_(self.is_trainable(name))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters an optimiser should update."""
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameter elements; works on the meta device."""
        total = sum(p.numel() for p in self.parameters())
        return sum(p.numel() for p in self.trainable_parameters()), total

    # ---- geometry -------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        """Side S of the square encoder input."""
        return self.sam.image_encoder.img_size

    @property
    def low_res_size(self) -> int:
        """Side of the low-resolution logits (4 x the embedding grid)."""
        return 4 * self.sam.prompt_encoder.image_embedding_size[0]

    # ---- shared pieces of the forward -----------------------------------------------------
    def decode(
        self, image_embeddings: torch.Tensor, sparse: torch.Tensor, transformer=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask decoder with the "no mask" dense prompt → (logits [B,1,4h,4w], iou [B,1])."""
        pe = self.sam.prompt_encoder
        dense = dense_no_mask(pe, image_embeddings.shape[0])
        return decode_masks(
            self.sam.mask_decoder, image_embeddings, pe.get_dense_pe(), sparse, dense, transformer
        )

    def empty_sparse(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """No sparse prompts: a [B, 0, C] tensor."""
        return like.new_zeros(batch, 0, self.sam.prompt_encoder.embed_dim)

    def forward(self, images: torch.Tensor, audio: torch.Tensor) -> SegmentationOutput:
        raise NotImplementedError

    def loss(self, outputs: SegmentationOutput, gt_masks: torch.Tensor) -> torch.Tensor:
        """The paper's training loss; ``gt_masks`` {0,1} [B, 1, H, W] (resized to the logits)."""
        raise NotImplementedError

    # ---- images in / masks out ------------------------------------------------------------
    def preprocess(
        self, images: Sequence[ImageLike], device: torch.device | str | None = None
    ) -> PreprocessedBatch:
        """uint8 H x W x 3 images → normalised [B, 3, S, S] batch + original and input sizes."""
        return preprocess_images(images, self.image_size, self.resize, device, self.channel_order)

    def postprocess(
        self, logits: torch.Tensor, input_size: tuple[int, int], original_size: tuple[int, int]
    ) -> torch.Tensor:
        """Low-res logits of one image [1, 1, h, w] → logits at ``original_size``."""
        return postprocess_logits(logits, self.image_size, input_size, original_size, self.resize)


def _normalise_audio(model: AVSegmenter, args: tuple, kwargs: dict):
    """Forward pre-hook: ``audio`` (the second argument, or the keyword) through ``model.audio_norm``
    when the model has one; ``None`` (an audio-blind forward) stays ``None``."""
    norm = model.audio_norm
    if norm is None:
        return None
    if "audio" in kwargs:
        if kwargs["audio"] is not None:
            kwargs = {**kwargs, "audio": norm(kwargs["audio"])}
    elif len(args) > 1 and args[1] is not None:
        args = (args[0], norm(args[1]), *args[2:])
    return args, kwargs
