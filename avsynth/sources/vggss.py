"""VGG-Sound Source (VGG-SS, Chen et al. CVPR'21): the box annotations and a local copy of the clips.

``vggss.json`` is a list of ``{"file": "<ytid>_<sec>", "class": ..., "bbox": [[xmin, ymin, xmax,
ymax], ...]}`` in normalised coordinates (5,158 entries, 1-7 boxes each). Twelve entries of the
released file carry a corrupt coordinate (-2.88e16); the reference clamps every coordinate with
``max(x, 0)`` when it draws the ground truth (``utils.py:81`` of
hche11/Localizing-Visual-Sounds-the-Hard-Way), which empties or stretches that box. The reader keeps
the coordinates as stated and counts the corrupt ones; :mod:`avsynth.evaluation.localization`
clamps as the reference does.

Local layout (the reference's ``test.py --data_path``, ``datasets/dataloader.py:36-37,88,91``):
``ROOT/frames/{file}.jpg`` (the clip's middle frame) and ``ROOT/audio/{file}.wav`` (the 10 s clip).
Also accepted: ``.png`` frames, ``.flac`` audio, and videos ``ROOT/video/{file}.mp4`` (or
``videos/``, ``.mkv``/``.webm``), whose middle frame and audio track are used when no frame / audio
file exists. Many VGG-SS videos are gone from YouTube: clips missing locally are counted, not fatal.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from avsynth.errors import SourceError
from avsynth.sources._files import DirIndex, csv_rows
from avsynth.sources.records import LocalizationItem, LocalizationSet, SkipCounter

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
AUDIO_SUFFIXES = (".wav", ".flac")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm")
VIDEO_DIRS = ("video", "videos")

Box = tuple[float, float, float, float]


def read_vggss_json(path: str | Path) -> dict[str, tuple[str, tuple[Box, ...]]]:
    """``{file: (class, boxes)}`` from a ``vggss.json``, in file order. SourceError (naming the file
    and the entry) for anything that is not a list of ``{file, class, bbox}`` entries with boxes of
    four finite numbers."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(path, "VGG-SS annotation file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SourceError(path, f"not a readable VGG-SS json: {err}") from None
    if not isinstance(data, list) or not data:
        raise SourceError(path, "a VGG-SS json is a non-empty list of {file, class, bbox} entries")
    out: dict[str, tuple[str, tuple[Box, ...]]] = {}
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or "bbox" not in entry:
            raise SourceError(path, f"entry {i}: needs 'file' (string) and 'bbox'")
        boxes = entry["bbox"]
        if not isinstance(boxes, list) or not all(_is_box(b) for b in boxes):
            raise SourceError(path, f"entry {i} ({entry['file']}): 'bbox' must be a list of "
                                    "[xmin, ymin, xmax, ymax] lists of finite numbers")
        out[entry["file"]] = (str(entry.get("class", "")), tuple(tuple(float(v) for v in b) for b in boxes))
    return out


def _is_box(b) -> bool:
    return (isinstance(b, list) and len(b) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in b))


def corrupt_coordinates(boxes: tuple[Box, ...]) -> int:
    """Number of negative coordinates (the reference's ``max(x, 0)`` changes exactly these)."""
    return sum(v < 0 for b in boxes for v in b)


def read_id_list(path: str | Path, what: str) -> list[str]:
    """The first column of a test list (``vggss_test.csv``: one id a row; ``flickr_test.csv``:
    ``id,label``), as the reference reads it (``datasets/dataloader.py:32-35``)."""
    ids = [fields[0].strip() for _, fields in csv_rows(Path(path), what) if fields and fields[0].strip()]
    if not ids:
        raise SourceError(path, f"{what} lists no ids")
    return ids


def find_media(root: Path, ids: list[str], skips: SkipCounter) -> dict[str, tuple[Path | None, Path | None, Path]]:
    """``{id: (frame, video, audio)}`` for the ids whose frame (or video) and audio (or video) exist
    under ``root``; the others are counted in ``skips`` (one directory listing each)."""
    frames, audio = DirIndex(root / "frames"), DirIndex(root / "audio")
    videos = [DirIndex(root / d) for d in VIDEO_DIRS]
    out = {}
    for i in ids:
        frame = next((p for s in FRAME_SUFFIXES if (p := frames.path(i + s)) is not None), None)
        video = next((p for v in videos for s in VIDEO_SUFFIXES if (p := v.path(i + s)) is not None), None)
        sound = next((p for s in AUDIO_SUFFIXES if (p := audio.path(i + s)) is not None), video)
        if frame is None and video is None:
            skips.skip("missing frame (no frames/{id}.jpg, no video)", i)
        elif sound is None:
            skips.skip("missing audio (no audio/{id}.wav, no video)", i)
        else:
            out[i] = (frame, video, sound)
    return out


def open_vggss(root: str | Path, annotations: str | Path | None = None,
               test_list: str | Path | None = None) -> LocalizationSet:
    """The VGG-SS samples found under ``root``.

    ``annotations`` defaults to ``ROOT/vggss.json``; ``test_list`` to ``ROOT/vggss_test.csv`` when
    it exists, else every annotated clip. Listed ids without an annotation, a frame or audio are
    counted in ``skips``; annotated ids with corrupt coordinates are named in ``corrupt_entries``.
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(root, "VGG-SS root not found (expected frames/ and audio/ inside)")
    ann_path = Path(annotations) if annotations is not None else root / "vggss.json"
    ann = read_vggss_json(ann_path)
    if test_list is None and (root / "vggss_test.csv").is_file():
        test_list = root / "vggss_test.csv"
    ids = read_id_list(test_list, "VGG-SS test list") if test_list is not None else list(ann)
    skips = SkipCounter()
    annotated = []
    for i in ids:
        if i in ann:
            annotated.append(i)
        else:
            skips.skip("not in the annotation file", i)
    corrupt = tuple(i for i in annotated if corrupt_coordinates(ann[i][1]))
    media = find_media(root, annotated, skips)
    items = [LocalizationItem("vggss", i, ann[i][0], ann[i][1], audio=media[i][2], frame=media[i][0],
                              video=media[i][1]) for i in annotated if i in media]
    return LocalizationSet("vggss", root, ann_path, items, listed=len(ids), skips=skips, corrupt_entries=corrupt,
                           corrupt_coordinates=sum(corrupt_coordinates(ann[i][1]) for i in corrupt))


__all__ = ["corrupt_coordinates", "find_media", "open_vggss", "read_id_list", "read_vggss_json"]
