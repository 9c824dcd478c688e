"""Image pre/post-processing for SAM-based models (no model import: the models and the predictor
both build on it).

Two resize policies:

* ``"longest"`` (SAM's): resize so the longest side is S (aspect kept), normalise with SAM's
  pixel mean/std, pad bottom/right to S x S; logits are upsampled to S x S, the padding cropped,
  then resized to the original size.
* ``"square"`` (the AVS anchor code's): resize straight to S x S; logits are resized straight back.

Channel order: images come in RGB. ``channel_order="bgr"`` feeds them in BGR order and still
normalises with SAM's RGB mean/std — what code that reads frames with OpenCV (``cv2.imread``) and
hands them to SAM's ``preprocess`` does (the public GAVS code); a model trained that way expects it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from segment_anything.utils.transforms import ResizeLongestSide
from torch.nn import functional as F

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
RESIZE_MODES = ("longest", "square")
CHANNEL_ORDERS = ("rgb", "bgr")

ImageLike = Union[np.ndarray, torch.Tensor]


@dataclass
class PreprocessedBatch:
    """Images ready for the encoder, with the sizes needed to map logits back."""

    images: torch.Tensor  # [B, 3, S, S] float, normalised (and padded in "longest" mode)
    original_sizes: list[tuple[int, int]]  # (H, W) of each input image
    input_sizes: list[tuple[int, int]]  # (h, w) of each resized image inside the S x S input

    def __iter__(self):
        """Unpacks as ``images, original_sizes, input_sizes``."""
        return iter((self.images, self.original_sizes, self.input_sizes))


def _as_chw_uint8(image: ImageLike) -> torch.Tensor:
    """An H x W x 3 uint8 image (numpy or torch) → a [3, H, W] tensor."""
    t = torch.tensor(np.asarray(image)) if isinstance(image, np.ndarray) else image
    if t.dim() != 3 or t.shape[-1] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {tuple(t.shape)}")
    if t.dtype != torch.uint8:
        raise ValueError(f"expected uint8 pixels, got {t.dtype}")
    return t.permute(2, 0, 1)


def input_size_for(original: tuple[int, int], image_size: int, resize: str) -> tuple[int, int]:
    """Size of the resized image inside the S x S model input."""
    if resize == "longest":
        return ResizeLongestSide.get_preprocess_shape(original[0], original[1], image_size)
    if resize == "square":
        return (image_size, image_size)
    raise ValueError(f"unknown resize mode {resize!r}; expected one of {RESIZE_MODES}")


def preprocess_images(
    images: Sequence[ImageLike],
    image_size: int,
    resize: str = "longest",
    device: torch.device | str | None = None,
    channel_order: str = "rgb",
) -> PreprocessedBatch:
    """uint8 RGB images (any sizes) → one normalised [B, 3, S, S] batch (bilinear, antialiased);
    ``channel_order="bgr"``: channels reversed before SAM's (RGB) normalisation."""
    if len(images) == 0:
        raise ValueError("preprocess_images needs at least one image")
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"unknown channel order {channel_order!r}; expected one of {CHANNEL_ORDERS}")
    mean = torch.tensor(PIXEL_MEAN, device=device).view(3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=device).view(3, 1, 1)
    out = torch.zeros(len(images), 3, image_size, image_size, device=device)
    originals, inputs = [], []
    for i, image in enumerate(images):
        chw = _as_chw_uint8(image).to(device)
        if channel_order == "bgr":
            chw = chw.flip(0)
        original = (int(chw.shape[1]), int(chw.shape[2]))
        h, w = input_size_for(original, image_size, resize)
        x = chw.float()[None]
        if (h, w) != original:
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
            x = x.round().clamp(0, 255)  # the reference resizes uint8 images
        out[i, :, :h, :w] = (x[0] - mean) / std
        originals.append(original)
        inputs.append((h, w))
    return PreprocessedBatch(out, originals, inputs)


def postprocess_logits(
    logits: torch.Tensor,
    image_size: int,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    resize: str = "longest",
) -> torch.Tensor:
    """Low-res logits [..., 1, h, w] of one image → logits at ``original_size`` [..., 1, H, W]."""
    x = logits if logits.dim() == 4 else logits[None]
    if resize == "longest":
        x = F.interpolate(x, (image_size, image_size), mode="bilinear", align_corners=False)
        x = x[..., : input_size[0], : input_size[1]]
    elif resize != "square":
        raise ValueError(f"unknown resize mode {resize!r}; expected one of {RESIZE_MODES}")
    x = F.interpolate(x, tuple(original_size), mode="bilinear", align_corners=False)
    return x if logits.dim() == 4 else x[0]
