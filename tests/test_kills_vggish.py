"""modeling/vggish beyond the reference comparisons (tests/test_vggish.py, test_official_audio.py):
front-end edge cases, the network's input forms, the frozen embedder, its cache fingerprint, and the
loaders' one-line errors — on the tiny network, values stated by hand or from the construction."""

from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf
import torch

from avsynth.errors import SourceError
from avsynth.modeling import vggish as G


def test_mel_matrix_limits_and_dc_row():
    full = G.mel_weight_matrix(lower_hz=0.0, upper_hz=8000.0)  # both limits inclusive
    assert full.shape == (257, 64)
    assert float(full[0].abs().sum()) == 0.0 and float(full[1].sum()) > 0  # only the DC bin is empty
    for lo, hi in ((125.0, 125.0), (-1.0, 7500.0), (125.0, 8000.5)):
        with pytest.raises(ValueError) as e:
            G.mel_weight_matrix(lower_hz=lo, upper_hz=hi)
        assert str(e.value) == f"mel band limits must satisfy 0 <= {lo} < {hi} <= 8000.0"
    assert float(G.periodic_hann(4)[1]) == pytest.approx(0.5)  # 0.5 - 0.5 cos(2 pi / 4), periodic


def test_front_end_shapes_and_state():
    fe = G.LogMelFrontEnd()
    assert fe.state_dict() == {}  # window and mel matrix are derived, never saved
    assert fe.log_mel(torch.zeros(2, 399)).shape == (2, 0, 64)  # shorter than one 400-sample window
    assert fe.log_mel(torch.zeros(2, 400)).shape == (2, 1, 64)
    with pytest.raises(ValueError) as e:
        fe.log_mel(torch.zeros(400))
    assert str(e.value) == "expected waveforms [B, T], got shape (400,)"
    wave = (np.arange(16_000) % 50).astype(np.int16)
    out = G.to_mono_16k(wave, 16_000)
    assert out.dtype == np.float64 and np.array_equal(out, wave.astype(np.float64))
    with pytest.raises(ValueError) as e:
        G.to_mono_16k(np.zeros((2, 2, 2)), 16_000)
    assert str(e.value) == "expected a [T] or [T, C] waveform, got shape (2, 2, 2)"


def test_wav_file_examples_dtype_and_errors(tmp_path):
    p = tmp_path / "a.wav"
    sf.write(p, 0.1 * np.sin(np.arange(16_000) / 5.0), 16_000)
    assert G.wav_file_to_examples(p, torch.float64).dtype == torch.float64
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(SourceError) as e:
        G.wav_file_to_examples(bad)
    assert str(e.value).startswith(f"{bad}: cannot read audio: ")


def test_network_input_forms_and_custom_stacks():
    torch.manual_seed(0)
    net = G.VGGish((8, "M", 16, "M"), (32,))  # last conv width 16, two pools: 16 * 24 * 16 inputs
    assert net.embeddings[0].in_features == 16 * 24 * 16
    x = torch.randn(2, 96, 64)
    y = net(x)
    assert y.shape == (2, 128)
    assert torch.equal(net(x[:, None]), y)  # [N, 1, 96, 64] is the same input
    assert torch.allclose(net(x.double()), y)  # cast to the weights' dtype


def tiny_embedder(clip_token="mean", post=None) -> G.VGGishEmbedder:
    torch.manual_seed(0)
    return G.VGGishEmbedder(G.VGGish(G.TINY_LAYERS, G.TINY_FC), post, clip_token)


def test_embedder_is_frozen_and_its_clip_rules():
    emb = tiny_embedder()
    assert emb.clip_token == "mean" and not any(p.requires_grad for p in emb.parameters())
    emb.train()
    assert not emb.training and not emb.network.training  # always eval
    wave = np.sin(np.arange(40_000) / 3.0) * 0.2
    per = emb.embed(wave, 16_000)
    assert per.shape[0] == 2
    assert torch.allclose(emb.embed_clip(wave, 16_000), per.mean(0))
    assert torch.equal(tiny_embedder("example1").embed_clip(wave, 16_000), per[1])
    torch.manual_seed(0)
    assert G.VGGishEmbedder(G.VGGish(G.TINY_LAYERS, G.TINY_FC)).clip_token == "mean"  # the default rule
    with pytest.raises(ValueError) as e:
        tiny_embedder("first")
    assert str(e.value) == f"clip_token must be one of {G.CLIP_TOKENS}, got 'first'"


def test_fingerprint_names_weights_and_clip_rule():
    a, b = tiny_embedder(), tiny_embedder()
    fp = a.fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0 and fp == b.fingerprint()
    assert tiny_embedder("example1").fingerprint() != fp
    with torch.no_grad():
        b.network.embeddings[0].bias[0] += 1.0
    assert b.fingerprint() != fp


def test_postprocessor_quantises(tmp_path):
    p = tmp_path / "pca.pth"
    torch.save({"pca_eigen_vectors": torch.eye(128), "pca_means": torch.zeros(128, 1)}, p)  # [128, 1] accepted
    post = G.PCAQuantizer()
    G.load_pca_params(post, p)
    emb = tiny_embedder(post=post)
    out = emb.embed(np.sin(np.arange(16_000) / 3.0), 16_000)
    assert torch.equal(out, torch.round(out)) and float(out.min()) >= 0 and float(out.max()) <= 255
    raw = tiny_embedder().embed(np.sin(np.arange(16_000) / 3.0), 16_000)
    want = torch.round((raw.clamp(-2.0, 2.0) + 2.0) * (255.0 / 4.0))  # identity PCA: clip, then 0..255
    assert torch.equal(out, want)


def test_loaders_errors(tmp_path):
    net = G.VGGish(G.TINY_LAYERS, G.TINY_FC)

    def err(fn, *args) -> str:
        with pytest.raises(SourceError) as e:
            fn(*args)
        return str(e.value)

    assert err(G.load_vggish_weights, net, tmp_path / "no.pth") == f"{tmp_path / 'no.pth'}: VGGish weights file not found"
    text = tmp_path / "text.pth"
    text.write_text("hello")
    assert err(G.load_vggish_weights, net, text).startswith(
        f"{text}: not a loadable VGGish weights file (torch.load weights_only): ")
    obj = tmp_path / "object.pth"  # weights only: a pickled object other than tensors is refused
    torch.save({"features.0.weight": tmp_path}, obj)
    assert err(G.load_vggish_weights, net, obj).startswith(
        f"{obj}: not a loadable VGGish weights file (torch.load weights_only): ")
    lst = tmp_path / "list.pth"
    torch.save([1, 2], lst)
    assert err(G.load_vggish_weights, net, lst) == f"{lst}: VGGish weights file holds a list, expected a dict"
    state = net.state_dict()
    odd = tmp_path / "odd.pth"
    torch.save({**{k: v for k, v in state.items() if k != "features.0.bias"}, "extra": torch.zeros(1)}, odd)
    assert err(G.load_vggish_weights, net, odd) == (
        f"{odd}: VGGish state dict mismatch: missing ['features.0.bias'], unexpected ['extra']")
    shape = tmp_path / "shape.pth"
    torch.save({**state, "features.0.bias": torch.zeros(3)}, shape)
    assert err(G.load_vggish_weights, net, shape) == (
        f"{shape}: VGGish weight features.0.bias has shape (3,), model needs (8,)")
    as_numpy = tmp_path / "numpy.pth"  # older .pth files hold numpy arrays
    torch.manual_seed(5)
    other = G.VGGish(G.TINY_LAYERS, G.TINY_FC).state_dict()
    torch.save({k: v.numpy() for k, v in other.items()}, as_numpy)
    G.load_vggish_weights(net, as_numpy)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in other.items())
    post = G.PCAQuantizer()
    pca = tmp_path / "pca.pth"
    torch.save({"pca_means": torch.zeros(128)}, pca)
    assert err(G.load_pca_params, post, pca) == (
        f"{pca}: VGGish PCA params lack 'pca_eigen_vectors' (has ['pca_means'])")
    torch.save({"pca_eigen_vectors": torch.eye(128), "pca_means": torch.zeros(127)}, pca)
    assert err(G.load_pca_params, post, pca) == f"{pca}: VGGish PCA pca_means has shape (127,), expected (128,)"
    assert err(G.load_pca_params, post, tmp_path / "none.pth") == f"{tmp_path / 'none.pth'}: VGGish PCA params file not found"


def test_build_vggish(tmp_path):
    with pytest.raises(ValueError) as e:
        G.build_vggish("vgg")
    assert str(e.value) == "unknown VGGish arch 'vgg'; expected 'vggish' or 'tiny'"
    with pytest.raises(ValueError) as e:
        G.build_vggish("tiny", postprocess=True)
    assert str(e.value) == "VGGish postprocess=True needs pca_params (a local .pth path)"
    torch.manual_seed(2)
    src = G.VGGish(G.TINY_LAYERS, G.TINY_FC).state_dict()
    ck = tmp_path / "tiny.pth"
    torch.save(src, ck)
    emb = G.build_vggish("tiny", checkpoint=ck, clip_token="example1")
    assert all(torch.equal(emb.network.state_dict()[k], v) for k, v in src.items())
    assert emb.clip_token == "example1" and emb.postprocessor is None
    pca = tmp_path / "pca.pth"
    torch.save({"pca_eigen_vectors": 2 * torch.eye(128), "pca_means": torch.ones(128)}, pca)
    post = G.build_vggish("tiny", pca_params=pca, postprocess=True).postprocessor
    assert torch.equal(post.pca_eigen_vectors, 2 * torch.eye(128)) and torch.equal(post.pca_means, torch.ones(128))
    with torch.device("meta"):
        full = G.build_vggish()
    assert sum(p.numel() for p in full.network.parameters()) == 72_141_184  # the real VGGish
