"""Cached VGGish clip embeddings for training: the audio encoder is frozen, so each clip is
embedded once and then looked up.

A clip is named by a *key*: the sha256 of its encoded bytes (shard rows, audio-pool clips), with a
suffix for a window of a longer file (AVSBench: ``{sha256 of audio.wav}:w{i}`` for second ``i``).
Embeddings (one [128] vector per clip: the mean over its 0.96 s VGGish examples,
:meth:`avsynth.modeling.vggish.VGGishEmbedder.embed_clip`, as at inference) are kept in memory
and, with a ``cache_dir``, on disk as ``{cache_dir}/{vggish fingerprint}/{key[:2]}/{key}.npy`` so
that DataLoader workers, ranks and later runs share them. The fingerprint (a hash of the VGGish
weights) keeps embeddings of different weights apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from avsynth.io import atomic_open
from avsynth.modeling.registry import build_vggish_for
from avsynth.modeling.vggish import VGGishEmbedder

WaveLoader = Callable[[], tuple[np.ndarray, int]]


def bytes_key(data: bytes) -> str:
    """The cache key of an encoded clip: sha256 hex of its bytes."""
    return hashlib.sha256(data).hexdigest()


class AudioEmbeddings:
    """Frozen-VGGish clip embeddings, computed on the CPU on first use, then served from cache.

    ``embed(key, load)`` returns a float32 [128] tensor; ``load()`` (called only on a miss) returns
    ``(mono waveform, sample_rate)``. Always computed on the CPU in float32, so an embedding does not
    depend on the device or the mixed precision of the run. Counters ``hits`` / ``misses`` /
    ``disk_hits`` say how the cache served.
    """

    def __init__(self, vggish: VGGishEmbedder, cache_dir: str | Path | None = None):
        self.vggish = vggish.cpu().eval()
        self.fingerprint = vggish.fingerprint()
        self.cache_dir = None if cache_dir is None else Path(cache_dir) / self.fingerprint
        self._memory: dict[str, np.ndarray] = {}
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._memory)

    def _path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        safe = key.replace(":", "_").replace("/", "_")
        return self.cache_dir / safe[:2] / f"{safe}.npy"

    def _read(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            vec = np.load(path)
        except (OSError, ValueError):
            return None  # a torn file from a killed run: recompute and overwrite
        return vec if vec.ndim == 1 else None

    def _write(self, key: str, vec: np.ndarray) -> None:
        path = self._path(key)
        if path is None:
            return
        with atomic_open(path, "wb") as fh:
            np.save(fh, vec)


    def embed(self, key: str, load: WaveLoader) -> torch.Tensor:
        """The clip's [128] embedding; ``load`` gives ``(waveform, sample_rate)`` on a miss."""
        return self._cached(key, lambda: self.vggish.embed_clip(*load()).numpy())

    def embed_examples(self, key: str, load: Callable[[], np.ndarray]) -> torch.Tensor:
        """The [128] embedding of one precomputed log-mel example; ``load`` gives it ([96, 64]) on
        a miss (AVSBench's ``audio_log_mel`` .pkl)."""
        return self._cached(key, lambda: self.vggish.embed_examples(load()[None])[0].numpy())

    def _cached(self, key: str, compute: Callable[[], np.ndarray]) -> torch.Tensor:
        vec = self._memory.get(key)
        if vec is not None:
            self.hits += 1
        else:
            vec = self._read(key)
            if vec is not None:
                self.disk_hits += 1
            else:
                self.misses += 1
                vec = compute()
                self._write(key, vec)
            self._memory[key] = vec
        return torch.from_numpy(vec.copy())

    def stats(self) -> dict:
        """Counters, for logs."""
        return {"entries": len(self._memory), "hits": self.hits, "disk_hits": self.disk_hits,
                "misses": self.misses}


def build_audio_embeddings(model_config: dict, cache_dir: str | Path | None = None) -> AudioEmbeddings:
    """The cached embedder of a model config's VGGish (:func:`avsynth.modeling.registry.
    build_vggish_for`: the same weights evaluation uses)."""
    return AudioEmbeddings(build_vggish_for(model_config), cache_dir)
