"""Audio-blind baselines: what a model scores on a validation split without listening.

* ``nothing``: an empty mask for every frame;
* ``all_objects``: the union of every annotated object in the image (all instance masks of the
  row's image in its LVIS-format annotation file), i.e. "segment everything, ignore the sound".

A model that beats the better of the two by a clear margin uses the audio. Scores come from the
same metric as validation (:class:`avsynth.evaluation.metrics.AVSBenchMetric`, frame by frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from avsynth.errors import SourceError
from avsynth.evaluation.metrics import AVSBenchMetric
from avsynth.media.mask import decode_png, resize_nearest
from avsynth.shards.reader import ShardReader
from avsynth.sources.lvis import load_lvis

#: Logit magnitude used for a hard prediction (sigmoid(±20) is 0 or 1 to float precision).
HARD = 20.0


class LvisObjects:
    """Union of all annotated instances per image, from one or more LVIS-format JSON files."""

    def __init__(self, json_paths: Sequence[str | Path]):
        self.apis = [load_lvis(Path(p)) for p in json_paths]

    def union(self, image_id: str, height: int, width: int) -> np.ndarray | None:
        """bool [H, W] union of the image's instances; None when no file knows the image."""
        for api in self.apis:
            key = int(image_id) if str(image_id).isdigit() else image_id
            if key not in api.imgs:
                continue
            out = np.zeros((height, width), dtype=bool)
            for ann in api.img_ann_map.get(key, []):
                m = api.ann_to_mask(ann).astype(bool)
                if m.shape != out.shape:
                    m = resize_nearest(m, width, height)
                out |= m
            return out
        return None


def blind_baselines(data: str | Path, split: str, objects: LvisObjects, f_group: str = "batch4") -> dict:
    """``{"nothing": {...}, "all_objects": {...}}`` AVSBench figures of the two audio-blind
    predictions on ``split`` of the shard directory ``data`` (every row must be found in
    ``objects``)."""
    reader = ShardReader(data, split, ["id", "category", "image_id", "mask"])
    nothing, everything = AVSBenchMetric(f_group), AVSBenchMetric(f_group)
    index = 0
    for table in reader.iter_batches():
        for row in table.to_pylist():
            gt = torch.from_numpy(decode_png(row["mask"]["bytes"], f"{data} row {row['id']}").astype(np.uint8))
            h, w = gt.shape
            union = objects.union(str(row["image_id"]), h, w)
            if union is None:
                raise SourceError(f"{data} row {row['id']}", f"image {row['image_id']!r} not in the LVIS files")
            empty = torch.full((1, h, w), -HARD)
            full = torch.where(torch.from_numpy(union | gt.numpy().astype(bool)), HARD, -HARD)[None]
            nothing.update(empty, gt[None], [str(row["id"])], indexes=[index])
            everything.update(full, gt[None], [str(row["id"])], indexes=[index])
            index += 1
    return {"nothing": nothing.compute(), "all_objects": everything.compute()}
