"""AVSS pre-training rows: the semantic rows of avsynth shards, for a 71-label AVSS model.

Shards built with ``avsynth build --semantic --semantic-classes avsbench`` carry ``semantic_mask``:
8-bit class ids at the image's size, 0 = background, every other id the index of the row's class
among AVSBench's 71 AVSS classes (the label order of ``mask2former.labels: avss``). So the ids go
to the model's loss as they are; the model resizes them to its input itself (nearest,
:meth:`~avsynth.modeling.aavs.Aavs.labels_from_maps`), as it does AVSBench's class maps.

* :func:`check_semantic_shards` refuses, with a one-line error naming the directory, shards that do
  not hold AVSS ids: no ``semantic_mask`` column (a build without ``--semantic``), or a build record
  (``manifest.json``: ``arguments.semantic_classes``) whose class space is not ``avsbench``;
* :class:`SemanticShardRows` serves one split: ``rows[i]`` is row ``i`` as a one-frame unit
  (validation; the class map at the stored size), :meth:`SemanticShardRows.epoch` the train rows
  in a seeded order (row groups shuffled, then rows within each), ``batch_size`` rows per unit
  (class maps kept per row, at their own sizes).

A unit has what :func:`avsynth.training.avss.train_avss` and :func:`~avsynth.training.avss.
evaluate_avss` read from an AVSBench video: ``frames`` (uint8 [H, W, 3] as stored), ``labels``
(class ids: int64 [1, H, W] for a one-row unit, else a list of [H_i, W_i]) and ``audio`` ([T, 128]:
the row's clip through the frozen VGGish, the mean over its examples, as the binary trainer embeds
shard clips). Rows are decoded when a unit is asked for (row groups read through the reader's small
cache), clip embeddings computed once per row. Each row plays its own clip (no re-pairing with the
audio pool here).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avsynth.errors import AvsynthError
from avsynth.media.audio import decode_audio
from avsynth.media.mask import decode_label_png
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.shards.reader import TripletDataset, decode_image_and_mask
from avsynth.shards.record import RECORD_NAME, BuildRecord, load_record_json

#: the class space whose ids are the AVSS label indices (``avsynth build --semantic-classes``)
AVSS_CLASS_SPACE = "avsbench"
COLUMNS = ("id", "category", "image", "mask", "semantic_mask", "audio")


@dataclass
class SemanticUnit:
    """Rows given to the model together (see the module docstring)."""

    frames: list[np.ndarray]
    labels: torch.Tensor | list[torch.Tensor]
    audio: torch.Tensor
    ids: list[str] = field(default_factory=list)
    video = None  # no AVSBench video behind shard rows
    frame_ids: list[int] = field(default_factory=list)


def check_semantic_shards(source: str | Path, split: str = "train", storage_options: dict | None = None) -> dict:
    """The build record's ``arguments`` of ``source`` if its ``split`` rows hold AVSS class ids;
    otherwise an :class:`AvsynthError` naming the directory and the fix."""
    from avsynth.shards.reader import ShardReader

    reader = ShardReader(source, split, storage_options=storage_options)
    names = reader.files.get(0).schema_arrow.names
    if "semantic_mask" not in names:
        raise AvsynthError(f"{source}: the shards have no semantic_mask column; AVSS pre-training needs a "
                           f"build with --semantic --semantic-classes {AVSS_CLASS_SPACE}")
    record_path = f"{reader.root}/{RECORD_NAME}"
    if not reader.fs.exists(record_path):
        raise AvsynthError(f"{source}: no {RECORD_NAME}, so the class space of semantic_mask is unknown; AVSS "
                           f"pre-training needs a build with --semantic-classes {AVSS_CLASS_SPACE}")
    try:
        with reader.fs.open(record_path, "rb") as fh:
            arguments = BuildRecord.from_dict(load_record_json(fh)).arguments
    except AvsynthError:
        raise
    except Exception as err:  # a damaged record: JSON or field errors
        raise AvsynthError(f"{source}/{RECORD_NAME}: cannot read the build record ({type(err).__name__}: {err})"
                           ) from None
    space = arguments.get("semantic_classes")
    if space != AVSS_CLASS_SPACE:
        raise AvsynthError(f"{source}: semantic_mask holds {space or 'unrecorded'} class ids, not the AVSS "
                           f"classes; AVSS pre-training needs a build with --semantic-classes {AVSS_CLASS_SPACE}")
    return arguments


class SemanticShardRows:
    """One split of a semantic shard directory as AVSS units (see the module docstring)."""

    def __init__(self, source: str | Path, split: str, vggish: VGGishEmbedder,
                 storage_options: dict | None = None):
        self.source = str(source)
        self.split = split
        self.vggish = vggish
        self.rows = TripletDataset(source, split, columns=list(COLUMNS), decode=False,
                                   storage_options=storage_options)
        self._audio: dict[int, torch.Tensor] = {}
        if len(self.rows) == 0:
            raise AvsynthError(f"{source}: the {split} split has no rows")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> SemanticUnit:
        if not 0 <= index < len(self):
            raise IndexError(index)
        unit = self.unit([index])
        unit.labels = unit.labels[0][None]
        return unit

    def __iter__(self) -> Iterator[SemanticUnit]:
        return (self[i] for i in range(len(self)))

    def unit(self, indices: Sequence[int]) -> SemanticUnit:
        """Rows ``indices`` decoded: frames, class maps (int64, stored size), clip embeddings."""
        frames, labels, audio, ids = [], [], [], []
        for i in indices:
            row = self.rows[int(i)]
            where = f"{self.source} {self.split} row {row.get('id')!r}"
            image, _ = decode_image_and_mask(row, where)
            ids_map = decode_label_png(row["semantic_mask"]["bytes"], where)
            if ids_map.shape != image.shape[:2]:
                raise AvsynthError(f"{where}: semantic_mask is {ids_map.shape[1]}x{ids_map.shape[0]}, the image "
                                   f"{image.shape[1]}x{image.shape[0]}")
            if int(i) not in self._audio:
                wave, sr = decode_audio(row["audio"]["bytes"], where)
                self._audio[int(i)] = self.vggish.embed_clip(wave, sr)
            frames.append(image)
            labels.append(torch.from_numpy(ids_map.astype(np.int64)))
            audio.append(self._audio[int(i)])
            ids.append(str(row["id"]))
        return SemanticUnit(frames, labels, torch.stack(audio), ids, list(range(len(ids))))

    def epoch(self, generator: torch.Generator, batch_size: int) -> Iterator[SemanticUnit]:
        """Every row once, ``batch_size`` per unit (the last may be short), in the order ``generator``
        draws: the row groups shuffled, then the rows inside each (so a row group is read once an
        epoch, not once a row)."""
        groups = self.rows.reader.row_groups
        order = [groups[g].start + r for g in torch.randperm(len(groups), generator=generator).tolist()
                 for r in torch.randperm(groups[g].rows, generator=generator).tolist()]
        for start in range(0, len(order), max(1, batch_size)):
            yield self.unit(order[start:start + batch_size])


__all__ = ["AVSS_CLASS_SPACE", "SemanticShardRows", "SemanticUnit", "check_semantic_shards"]
