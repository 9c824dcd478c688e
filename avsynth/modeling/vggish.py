"""VGGish: the log-mel front end and the VGG network that turn audio into 128-d embeddings.

The front end follows the reference VGGish input pipeline (AudioSet ``vggish_input`` /
``mel_features``) exactly:

* 16 kHz mono (other rates are resampled with soxr, channels averaged);
* frames of 400 samples (25 ms), hop 160 (10 ms), no padding, incomplete frames dropped;
* periodic Hann window, FFT length 512, STFT *magnitude* (257 bins);
* 64 triangular mel bands between 125 and 7500 Hz, HTK mel scale ``1127 ln(1 + f/700)``, weights
  computed in the mel domain, the DC bin's weights zeroed;
* ``log(mel + 0.01)``;
* non-overlapping 96-frame (0.96 s) examples of 96 x 64; a trailing partial example is dropped.

The network is the torchvggish port of VGGish (same module layout, so the public
``vggish-10086976.pth`` state dict loads unchanged: ``features.{0,3,6,8,11,13}.*`` and
``embeddings.{0,2,4}.*``), optionally followed by the AudioSet PCA/whitening + 8-bit quantisation
(``vggish_pca_params-970ea276.pth``: ``pca_eigen_vectors`` [128, 128], ``pca_means`` [128]).
VGGish is frozen in every avsynth model. :class:`VGGishEmbedder` is the one embedding API: a clip →
one [128] mean embedding (``embed_clip``), the windows of one recording → [T, 128] (``embed_windows``:
``embed_clip`` of each); the trainer caches clip embeddings on disk (:mod:`avsynth.training.embeddings`).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch import nn

from avsynth.errors import SourceError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_LENGTH = 400  # 0.025 s at 16 kHz
HOP_LENGTH = 160  # 0.010 s at 16 kHz
FFT_LENGTH = 512  # 2 ** ceil(log2(400))
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s of 10 ms frames
EMBEDDING_SIZE = 128
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0
#: Fewest samples that give one example: 96 frames of 400 samples at hop 160.
MIN_SAMPLES = WINDOW_LENGTH + (EXAMPLE_FRAMES - 1) * HOP_LENGTH

#: The VGG conv stack of VGGish: channels, "M" = 2x2 max-pool (torchvggish ``make_layers``).
VGGISH_LAYERS: tuple[Union[int, str], ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
VGGISH_FC: tuple[int, ...] = (4096, 4096)
#: How one clip becomes one vector: the mean over its examples, or example 1 (SAMA-AVS's loader).
CLIP_TOKENS = ("mean", "example1")
#: A small stand-in with the same structure (same front end, same 4 pools, 128-d output) for tests.
TINY_LAYERS: tuple[Union[int, str], ...] = (8, "M", 16, "M", 16, 16, "M", 32, 32, "M")
TINY_FC: tuple[int, ...] = (64, 64)


def hertz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """HTK mel scale: ``1127 ln(1 + f / 700)``."""
    return 1127.0 * torch.log1p(hz / 700.0)


def mel_weight_matrix(
    num_spectrogram_bins: int = FFT_LENGTH // 2 + 1,
    sample_rate: int = SAMPLE_RATE,
    num_mel_bins: int = NUM_MEL_BINS,
    lower_hz: float = MEL_MIN_HZ,
    upper_hz: float = MEL_MAX_HZ,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """[num_spectrogram_bins, num_mel_bins] triangular weights, built in the mel domain.

    Band edges are ``num_mel_bins + 2`` points equally spaced in mel between the limits; each band
    is the min of its rising and falling slopes clipped at 0; the DC bin gets no weight.
    """
    nyquist = sample_rate / 2.0
    if not 0.0 <= lower_hz < upper_hz <= nyquist:
        raise ValueError(f"mel band limits must satisfy 0 <= {lower_hz} < {upper_hz} <= {nyquist}")
    bins_mel = hertz_to_mel(torch.linspace(0.0, nyquist, num_spectrogram_bins, dtype=torch.float64))
    lo, hi = (1127.0 * math.log1p(f / 700.0) for f in (lower_hz, upper_hz))
    edges = torch.linspace(lo, hi, num_mel_bins + 2, dtype=torch.float64)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights[0, :] = 0.0
    return weights.to(dtype)


def periodic_hann(length: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The periodic Hann window ``0.5 - 0.5 cos(2 pi n / length)``, n = 0 .. length-1."""
    return torch.hann_window(length, periodic=True, dtype=dtype)


class LogMelFrontEnd(nn.Module):
    """Waveforms at 16 kHz → VGGish log-mel examples, vectorised over a batch.

    ``forward(waveforms [B, T]) -> [B, N, 96, 64]`` with ``N = frames // 96`` and
    ``frames = 1 + (T - 400) // 160`` (0 when T < 400). All waveforms of a batch share T.
    """

    def __init__(self, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.register_buffer("window", periodic_hann(WINDOW_LENGTH, dtype), persistent=False)
        self.register_buffer("mel_weights", mel_weight_matrix(dtype=dtype), persistent=False)

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """[B, T] → [B, frames, 64] log-mel spectrogram (no example framing)."""
        if waveforms.dim() != 2:
            raise ValueError(f"expected waveforms [B, T], got shape {tuple(waveforms.shape)}")
        x = waveforms.to(self.window.dtype)
        if x.shape[-1] < WINDOW_LENGTH:
            return x.new_zeros(x.shape[0], 0, NUM_MEL_BINS)
        frames = x.unfold(-1, WINDOW_LENGTH, HOP_LENGTH) * self.window
        magnitude = torch.fft.rfft(frames, n=FFT_LENGTH).abs()
        return torch.log(magnitude @ self.mel_weights + LOG_OFFSET)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        mel = self.log_mel(waveforms)
        n = mel.shape[1] // EXAMPLE_FRAMES
        return mel[:, : n * EXAMPLE_FRAMES].reshape(mel.shape[0], n, EXAMPLE_FRAMES, NUM_MEL_BINS)


def to_mono_16k(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Average channels ([T, C] as soundfile returns them) and resample to 16 kHz (soxr, HQ)."""
    wave = np.asarray(waveform, dtype=np.float64)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    elif wave.ndim != 1:
        raise ValueError(f"expected a [T] or [T, C] waveform, got shape {wave.shape}")
    if sample_rate != SAMPLE_RATE:
        import soxr

        wave = soxr.resample(wave, sample_rate, SAMPLE_RATE, quality="HQ")
    return wave


def waveform_to_examples(
    waveform: np.ndarray, sample_rate: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """One waveform (any rate, mono or [T, C]) → [N, 96, 64] log-mel examples."""
    wave = torch.from_numpy(to_mono_16k(waveform, sample_rate))
    return LogMelFrontEnd(dtype)(wave[None])[0]


def wav_file_to_examples(path: str | Path, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A sound file → [N, 96, 64]. PCM is scaled to [-1, 1) as the reference does (int16 / 32768)."""
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float64", always_2d=False)
    except Exception as err:  # soundfile raises several types; report them uniformly
        raise SourceError(path, f"cannot read audio: {err}") from err
    return waveform_to_examples(data, sr, dtype)


def make_conv_stack(layers: Sequence[Union[int, str]]) -> nn.Sequential:
    """The VGG conv stack: 3x3 convs (padding 1) + ReLU, "M" = 2x2 max-pool; 1 input channel."""
    modules: list[nn.Module] = []
    in_ch = 1
    for item in layers:
        if item == "M":
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            modules += [nn.Conv2d(in_ch, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_ch = int(item)
    return nn.Sequential(*modules)


class VGGish(nn.Module):
    """The VGGish network: [N, 1, 96, 64] (or [N, 96, 64]) log-mel examples → [N, 128] embeddings.

    ``layers`` and ``fc`` describe the conv stack and hidden fully connected sizes; the defaults are
    the real VGGish (72,141,184 parameters). The conv output is flattened in TensorFlow's NHWC
    order, as the ported weights require.
    """

    def __init__(
        self,
        layers: Sequence[Union[int, str]] = VGGISH_LAYERS,
        fc: Sequence[int] = VGGISH_FC,
        embedding_size: int = EMBEDDING_SIZE,
    ):
        super().__init__()
        self.features = make_conv_stack(layers)
        pools = sum(1 for item in layers if item == "M")
        last = [int(item) for item in layers if item != "M"][-1]
        flat = last * (EXAMPLE_FRAMES >> pools) * (NUM_MEL_BINS >> pools)
        dims = [flat, *fc, embedding_size]
        mlp: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mlp += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        self.embeddings = nn.Sequential(*mlp)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Variance-preserving random weights (He normal, zero biases) for use without a checkpoint.

        PyTorch's default init shrinks activations by ~6x per ReLU layer, so a random VGGish gave
        near-constant embeddings (per-dimension spread ~1e-4 of their size) that no model could
        learn from; with He init the spread across sounds is ~30 %, like real VGGish embeddings.
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        x = examples.unsqueeze(1) if examples.dim() == 3 else examples
        x = self.features(x.to(self.embeddings[0].weight.dtype))
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # NCHW -> NHWC, as in TensorFlow
        return self.embeddings(x)


class PCAQuantizer(nn.Module):
    """AudioSet post-processing: PCA + whitening, clip to [-2, 2], quantise to 0..255 (as float)."""

    def __init__(self, size: int = EMBEDDING_SIZE):
        super().__init__()
        self.register_buffer("pca_eigen_vectors", torch.eye(size))
        self.register_buffer("pca_means", torch.zeros(size))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        pca = (embeddings - self.pca_means) @ self.pca_eigen_vectors.T
        clipped = pca.clamp(QUANTIZE_MIN, QUANTIZE_MAX)
        return torch.round((clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN)))


def _load_state(path: str | Path, what: str) -> Mapping[str, object]:
    """torch.load(weights_only=True) a state dict; numpy arrays (older .pth files) are allowed."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(p, f"{what} file not found")
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's array-unpickling function
    safe: list = [np.ndarray, np.dtype, reconstruct]
    safe += [type(np.dtype(t)) for t in (np.float32, np.float64)]
    # files pickled by numpy 1.x (the published torchvggish ones) name it numpy.core.multiarray
    safe.append((reconstruct, "numpy.core.multiarray._reconstruct"))
    try:
        with torch.serialization.safe_globals(safe):
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        raise SourceError(p, f"not a loadable {what} file (torch.load weights_only): {err}") from err
    if not isinstance(state, Mapping):
        raise SourceError(p, f"{what} file holds a {type(state).__name__}, expected a dict")
    return state


def load_vggish_weights(model: VGGish, path: str | Path) -> None:
    """Load a torchvggish-format state dict (``vggish-10086976.pth``) into ``model``, strictly."""
    state = _load_state(path, "VGGish weights")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise SourceError(path, f"VGGish state dict mismatch: missing {missing}, unexpected {unexpected}")
    tensors = {}
    for key, value in state.items():
        t = torch.as_tensor(value)
        if tuple(t.shape) != tuple(own[key].shape):
            raise SourceError(
                path, f"VGGish weight {key} has shape {tuple(t.shape)}, model needs {tuple(own[key].shape)}"
            )
        tensors[key] = t
    model.load_state_dict(tensors, strict=True)


def load_pca_params(post: PCAQuantizer, path: str | Path) -> None:
    """Load ``pca_eigen_vectors`` [128, 128] and ``pca_means`` [128] (or [128, 1]) into ``post``."""
    state = _load_state(path, "VGGish PCA params")
    out = {}
    for key in ("pca_eigen_vectors", "pca_means"):
        if key not in state:
            raise SourceError(path, f"VGGish PCA params lack {key!r} (has {sorted(state)})")
        t = torch.as_tensor(state[key], dtype=torch.float32)
        want = tuple(getattr(post, key).shape)
        t = t.reshape(-1) if key == "pca_means" else t
        if tuple(t.shape) != want:
            raise SourceError(path, f"VGGish PCA {key} has shape {tuple(t.shape)}, expected {want}")
        out[key] = t
    post.load_state_dict(out)


class VGGishEmbedder(nn.Module):
    """Frozen audio encoder: waveforms → 128-d VGGish embeddings (one per 0.96 s example).

    ``embed(waveform, sample_rate)`` → [N, 128] for one clip; ``embed_clip`` → [128] (mean over the
    clip's examples; clips shorter than 0.96 s are zero-padded to one example); ``embed_windows``
    → [T, 128] for T equal-length windows of one recording (``embed_clip`` of each).
    """

    def __init__(self, network: VGGish, postprocessor: PCAQuantizer | None = None,
                 clip_token: str = "mean"):
        super().__init__()
        if clip_token not in CLIP_TOKENS:
            raise ValueError(f"clip_token must be one of {CLIP_TOKENS}, got {clip_token!r}")
        self.clip_token = clip_token
        self.frontend = LogMelFrontEnd()
        self.network = network
        self.postprocessor = postprocessor
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGishEmbedder":
        """VGGish is always frozen: stays in eval mode."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """[N, 96, 64] log-mel examples → [N, 128]."""
        out = self.network(examples)
        return self.postprocessor(out) if self.postprocessor is not None else out

    @torch.no_grad()
    def embed(self, waveform: np.ndarray, sample_rate: int, pad_short: bool = True) -> torch.Tensor:
        """One clip → [N, 128] embeddings (N = number of whole 0.96 s examples)."""
        wave = to_mono_16k(waveform, sample_rate)
        if pad_short and wave.shape[0] < MIN_SAMPLES:
            wave = np.pad(wave, (0, MIN_SAMPLES - wave.shape[0]))
        device = self.frontend.window.device
        examples = self.frontend(torch.from_numpy(wave).to(device)[None])[0]
        return self(examples)

    @torch.no_grad()
    def embed_clip(self, waveform: np.ndarray, sample_rate: int) -> torch.Tensor:
        """One clip → one float32 [128] embedding on the CPU: with ``clip_token="mean"`` the mean
        over its examples (avsynth's choice); with ``"example1"`` example 1 (0.96–1.92 s), the one
        SAMA-AVS's synthetic loader feeds (``wavfile_to_examples(path)[1]``), or the last example
        of a clip that has fewer than two (a single-example AVSBench window: that example)."""
        emb = self.embed(np.asarray(waveform), int(sample_rate))
        if self.clip_token == "example1":
            return emb[min(1, emb.shape[0] - 1)].float().cpu()
        return emb.mean(dim=0).float().cpu()

    @torch.no_grad()
    def embed_windows(self, windows: np.ndarray | torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
        """[T, L] windows of one recording → float32 [T, 128] on the CPU: :meth:`embed_clip` of each
        window. Window by window on purpose: a batched forward over all windows differs in the last
        bits (the convolution's algorithm depends on the batch), and the trainer embeds AVSBench
        windows one at a time, so the benchmark does too and their figures agree exactly."""
        w = np.asarray(windows, dtype=np.float32)
        if w.ndim != 2:
            raise ValueError(f"expected [T, L] windows, got shape {w.shape}")
        return torch.stack([self.embed_clip(x, sample_rate) for x in w])

    @torch.no_grad()
    def embed_examples(self, examples: np.ndarray | torch.Tensor) -> torch.Tensor:
        """[T, 96, 64] (or [T, 1, 96, 64]) precomputed log-mel examples, e.g. AVSBench's
        ``audio_log_mel`` .pkl → float32 [T, 128] on the CPU, one example a forward (as
        :meth:`embed_windows`, so both paths give the same bits for the same example)."""
        x = torch.as_tensor(np.asarray(examples), dtype=torch.float32)
        if x.dim() == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() != 3 or tuple(x.shape[1:]) != (EXAMPLE_FRAMES, NUM_MEL_BINS):
            raise ValueError(f"expected [T, 96, 64] log-mel examples, got shape {tuple(x.shape)}")
        device = self.frontend.window.device
        return torch.stack([self(e.to(device)[None])[0].float().cpu() for e in x])

    def fingerprint(self) -> str:
        """Hash of the weights (and PCA state): names a cache so it never mixes models."""
        h = hashlib.sha256()
        if self.clip_token != "mean":  # a different clip → vector rule names a different cache
            h.update(f"clip_token={self.clip_token}".encode())
        for key, value in sorted(self.state_dict().items()):
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def build_vggish(
    arch: str = "vggish",
    checkpoint: str | Path | None = None,
    pca_params: str | Path | None = None,
    postprocess: bool = False,
    clip_token: str = "mean",
) -> VGGishEmbedder:
    """Build the frozen VGGish embedder (``arch``: "vggish" or "tiny"), loading local weights.

    ``postprocess`` adds the PCA + quantisation step (needs ``pca_params`` to be meaningful; the
    AVSBench/SAMA-AVS recipes use the raw embeddings, the default).
    """
    if arch == "vggish":
        net = VGGish()
    elif arch == "tiny":
        net = VGGish(TINY_LAYERS, TINY_FC)
    else:
        raise ValueError(f"unknown VGGish arch {arch!r}; expected 'vggish' or 'tiny'")
    if checkpoint is not None:
        load_vggish_weights(net, checkpoint)
    post = None
    if postprocess:
        post = PCAQuantizer()
        if pca_params is None:
            raise ValueError("VGGish postprocess=True needs pca_params (a local .pth path)")
        load_pca_params(post, pca_params)
    return VGGishEmbedder(net, post, clip_token)


__all__ = [
    "CLIP_TOKENS",
    "EMBEDDING_SIZE",
    "MIN_SAMPLES",
    "SAMPLE_RATE",
    "LogMelFrontEnd",
    "PCAQuantizer",
    "VGGish",
    "VGGishEmbedder",
    "build_vggish",
    "load_pca_params",
    "load_vggish_weights",
    "mel_weight_matrix",
    "periodic_hann",
    "to_mono_16k",
    "wav_file_to_examples",
    "waveform_to_examples",
]
