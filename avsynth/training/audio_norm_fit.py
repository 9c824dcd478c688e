"""Fitting a model's audio standardisation (``model.audio_norm: fit``) once, before training, on the
audio vectors of its TRAINING split only (:mod:`avsynth.modeling.audio_norm`).

* AVSBench: one VGGish vector per distinct (train video, audio second) that the training items use
  (with ``first_frame_per_second`` an S4 train video gives its seconds 0..4; otherwise each
  annotated frame's second), in item order, through the run's embedding cache;
* shards: the embedding of each train row's own clip (the ``audio`` column of ``data/train-*``, in
  row order; the audio-pool clips the reader may pair with a row are not read).

The validation split is never read. Same data → the same vectors in the same order → the same
statistics (computed in float64), on every rank.
"""

from __future__ import annotations

from typing import Any

import torch

from avsynth.media.audio import decode_audio
from avsynth.modeling.base import AVSegmenter
from avsynth.training.data import AVSBenchFrames
from avsynth.training.embeddings import AudioEmbeddings, bytes_key


def train_audio_vectors(train: Any, embeddings: AudioEmbeddings) -> torch.Tensor:
    """[N, 128] audio vectors of a training set: :class:`AVSBenchFrames` or a shard train stream
    (anything with a ``reader``, a :class:`avsynth.shards.reader.ShardReader` of the train split)."""
    if isinstance(train, AVSBenchFrames):
        return train.audio_vectors()
    reader = train.reader
    vectors = []
    for row in reader.iter_rows(columns=["id", "audio"]):
        data = row["audio"]["bytes"]
        where = f"{reader.source} row {row['id']!r}"
        vectors.append(embeddings.embed(bytes_key(data), lambda: decode_audio(data, where)))
    return torch.stack(vectors)


def fit_audio_norm(model: AVSegmenter, train: Any, embeddings: AudioEmbeddings) -> dict | None:
    """Fit ``model.audio_norm`` on ``train``'s audio unless it is already fitted (loaded from
    ``--init`` or a resumed run's weights). Returns what the run records (None: the model has no
    audio standardisation)."""
    norm = model.audio_norm
    if norm is None:
        return None
    if norm.fitted:
        return {**norm.summary(), "fitted_on": "loaded weights"}
    norm.fit(train_audio_vectors(train, embeddings))
    return {**norm.summary(), "fitted_on": "train split"}


__all__ = ["fit_audio_norm", "train_audio_vectors"]
