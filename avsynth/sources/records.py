"""Typed records produced by the source readers. Readers only read; they never write.

Every reader yields these plain, frozen, picklable dataclasses so that the planner, the workers
(possibly in other processes or on Ray) and the tests all speak the same language.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Polygon = tuple[float, ...]  # flat [x0, y0, x1, y1, ...] in absolute pixel coordinates


@dataclass(frozen=True)
class MaskRef:
    """Where an instance mask comes from. Exactly one of the three forms is set.

    - ``polygons``: LVIS/COCO polygons (absolute pixels), rasterised with pycocotools;
    - ``rle``: a COCO RLE dict ``{"size": [h, w], "counts": str}``;
    - ``png``: a PNG file (Open Images, AVS-Synthetic); ``png_member`` names the member when the
      PNG sits inside a zip archive at ``png``. Non-zero pixels are foreground; a PNG whose size
      differs from the image is resized to it with nearest-neighbour.
    """

    polygons: tuple[Polygon, ...] | None = None
    rle: tuple[tuple[int, int], str] | None = None  # ((h, w), counts)
    png: Path | None = None
    png_member: str | None = None

    def __post_init__(self) -> None:
        n = sum(x is not None for x in (self.polygons, self.rle, self.png))
        if n != 1:
            raise ValueError("MaskRef needs exactly one of polygons, rle, png")


@dataclass(frozen=True)
class ImageInstance:
    """One segmentation instance of a manifest category in one image."""

    source: str  # "lvis" | "openimages" | "avs-synthetic"
    image_id: str
    annotation_id: str
    category: str  # manifest category name
    source_label: str  # the label as the source spells it (LVIS name / OI display name)
    image_path: Path
    width: int
    height: int
    mask: MaskRef
    bbox: tuple[float, float, float, float]  # absolute xywh in pixels
    area: float  # mask area in pixels as the source states it (or computed)
    license: str = ""


@dataclass(frozen=True)
class ImageLabels:
    """What a source *verified* about the manifest categories of one image, beyond its instances.

    ``negatives``: manifest categories verified absent (LVIS ``neg_category_ids``; Open Images
    human-verified negative image-level labels). ``not_exhaustive``: categories whose instances
    are not all annotated (LVIS ``not_exhaustive_category_ids``). Names are manifest names, sorted.
    A category that is neither is *unknown* (LVIS is federated), never a negative.
    """

    source: str
    image_id: str
    image_path: Path
    width: int
    height: int
    negatives: tuple[str, ...] = ()
    not_exhaustive: tuple[str, ...] = ()
    license: str = ""

    @property
    def image_key(self) -> str:
        return f"{self.source}:{self.image_id}"


@dataclass(frozen=True)
class AudioClip:
    """One local audio clip of a VGGSound label (or an AVS-Synthetic audio file)."""

    source: str  # "vggsound" | "avs-synthetic"
    audio_id: str  # "{ytid}_{start:06d}" for VGGSound
    label: str  # VGGSound label
    split: Literal["train", "test"]
    path: Path
    start_seconds: int = 0
    license: str = "CC BY 4.0"


@dataclass
class SkipCounter:
    """Counted skips of single bad items inside a large source, by reason (recorded in the build)."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 5

    def skip(self, reason: str, example: str | None = None) -> None:
        self.counts[reason] += 1
        if example is not None:
            ex = self.examples.setdefault(reason, [])
            if len(ex) < self.max_examples:
                ex.append(example)

    def merge(self, other: "SkipCounter") -> None:
        self.counts.update(other.counts)
        for reason, ex in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(ex[: max(0, self.max_examples - len(mine))])

    @classmethod
    def from_dict(cls, d: dict) -> "SkipCounter":
        """Inverse of :meth:`as_dict`."""
        out = cls()
        for reason, v in d.items():
            out.counts[reason] = int(v["count"])
            out.examples[reason] = list(v.get("examples", []))
        return out

    def as_dict(self) -> dict:
        return {
            reason: {"count": n, "examples": self.examples.get(reason, [])}
            for reason, n in sorted(self.counts.items())
        }

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class LocalizationItem:
    """One sound-source-localisation test sample (VGG-SS or Flickr-SoundNet).

    ``boxes`` are ``(xmin, ymin, xmax, ymax)`` as the annotation file states them: normalised
    floats for VGG-SS (corrupt coordinates kept, the ground-truth map clamps them), integers on the
    256 grid for Flickr-SoundNet (one box per annotator box). The frame is ``frame`` (an image
    file) or the middle frame of ``video``; the sound is ``audio`` (or the video's audio track).
    """

    dataset: Literal["vggss", "flickr"]
    id: str
    category: str
    boxes: tuple[tuple[float, float, float, float], ...]
    audio: Path
    frame: Path | None = None
    video: Path | None = None


@dataclass
class LocalizationSet:
    """The samples of a localisation test set found locally, and what was not: ``skips`` counts
    listed ids without annotations, frames or audio (``missing ...`` reasons) and
    ``corrupt_entries`` names the annotated ids (of those listed) with a corrupt (negative)
    coordinate, ``corrupt_coordinates`` counts those coordinates."""

    dataset: Literal["vggss", "flickr"]
    root: Path
    annotations: Path
    items: list[LocalizationItem]
    listed: int
    skips: SkipCounter = field(default_factory=SkipCounter)
    corrupt_entries: tuple[str, ...] = ()
    corrupt_coordinates: int = 0
