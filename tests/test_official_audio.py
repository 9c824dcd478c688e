"""AVSBench audio cut the official way, against fixtures recorded by running the official code
(OpenNLPLab/AVSBench ``preprocess_scripts/preprocess_s4.py`` → ``vggish_input.wavfile_to_examples``
and ``torchvggish/vggish.py``) outside the project: see tests/data/official/vggish/README.md."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avsynth.errors import SourceError
from avsynth.evaluation.evaluate import avsbench_samples
from avsynth.modeling.vggish import LogMelFrontEnd, VGGish, build_vggish
from avsynth.sources.avsbench import (
    AVSBenchObjectDataset,
    audio_windows,
    example_count,
    load_audio,
    load_log_mel_pkl,
)
from tests.avsbench_fixture import write_object_tree

FIX = Path(__file__).parent / "data" / "official" / "vggish"
CLIP = "vggsound/FwVYUHKoLtQ_000034.wav"


@pytest.fixture(scope="module")
def clip5(real_dir) -> np.ndarray:
    """The real VGGSound clip's first 5 s (it is 16 kHz 16-bit PCM, as AVSBench's audio.wav)."""
    return load_audio(real_dir / CLIP)[: 5 * 16000]


@pytest.fixture(scope="module")
def official() -> np.ndarray:
    return np.load(FIX / "s4_logmel_official.npy")[:, 0]  # [5, 96, 64]


def log_mel(windows: np.ndarray) -> np.ndarray:
    fe = LogMelFrontEnd()
    return torch.cat([fe(torch.from_numpy(w)[None])[0] for w in windows]).numpy()


def test_frame_audio_is_the_official_vggish_example(clip5, official):
    got = log_mel(audio_windows(clip5, 5))
    assert got.shape == (5, 96, 64)
    assert np.abs(got - official).max() < 1e-4
    # the former cut (1 s windows at i s) agrees on frame 0 only
    old = np.stack([clip5[i * 16000:(i + 1) * 16000] for i in range(5)])
    diff = np.abs(log_mel(old) - official).max(axis=(1, 2))
    assert diff[0] < 1e-4 and (diff[1:] > 1.0).all()


def test_short_clip_repeats_its_last_example(clip5, official):
    # preprocess_s4.py pads a clip with fewer than 5 examples by repeating the last one
    short = clip5[:4 * 15360 + 15600 - 1]  # one sample short of the 5th example
    assert example_count(len(short)) == 4
    got = log_mel(audio_windows(short, 5))
    assert np.abs(got[:4] - official[:4]).max() < 1e-4
    assert np.array_equal(got[4], got[3])
    padded = audio_windows(clip5, 5, pad_frames=2)
    assert padded.shape == (7, 15600) and not padded[5:].any()


def test_log_mel_pickle_of_the_object_release(tmp_path, official):
    root = tmp_path / "avsbench_data"
    write_object_tree(root, "s4", [("vidA", "dog_barking", "test"), ("vidB", "dog_barking", "test")])
    lm_dir = root / "Single-source" / "s4_data" / "audio_log_mel" / "test" / "dog_barking"
    lm_dir.mkdir(parents=True)
    shutil.copy(FIX / "s4_logmel_official.pkl", lm_dir / "vidA.pkl")  # as preprocess_s4.py wrote it
    ds = AVSBenchObjectDataset(root, "s4", split="test")
    assert ds.videos[0].log_mel_path == lm_dir / "vidA.pkl" and ds.videos[1].log_mel_path is None
    item = ds[0]
    assert np.array_equal(item["audio_log_mel"].numpy(), official)
    assert "audio_log_mel" not in ds[1]
    torch.manual_seed(0)
    vggish = build_vggish("tiny")
    samples = list(avsbench_samples(ds, vggish))
    want = torch.stack([vggish(torch.from_numpy(official[i])[None])[0] for i in range(5)])
    assert torch.allclose(samples[0].audio, want, atol=1e-6)
    # the wav path of vidB is cut the official way too
    wave = load_audio(ds.videos[1].audio_path)
    assert torch.equal(samples[1].audio, vggish.embed_windows(audio_windows(wave, 5)))


def test_log_mel_pickle_refuses_other_objects(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(shutil.rmtree))
    with pytest.raises(SourceError, match="refusing to load shutil.rmtree"):
        load_log_mel_pkl(evil, 5)
    wrong = tmp_path / "wrong.pkl"
    wrong.write_bytes(pickle.dumps(torch.zeros(5, 96, 64)))
    with pytest.raises(SourceError, match=r"expected a log-mel tensor \[N, 1, 96, 64\]"):
        load_log_mel_pkl(wrong, 5)


def test_vggish_network_matches_torchvggish():
    """The official VGG (torchvggish ``VGG(make_layers())``), weights filled in key order by
    ``randn(shape, Generator seed 0) * 0.02``, on two real log-mel examples."""
    net = VGGish().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, p in sorted(net.state_dict().items()):
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        x = torch.from_numpy(np.load(FIX / "vggish_net_in.npy"))
        y = net(x[:, 0])
    want = torch.from_numpy(np.load(FIX / "vggish_net_out.npy"))
    assert want.abs().max() > 0.05  # a non-trivial output
    assert torch.allclose(y, want, atol=1e-5, rtol=0)


def test_written_wav_is_what_the_official_reader_sees(tmp_path, clip5):
    # the official reader scales int16 by 1/32768; soundfile's float read of PCM_16 is the same
    path = tmp_path / "a.wav"
    sf.write(str(path), (clip5 * 32768).round().astype(np.int16), 16000, subtype="PCM_16")
    assert np.array_equal(load_audio(path), clip5)
