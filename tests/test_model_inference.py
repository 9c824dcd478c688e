"""Image pre/post-processing (SAM's longest-side resize + pad, and the anchor's square resize) and
the batched predict() API on real photographs and the real VGGSound clip."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from segment_anything.utils.transforms import ResizeLongestSide

from avsynth.modeling import AVPredictor, build_model, build_vggish_for, load_config
from avsynth.modeling.transforms import PIXEL_MEAN, PIXEL_STD, postprocess_logits, preprocess_images


@pytest.fixture(scope="module")
def photos(real_dir):
    return [np.asarray(Image.open(real_dir / "images" / n).convert("RGB")) for n in ("dog.jpg", "truck.jpg")]


def test_longest_side_resize_and_pad():
    img = np.full((30, 60, 3), 200, dtype=np.uint8)
    batch = preprocess_images([img], image_size=64)
    assert batch.images.shape == (1, 3, 64, 64)
    assert batch.original_sizes == [(30, 60)] and batch.input_sizes == [(32, 64)]
    assert batch.input_sizes[0] == ResizeLongestSide.get_preprocess_shape(30, 60, 64)
    expected = (200 - torch.tensor(PIXEL_MEAN)) / torch.tensor(PIXEL_STD)
    assert torch.allclose(batch.images[0, :, :32, :].mean(dim=(1, 2)), expected, atol=1e-5)
    assert (batch.images[0, :, 32:, :] == 0).all()  # padding after normalisation, as SAM
    images, originals, inputs = batch
    assert images is batch.images and originals == [(30, 60)] and inputs == [(32, 64)]


def test_longest_side_matches_sam_reference_resize(photos):
    img = photos[0]
    ref = ResizeLongestSide(64).apply_image(img).astype(np.float32)  # PIL bilinear, uint8
    batch = preprocess_images([img], image_size=64)
    h, w = batch.input_sizes[0]
    assert ref.shape[:2] == (h, w)
    ours = batch.images[0, :, :h, :w] * torch.tensor(PIXEL_STD).view(3, 1, 1) + torch.tensor(PIXEL_MEAN).view(3, 1, 1)
    diff = np.abs(ours.permute(1, 2, 0).numpy() - ref)
    assert diff.mean() < 3.0  # antialiased bilinear vs PIL: a few grey levels at most


def test_square_mode():
    img = np.zeros((30, 60, 3), dtype=np.uint8)
    batch = preprocess_images([img], image_size=64, resize="square")
    assert batch.input_sizes == [(64, 64)]
    logits = torch.randn(1, 1, 16, 16)
    assert postprocess_logits(logits, 64, (64, 64), (30, 60), "square").shape == (1, 1, 30, 60)
    with pytest.raises(ValueError, match="resize mode"):
        preprocess_images([img], image_size=64, resize="stretch")


def test_postprocess_crops_padding():
    # logits: left half positive over the valid (top) region; padding region hugely negative
    logits = torch.full((1, 1, 16, 16), -50.0)
    logits[..., :8, :8] = 50.0
    out = postprocess_logits(logits, 64, (32, 64), (30, 60))
    assert out.shape == (1, 1, 30, 60)
    assert (out[..., :, :25] > 0).all() and (out[..., :, 35:] < 0).all()


def test_bad_images_rejected():
    with pytest.raises(ValueError, match="RGB"):
        preprocess_images([np.zeros((8, 8), dtype=np.uint8)], 64)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_images([np.zeros((8, 8, 3), dtype=np.float32)], 64)


@pytest.mark.parametrize("name", ["sama-avs-tiny", "gavs-tiny"])
def test_predict_on_real_photos_and_clip(real_dir, photos, name):
    cfg = load_config(name)
    model = build_model(cfg)
    vggish = build_vggish_for(cfg)
    wave, sr = sf.read(real_dir / "vggsound/FwVYUHKoLtQ_000034.wav", dtype="float32")
    waves = [wave[: 2 * sr], wave[3 * sr : 4 * sr]]
    model.train()
    predictor = AVPredictor(model, vggish=vggish)
    out = predictor.predict_waveforms(photos, waves, sr, batch_size=1)
    assert model.training  # restored
    assert [tuple(o.shape) for o in out] == [p.shape[:2] for p in photos]
    again = predictor.predict_waveforms(photos, waves, sr, batch_size=2)
    for a, b in zip(out, again):  # batching does not change results (beyond float noise)
        assert torch.allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="waveforms"):
        predictor.predict_waveforms(photos, waves[:1], sr)
