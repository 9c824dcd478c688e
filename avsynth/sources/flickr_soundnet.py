"""Flickr-SoundNet sound-source test set (Senocak et al. CVPR'18; 250 test images in Chen et al.).

One XML file per image, ``ANNOTATIONS/{id}.xml``: every ``bbox`` element that is a grandchild of the
root holds, after a first child that is skipped, four integers ``xmin, ymin, xmax, ymax`` on a
256 x 256 grid, one box per annotator box — exactly what the reference test code reads
(``utils.py:57-68`` of hche11/Localizing-Visual-Sounds-the-Hard-Way: ``for child in root: for
childs in child: if childs.tag == 'bbox': ... if index == 0: continue``).

Local layout (the reference's ``--data_path`` / ``--gt_path``): ``ROOT/frames/{id}.jpg``,
``ROOT/audio/{id}.wav`` and ``ROOT/Annotations/{id}.xml``; the test list ``flickr_test.csv`` has
rows ``id,label`` (its first column is read). Missing frames, audio or XML files are counted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from avsynth.errors import SourceError
from avsynth.sources._files import DirIndex
from avsynth.sources.records import LocalizationItem, LocalizationSet, SkipCounter
from avsynth.sources.vggss import find_media, read_id_list

#: Flickr-SoundNet boxes are drawn on a 256 x 256 grid.
FLICKR_GRID = 256


def read_flickr_xml(path: str | Path) -> tuple[tuple[int, int, int, int], ...]:
    """The annotator boxes of one Flickr-SoundNet XML file, ``(xmin, ymin, xmax, ymax)`` on the
    256 grid. SourceError (naming the file) if it does not parse or a box lacks four integers."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise SourceError(path, "Flickr-SoundNet annotation not found") from None
    except (ET.ParseError, OSError) as err:
        raise SourceError(path, f"not a readable Flickr-SoundNet XML annotation: {err}") from None
    boxes = []
    for child in root:
        for el in child:
            if el.tag != "bbox":
                continue
            values = [c.text for c in list(el)[1:5]]
            try:
                xmin, ymin, xmax, ymax = (int(v) for v in values)
            except (TypeError, ValueError):
                raise SourceError(path, f"a <bbox> needs a first child then four integer coordinates, "
                                        f"got {values}") from None
            boxes.append((xmin, ymin, xmax, ymax))
    return tuple(boxes)


def open_flickr(root: str | Path, annotations: str | Path | None = None,
                test_list: str | Path | None = None) -> LocalizationSet:
    """The Flickr-SoundNet samples found under ``root``.

    ``annotations`` (the folder of XML files) defaults to ``ROOT/Annotations``; ``test_list`` to
    ``ROOT/flickr_test.csv`` when it exists, else every XML file in the folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(root, "Flickr-SoundNet root not found (expected frames/ and audio/ inside)")
    ann_dir = Path(annotations) if annotations is not None else root / "Annotations"
    if not ann_dir.is_dir():
        raise SourceError(ann_dir, "Flickr-SoundNet annotation folder (one {id}.xml per image) not found")
    xmls = DirIndex(ann_dir)
    if test_list is None and (root / "flickr_test.csv").is_file():
        test_list = root / "flickr_test.csv"
    if test_list is not None:
        ids = read_id_list(test_list, "Flickr-SoundNet test list")
    else:
        ids = sorted(n[:-4] for n in xmls.names if n.endswith(".xml"))
        if not ids:
            raise SourceError(ann_dir, "no .xml annotation files")
    skips = SkipCounter()
    annotated = []
    for i in ids:
        if f"{i}.xml" in xmls:
            annotated.append(i)
        else:
            skips.skip("missing annotation (no {id}.xml)", i)
    media = find_media(root, annotated, skips)
    items = [LocalizationItem("flickr", i, "", read_flickr_xml(ann_dir / f"{i}.xml"), audio=media[i][2],
                              frame=media[i][0], video=media[i][1]) for i in annotated if i in media]
    return LocalizationSet("flickr", root, ann_dir, items, listed=len(ids), skips=skips)


__all__ = ["FLICKR_GRID", "open_flickr", "read_flickr_xml"]
