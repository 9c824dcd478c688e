"""Training and validation data: shard rows and AVSBench frames → model-ready samples.

Every source yields the same *sample* (a dict) and :func:`collate` stacks them into a batch:

* ``image`` float [3, S, S]: the model's own preprocessing (:func:`avsynth.modeling.transforms.
  preprocess_images`, i.e. exactly the inference path: resize, SAM normalisation, padding);
* ``target`` uint8 [S, S]: the ground-truth mask mapped the same way (nearest resize to the
  resized image, zero padding), for the loss;
* ``audio`` float32 [128]: the frozen-VGGish embedding of the clip (cached, see
  :mod:`avsynth.training.embeddings`);
* ``mask`` uint8 [H, W] (validation, and training for models whose loss is at the native frame
  size: ``InputSpec.native_targets``): the ground truth at the frame's resolution, which the
  logits are mapped back to (``original_size`` = (H, W), ``input_size`` = the resized image
  inside the S x S input);
* ``index`` (position in the split, the de-duplication key across ranks), ``id``, ``group`` (the
  video of a frame; a shard row is its own video) and ``category``.

Shard train rows come from :class:`avsynth.shards.reader.TripletIterableDataset` (row groups dealt
to ranks and workers, shuffle buffer, a fresh same-category clip from the audio pool each epoch);
validation rows from the map-style one (:func:`shard_frames`). AVSBench fine-tuning uses
:class:`AVSBenchFrames` (the annotated frames of the selected videos; one VGGish embedding per
frame, frame i <- VGGish example i of the clip, the official cut) of the videos an
:class:`avsynth.sources.avsbench.AVSBenchSource` names (:func:`~avsynth.sources.avsbench.
select_videos`: a fraction of the videos, or k per class, seeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from avsynth.errors import AvsynthError, SourceError
from avsynth.media.audio import decode_audio
from avsynth.media.mask import resize_nearest
from avsynth.modeling.transforms import preprocess_images
from avsynth.shards.reader import TripletDataset, decode_image_and_mask
from avsynth.sources.avsbench import (
    AVSBenchSource,
    AVSBenchVideo,
    audio_windows,
    load_audio,
    load_frame,
    load_log_mel_pkl,
    load_mask,
    select_videos,
)
from avsynth.training.embeddings import AudioEmbeddings, bytes_key

#: Columns a training/validation sample needs from a shard row.
SHARD_COLUMNS = ("id", "category", "image", "mask", "audio")


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its images: encoder side ``image_size``, ``resize`` policy,
    ``channel_order`` (rgb | bgr), and whether its loss wants native-size masks."""

    image_size: int
    resize: str = "longest"
    channel_order: str = "rgb"
    native_targets: bool = False

    @classmethod
    def of(cls, model) -> InputSpec:
        return cls(int(model.image_size), str(model.resize), str(getattr(model, "channel_order", "rgb")),
                   bool(getattr(model, "native_targets", False)))


def model_image(image_hwc: np.ndarray, spec: InputSpec) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """uint8 H x W x 3 → (normalised [3, S, S], input size (h, w), original size (H, W))."""
    batch = preprocess_images([np.ascontiguousarray(image_hwc)], spec.image_size, spec.resize,
                              channel_order=spec.channel_order)
    return batch.images[0], batch.input_sizes[0], batch.original_sizes[0]


def model_target(mask: np.ndarray, input_size: tuple[int, int], image_size: int) -> torch.Tensor:
    """A {0,1} mask [H, W] placed like its image in the S x S input → uint8 [S, S]."""
    h, w = input_size
    resized = resize_nearest(np.asarray(mask).astype(bool), w, h)
    out = torch.zeros(image_size, image_size, dtype=torch.uint8)
    out[:h, :w] = torch.from_numpy(resized.astype(np.uint8))
    return out


def make_sample(image_hwc: np.ndarray, mask: np.ndarray, audio: torch.Tensor, spec: InputSpec,
                keep_mask: bool, **meta) -> dict:
    """Assemble one sample (see the module docstring)."""
    if mask.shape != image_hwc.shape[:2]:
        mask = resize_nearest(mask.astype(bool), image_hwc.shape[1], image_hwc.shape[0])
    image, input_size, original_size = model_image(image_hwc, spec)
    sample = {
        "image": image,
        "target": model_target(mask, input_size, spec.image_size),
        "audio": audio,
        "input_size": input_size,
        "original_size": original_size,
        **meta,
    }
    if keep_mask:
        sample["mask"] = torch.from_numpy(np.asarray(mask).astype(np.uint8))
    return sample


def collate(samples: Sequence[dict]) -> dict:
    """Stack ``image``, ``target``, ``audio`` and ``index``; everything else becomes a list."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    out: dict = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key in ("image", "target", "audio"):
            out[key] = torch.stack(values)
        elif key == "index":
            out[key] = torch.tensor(values, dtype=torch.long)
        else:
            out[key] = values
    return out


# --------------------------------------------------------------------------- shard rows


class ShardRowTransform:
    """Shard row (media still encoded) → sample. Picklable: runs in DataLoader workers.

    The audio clip's embedding is looked up by the sha256 of its encoded bytes, so a clip is
    decoded and embedded only the first time any worker sees it (see :class:`AudioEmbeddings`).
    """

    def __init__(self, spec: InputSpec, embeddings: AudioEmbeddings, keep_mask: bool, source: str = ""):
        self.spec = spec
        self.embeddings = embeddings
        self.keep_mask = keep_mask
        self.source = source

    def __call__(self, row: dict, index: int = -1) -> dict:
        where = f"{self.source} row {row.get('id')!r}"
        image, mask = decode_image_and_mask(row, where)
        data = row["audio"]["bytes"]
        audio = self.embeddings.embed(bytes_key(data), lambda: decode_audio(data, where))
        return make_sample(image, mask, audio, self.spec, self.keep_mask, index=index,
                           id=str(row["id"]), group=str(row["id"]), category=str(row["category"]))


def shard_frames(source: str | Path, split: str, transform: ShardRowTransform,
                 storage_options: dict | None = None) -> TripletDataset:
    """Map-style dataset of one shard split (validation): item ``i`` is the sample of row ``i``
    (:class:`avsynth.shards.reader.TripletDataset` over the encoded rows, in order; audio is the
    row's own clip, no re-pairing)."""
    return TripletDataset(source, split, columns=list(SHARD_COLUMNS), transform=transform, decode=False,
                          storage_options=storage_options)


# --------------------------------------------------------------------------- AVSBench


def _video_items(vi: int, video: AVSBenchVideo, first_frame_per_second: bool) -> list[tuple[int, int, int]]:
    """(video, frame, audio second) of a video's items: its annotated frames with their own second;
    with ``first_frame_per_second`` a video annotated on frame 0 only (S4 train) gives frame 0 with
    every second 0..T-1 (the official AAVS loader)."""
    annotated = [fi for fi, ann in enumerate(video.annotated) if ann]
    if first_frame_per_second and annotated == [0]:
        return [(vi, 0, t) for t in range(video.num_frames)]
    return [(vi, fi, fi) for fi in annotated]


class AVSBenchFrames(Dataset):
    """The annotated frames of AVSBench videos as samples (one item = one frame).

    Audio: the frame's VGGish example of the video's ``audio.wav`` (frame i <- example i, the
    0.96 s at 0.96·i s, as the official preprocessing cuts it; :func:`~avsynth.sources.avsbench.
    audio_windows`), or of the object release's precomputed ``audio_log_mel`` .pkl when shipped,
    embedded by the frozen VGGish (cache key: sha256 of the file + frame index).
    ``resolution`` resizes frames (bilinear) and masks (nearest) to resolution² first (224 =
    the official evaluation), None keeps them native. ``first_frame_per_second`` (training, AAVS):
    a video annotated on frame 0 only gives frame 0 once per audio second, ids ``uid/0``, ``uid/0@t``
    (t >= 1).
    Samples carry the video's ``label`` (v1s / v1m / v2 / s4 / ms3).
    """

    def __init__(self, videos: Sequence[AVSBenchVideo], spec: InputSpec, embeddings: AudioEmbeddings,
                 resolution: int | None, keep_mask: bool, first_frame_per_second: bool = False):
        self.videos = list(videos)
        self.spec = spec
        self.embeddings = embeddings
        self.resolution = resolution
        self.keep_mask = keep_mask
        #: (video, frame, audio second) per item
        self.items = [item for vi, v in enumerate(self.videos) for item in _video_items(vi, v, first_frame_per_second)]

    def __len__(self) -> int:
        return len(self.items)

    def _audio(self, video: AVSBenchVideo, frame: int) -> torch.Tensor:
        if video.log_mel_path is not None:  # the object release's precomputed examples
            path = video.log_mel_path
            try:
                key = f"{bytes_key(path.read_bytes())}:lm{frame}"
            except OSError as err:
                raise SourceError(path, f"cannot read the log-mel pickle: {err}") from err
            return self.embeddings.embed_examples(key, lambda: load_log_mel_pkl(path, video.num_frames)[frame])
        try:
            data = video.audio_path.read_bytes()
        except OSError as err:
            raise SourceError(video.audio_path, f"cannot read audio: {err}") from err
        key = f"{bytes_key(data)}:x{frame}"  # frame i <- VGGish example i (the official cut)

        def load() -> tuple[np.ndarray, int]:
            windows = audio_windows(load_audio(video.audio_path), video.num_frames)
            return windows[frame], 16000

        return self.embeddings.embed(key, load)

    def audio_vectors(self) -> torch.Tensor:
        """[N, 128] VGGish vectors of the distinct (video, audio second) pairs of the items, in item
        order (no frame or mask is read)."""
        pairs = list(dict.fromkeys((vi, second) for vi, _, second in self.items))
        return torch.stack([self._audio(self.videos[vi], second) for vi, second in pairs])

    def __getitem__(self, index: int) -> dict:
        vi, fi, second = self.items[int(index)]
        v = self.videos[vi]
        image = load_frame(v.frame_paths[fi], self.resolution)
        h, w = image.shape[:2]
        mask = load_mask(v.mask_paths[fi], "binary", (w, h))
        name = f"{v.uid}/{fi}" if second == fi else f"{v.uid}/{fi}@{second}"
        return make_sample(image, mask, self._audio(v, second), self.spec, self.keep_mask,
                           index=int(index), id=name, group=v.uid, category=v.a_obj, label=v.label)


def avsbench_datasets(source: AVSBenchSource, spec: InputSpec, embeddings: AudioEmbeddings,
                      seed: int, first_frame_per_second: bool = False) -> tuple[AVSBenchFrames, AVSBenchFrames]:
    """(train frames of the selected videos, validation frames of every ``val_split`` video);
    ``first_frame_per_second`` applies to the train frames (see :class:`AVSBenchFrames`)."""
    if source.uids:  # an explicit list (AVS-V3 k-shot files mix AVSBench's splits)
        train_videos = source.videos(None, list(source.uids))
    else:
        train_videos = source.videos(source.train_split)
    train_videos = select_videos(train_videos, fraction=source.fraction, k_shot=source.k_shot, seed=seed)
    if not train_videos:
        raise AvsynthError(f"{source.root}: no {source.subset} videos in split {source.train_split!r}")
    val_videos = (source.videos(None, list(source.val_uids)) if source.val_uids
                  else source.videos(source.val_split))
    if not val_videos:
        raise AvsynthError(f"{source.root}: no {source.subset} videos in split {source.val_split!r}")
    return (AVSBenchFrames(train_videos, spec, embeddings, source.train_resolution, keep_mask=spec.native_targets,
                           first_frame_per_second=first_frame_per_second),
            AVSBenchFrames(val_videos, spec, embeddings, source.val_resolution, keep_mask=True))


class VideoBatchSampler:
    """Batches of whole videos: each batch holds the annotated frames of one video, in frame order
    (the public GAVS code's "one video per optimizer step"). Videos are shuffled by (seed, epoch)
    and dealt to ranks; every rank gets the same number of videos (the surplus of an epoch's
    permutation is left out that epoch)."""

    def __init__(self, frames: AVSBenchFrames, rank: int = 0, world: int = 1, seed: int = 0):
        groups: dict[int, list[int]] = {}
        for index, (vi, *_) in enumerate(frames.items):
            groups.setdefault(vi, []).append(index)
        self.videos = [groups[vi] for vi in sorted(groups)]
        self.rank, self.world, self.seed, self.epoch = rank, world, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos) // self.world

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.videos), generator=g).tolist()[: len(self) * self.world]
        for v in order[self.rank :: self.world]:
            yield list(self.videos[v])


__all__ = [
    "SHARD_COLUMNS",
    "AVSBenchFrames",
    "InputSpec",
    "VideoBatchSampler",
    "ShardRowTransform",
    "avsbench_datasets",
    "collate",
    "make_sample",
    "model_image",
    "model_target",
    "shard_frames",
]
