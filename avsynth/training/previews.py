"""Prediction previews for TensorBoard: a few fixed validation samples, their ground truth and
the model's prediction drawn over the image, one grid per epoch.

The samples are the first ``n`` of the validation set (the same every epoch and across a resume),
so the grids of successive epochs show how the prediction of the same frames changes. Colours:
ground truth green, prediction red (where they overlap the two blend); drawn with
``torchvision.utils.draw_segmentation_masks`` and tiled with ``make_grid``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from avsynth.modeling.predictor import AVPredictor
from avsynth.modeling.transforms import PIXEL_MEAN, PIXEL_STD

GT_COLOR = (40, 220, 60)
PRED_COLOR = (235, 40, 40)


def _picture(sample: dict) -> torch.Tensor:
    """The model input of ``sample`` back to uint8 [3, H, W] at its original size."""
    h, w = sample["input_size"]
    mean = torch.tensor(PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(PIXEL_STD).view(3, 1, 1)
    img = sample["image"][:, :h, :w].float().cpu() * std + mean
    H, W = sample["original_size"]
    img = F.interpolate(img[None], size=(H, W), mode="bilinear", align_corners=False)[0]
    return img.round().clamp(0, 255).to(torch.uint8)


def overlay_prediction(sample: dict, logits: torch.Tensor, alpha: float = 0.45) -> torch.Tensor:
    """uint8 [3, H, W]: the sample's image with its ground truth (green) and the prediction
    ``logits > 0`` (red) filled in."""
    from torchvision.utils import draw_segmentation_masks

    image = _picture(sample)
    masks = [sample["mask"].bool().cpu(), (logits.cpu() > 0)]
    return draw_segmentation_masks(image, torch.stack(masks), alpha=alpha, colors=[GT_COLOR, PRED_COLOR])


def prediction_grid(predictor: AVPredictor, samples: Sequence[dict], size: int = 192) -> torch.Tensor:
    """uint8 [3, H, W]: one tile per sample (resized to ``size`` x ``size``), in a row."""
    from torchvision.utils import make_grid

    from avsynth.training.data import collate

    batch = collate(list(samples))
    with predictor.evaluating():
        logits = predictor.predict_batch(batch["image"], batch["audio"], batch["input_size"],
                                         batch["original_size"])
    tiles = [F.interpolate(overlay_prediction(s, lg)[None].float(), size=(size, size), mode="bilinear",
                           align_corners=False)[0].round().to(torch.uint8)
             for s, lg in zip(samples, logits)]
    return make_grid(tiles, nrow=len(tiles), padding=4, pad_value=255)


__all__ = ["GT_COLOR", "PRED_COLOR", "overlay_prediction", "prediction_grid"]
