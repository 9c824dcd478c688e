"""VGGish: the torch log-mel front end against an independent NumPy reference, on a real clip;
the network's torchvggish weight format; PCA params; the embedding cache."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from avsynth.errors import SourceError
from avsynth.modeling.vggish import (
    MIN_SAMPLES,
    LogMelFrontEnd,
    PCAQuantizer,
    VGGish,
    build_vggish,
    load_pca_params,
    mel_weight_matrix,
    wav_file_to_examples,
    waveform_to_examples,
)

CLIP = "vggsound/FwVYUHKoLtQ_000034.wav"


# ---- an independent NumPy implementation of the reference VGGish input pipeline ---------------
def np_mel(hz):
    return 1127.0 * np.log(1.0 + hz / 700.0)


def np_mel_matrix(num_bins=257, sr=16000, n_mel=64, lo=125.0, hi=7500.0):
    bins_mel = np_mel(np.linspace(0.0, sr / 2.0, num_bins))
    edges = np.linspace(np_mel(lo), np_mel(hi), n_mel + 2)
    weights = np.empty((num_bins, n_mel))
    for i in range(n_mel):
        lower, center, upper = edges[i : i + 3]
        rise = (bins_mel - lower) / (center - lower)
        fall = (upper - bins_mel) / (upper - center)
        weights[:, i] = np.maximum(0.0, np.minimum(rise, fall))
    weights[0, :] = 0.0
    return weights


def np_frames(x, window, hop):
    n = 1 + (len(x) - window) // hop
    return np.stack([x[i * hop : i * hop + window] for i in range(max(n, 0))])


def np_examples(wave):
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic Hann
    frames = np_frames(wave, 400, 160) * window
    spec = np.abs(np.fft.rfft(frames, 512))
    log_mel = np.log(spec @ np_mel_matrix() + 0.01)
    n = log_mel.shape[0] // 96
    return np.stack([log_mel[i * 96 : (i + 1) * 96] for i in range(n)])


@pytest.fixture(scope="module")
def clip(real_dir):
    data, sr = sf.read(real_dir / CLIP, dtype="float64")
    assert sr == 16000 and data.ndim == 1
    return data


def test_mel_matrix_matches_reference():
    ours = mel_weight_matrix().numpy()
    ref = np_mel_matrix()
    assert ours.shape == (257, 64)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert (ours[0] == 0).all()
    assert ours.max() <= 1.0 and (ours.sum(axis=0) > 0).all()


def test_front_end_on_real_clip_float64(clip):
    ref = np_examples(clip)
    ours = LogMelFrontEnd(torch.float64)(torch.from_numpy(clip)[None])[0].numpy()
    assert ours.shape == ref.shape == (10, 96, 64)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


def test_front_end_on_real_clip_float32_and_file_reader(real_dir, clip):
    ref = np_examples(clip)
    ours = wav_file_to_examples(real_dir / CLIP)
    assert ours.dtype == torch.float32 and ours.shape == (10, 96, 64)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=2e-3)
    assert np.abs(ours.numpy() - ref).mean() < 1e-4


def test_front_end_batched_equals_single(clip):
    fe = LogMelFrontEnd(torch.float64)
    a = torch.from_numpy(clip[:32000])
    b = torch.from_numpy(clip[40000:72000])
    batch = fe(torch.stack([a, b]))
    assert batch.shape == (2, 2, 96, 64)
    assert torch.equal(batch[0], fe(a[None])[0]) and torch.equal(batch[1], fe(b[None])[0])


def test_frame_and_example_counts():
    fe = LogMelFrontEnd()
    assert fe(torch.zeros(1, 399)).shape == (1, 0, 96, 64)
    assert fe.log_mel(torch.zeros(1, 400)).shape == (1, 1, 64)
    assert fe(torch.zeros(1, MIN_SAMPLES - 1)).shape == (1, 0, 96, 64)
    assert fe(torch.zeros(1, MIN_SAMPLES)).shape == (1, 1, 96, 64)
    # silence: log(0 + 0.01) everywhere
    assert torch.allclose(fe(torch.zeros(1, MIN_SAMPLES)), torch.full((1, 1, 96, 64), np.log(0.01)))


def test_resampling_and_channel_mix(clip):
    import soxr

    stereo_44k = soxr.resample(clip[:48000], 16000, 44100)
    stereo_44k = np.stack([stereo_44k, stereo_44k], axis=1)
    ex = waveform_to_examples(stereo_44k, 44100)
    direct = waveform_to_examples(clip[:48000], 16000)
    assert ex.shape == direct.shape == (3, 96, 64)
    assert (ex - direct).abs().mean() < 0.1  # resampled twice: close, not identical


def test_unreadable_audio_is_a_source_error(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(SourceError, match="x.wav"):
        wav_file_to_examples(bad)


# ---- the network and its weight files --------------------------------------------------------
TORCHVGGISH_KEYS = {
    "features.0.weight": (64, 1, 3, 3),
    "features.3.weight": (128, 64, 3, 3),
    "features.6.weight": (256, 128, 3, 3),
    "features.8.weight": (256, 256, 3, 3),
    "features.11.weight": (512, 256, 3, 3),
    "features.13.weight": (512, 512, 3, 3),
    "embeddings.0.weight": (4096, 12288),
    "embeddings.2.weight": (4096, 4096),
    "embeddings.4.weight": (128, 4096),
}


def test_real_vggish_has_torchvggish_layout():
    with torch.device("meta"):
        net = VGGish()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    for key, shape in TORCHVGGISH_KEYS.items():
        assert shapes[key] == shape
        assert shapes[key.replace("weight", "bias")] == (shape[0],)
    assert len(shapes) == 2 * len(TORCHVGGISH_KEYS)
    assert sum(p.numel() for p in net.parameters()) == 72_141_184


def test_real_vggish_embeds_real_clip(real_dir):
    torch.manual_seed(0)
    emb = build_vggish("vggish")
    out = emb(wav_file_to_examples(real_dir / CLIP))
    assert out.shape == (10, 128) and (out >= 0).all()  # final ReLU, as torchvggish
    assert not any(p.requires_grad for p in emb.parameters())


def test_weights_round_trip_through_loader(tmp_path, real_dir):
    torch.manual_seed(1)
    net = VGGish((8, "M", 16, "M", 16, 16, "M", 32, 32, "M"), (64, 64))
    path = tmp_path / "vggish.pth"
    torch.save(net.state_dict(), path)
    emb = build_vggish("tiny", checkpoint=path)
    x = wav_file_to_examples(real_dir / CLIP)
    assert torch.equal(emb(x), net(x))
    # a state dict from another architecture is refused with the file named
    torch.save({k: v for k, v in net.state_dict().items() if "embeddings" not in k}, path)
    with pytest.raises(SourceError, match="missing"):
        build_vggish("tiny", checkpoint=path)
    with pytest.raises(SourceError, match="not found"):
        build_vggish("tiny", checkpoint=tmp_path / "absent.pth")


def as_numpy1_pickle(path):
    """Rewrite a torch.save'd file as numpy 1.x would have pickled its arrays (numpy.core...)."""
    import zipfile

    with zipfile.ZipFile(path) as zin:
        members = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as out:
        for info, data in members:
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
            out.writestr(info, data)


@pytest.mark.parametrize("layout", ["numpy", "numpy1", "tensor"])
def test_pca_params_load_and_postprocess(tmp_path, layout):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(128, 128)).astype(np.float32) * 0.1
    means = rng.normal(size=(128,)).astype(np.float32)
    path = tmp_path / "pca.pth"
    if layout.startswith("numpy"):  # the published file may hold numpy arrays
        torch.save({"pca_eigen_vectors": vecs, "pca_means": means.reshape(-1, 1)}, path)
        if layout == "numpy1":
            as_numpy1_pickle(path)
    else:
        torch.save({"pca_eigen_vectors": torch.from_numpy(vecs), "pca_means": torch.from_numpy(means)}, path)
    post = PCAQuantizer()
    load_pca_params(post, path)
    x = rng.normal(size=(5, 128)).astype(np.float32)
    expected = np.round((np.clip(vecs @ (x.T - means[:, None]), -2, 2).T + 2) * 255 / 4)
    np.testing.assert_allclose(post(torch.from_numpy(x)).numpy(), expected, atol=1.0)
    assert np.mean(post(torch.from_numpy(x)).numpy() == expected) > 0.99
    torch.save({"pca_means": torch.zeros(128)}, path)
    with pytest.raises(SourceError, match="pca_eigen_vectors"):
        load_pca_params(PCAQuantizer(), path)


def test_embed_clip_pads_short_audio_and_windows_are_clips(clip):
    torch.manual_seed(0)
    emb = build_vggish("tiny")
    short = clip[:8000]
    assert emb.embed(short, 16000).shape == (1, 128)
    assert emb.embed_clip(clip, 16000).shape == (128,)
    assert torch.equal(emb.embed_clip(clip, 16000), emb.embed(clip, 16000).mean(dim=0))
    windows = np.stack([clip[i * 16000 : (i + 1) * 16000] for i in range(3)])
    one_by_one = torch.stack([emb.embed_clip(w, 16000) for w in windows])
    # exactly the per-window embedding (the trainer's), not a batched approximation of it
    assert torch.equal(emb.embed_windows(windows), one_by_one)
    assert not torch.equal(one_by_one[0], one_by_one[1])  # the windows really differ
    assert torch.equal(emb.embed_windows(windows[:, :8000]),  # shorter than an example: zero-padded
                       torch.stack([emb.embed_clip(w, 16000) for w in windows[:, :8000]]))
