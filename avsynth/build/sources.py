"""Loading the sources of a build: LVIS / Open Images / VGGSound (or the demo corpus) into records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avsynth.errors import BuildError, SourceError
from avsynth.io import sha256_file
from avsynth.manifest import Manifest
from avsynth.sources.records import AudioClip, ImageInstance, ImageLabels, SkipCounter


@dataclass
class SourcePaths:
    """Where the inputs are. All empty means: use the demo corpus."""

    lvis_json: list[Path] = field(default_factory=list)
    coco_root: Path | None = None
    openimages_root: Path | None = None
    openimages_splits: list[str] = field(default_factory=lambda: ["train", "validation", "test"])
    vggsound_csv: Path | None = None
    vggsound_audio: Path | None = None
    # Open Images human-verified image-level label files (verified negatives for --negatives)
    openimages_image_labels: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.lvis_json or self.openimages_root or self.vggsound_csv)


@dataclass
class LoadedSources:
    instances: list[ImageInstance]
    clips: list[AudioClip]
    fingerprints: dict
    skips: SkipCounter
    audio_missing_by_label: dict[str, int]
    used_demo: bool
    paths: SourcePaths
    image_labels: list[ImageLabels] = field(default_factory=list)  # with want_labels only


def file_fingerprint(path: Path) -> dict:
    """Size and sha256 of a metadata file (annotation JSON / CSV)."""
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def load_sources(
    paths: SourcePaths, manifest: Manifest, *, demo_cache: Path | None = None, want_labels: bool = False,
) -> LoadedSources:
    """Read every given source (or the demo corpus when none is given) into records.

    ``want_labels``: also read the images' verified negatives and not-exhaustive categories
    (LVIS; Open Images ``openimages_image_labels`` files) for mixes and negatives.
    """
    used_demo = paths.empty
    if used_demo:
        from avsynth.demo import ensure_demo

        demo = ensure_demo(demo_cache, seed=0)  # the demo corpus is fixed; --seed drives the plan
        paths = SourcePaths(
            lvis_json=[Path(demo.lvis_train_json), Path(demo.lvis_val_json)],
            coco_root=Path(demo.coco_root),
            openimages_root=Path(demo.openimages_root),
            vggsound_csv=Path(demo.vggsound_csv),
            vggsound_audio=Path(demo.vggsound_audio),
            openimages_image_labels=list(paths.openimages_image_labels),
        )
    if not paths.vggsound_csv or not paths.vggsound_audio:
        raise BuildError("audio is required: give --vggsound-csv and --vggsound-audio")
    if not (paths.lvis_json or paths.openimages_root):
        raise BuildError("images are required: give --lvis-json (+ --coco-root) or --openimages-root")
    if paths.lvis_json and not paths.coco_root:
        raise BuildError("--lvis-json needs --coco-root (the folder holding train2017/ and val2017/)")

    skips = SkipCounter()
    instances: list[ImageInstance] = []
    labels: list[ImageLabels] | None = [] if want_labels else None
    fingerprints: dict = {}
    if paths.lvis_json:
        from avsynth.sources.lvis import read_lvis

        for p in paths.lvis_json:
            if not Path(p).is_file():
                raise SourceError(p, "LVIS annotation file not found")
        instances += read_lvis(list(paths.lvis_json), paths.coco_root, manifest, skips, image_labels=labels)
        fingerprints["lvis"] = [file_fingerprint(Path(p)) for p in paths.lvis_json]
    if paths.openimages_root:
        from avsynth.sources.openimages import read_openimages

        root = Path(paths.openimages_root)
        fps = []
        for split in paths.openimages_splits:
            csv = root / f"{split}-annotations-object-segmentation.csv"
            if csv.exists():
                instances += read_openimages(root, split, manifest, skips)
                fps.append(file_fingerprint(csv))
        if not fps:
            raise SourceError(root, "no {split}-annotations-object-segmentation.csv found")
        fingerprints["openimages"] = fps

    if paths.openimages_image_labels:
        from avsynth.sources.openimages import read_openimages_negatives

        if not paths.openimages_root:
            raise BuildError("--openimages-image-labels needs --openimages-root (the images and class names)")
        for p in paths.openimages_image_labels:
            if not Path(p).is_file():
                raise SourceError(p, "Open Images image-level label file not found")
            if labels is not None:
                labels += read_openimages_negatives(Path(p), Path(paths.openimages_root), manifest, skips)
        fingerprints["openimages_image_labels"] = [file_fingerprint(Path(p)) for p in paths.openimages_image_labels]

    from avsynth.sources.vggsound import read_vggsound

    index = read_vggsound(Path(paths.vggsound_csv), Path(paths.vggsound_audio), manifest, skips)
    fingerprints["vggsound"] = [file_fingerprint(Path(paths.vggsound_csv))]
    fingerprints["images_resolved"] = len({(i.source, i.image_id) for i in instances})
    fingerprints["audio_clips_resolved"] = len(index.clips)
    return LoadedSources(
        instances, list(index.clips), fingerprints, skips, dict(index.missing_by_label),
        used_demo, paths, labels or [],
    )
