"""The source readers read the generated demo corpus like any real source: no special cases.

Counts are checked against the demo's own files (its JSON, CSVs and ``demo.json`` record), so a
reader that silently drops items fails here.
"""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from avsynth.manifest import load_manifest
from avsynth.sources import lvis as L
from avsynth.sources import openimages as O
from avsynth.sources import vggsound as V
from avsynth.sources.avs_synthetic import read_release
from avsynth.sources.records import SkipCounter


@pytest.fixture(scope="module")
def manifest(demo_corpus):
    return load_manifest(demo_corpus.manifest or "avs-synthetic-46")


def test_lvis_reads_every_lvis_category(demo_corpus, manifest):
    skips = SkipCounter()
    paths = [demo_corpus.lvis_train_json, demo_corpus.lvis_val_json]
    out = L.read_lvis(paths, demo_corpus.coco_root, manifest, skips)
    per_cat = Counter(i.category for i in out)
    assert {c.name for c in manifest if c.lvis} == set(per_cat)
    assert all(n > 0 for n in per_cat.values())
    # every annotation of a manifest label is either read or a counted not-exhaustive skip
    labels = set(manifest.by_source_label("lvis"))
    expected = 0
    for p in paths:
        doc = json.loads(p.read_text())
        ids = {c["id"] for c in doc["categories"] if c["name"] in labels}
        expected += sum(a["category_id"] in ids for a in doc["annotations"])
    assert len(out) + skips.counts[L.SKIP_NOT_EXHAUSTIVE] == expected
    assert set(skips.counts) <= {L.SKIP_NOT_EXHAUSTIVE}
    for inst in out[:20]:
        assert inst.image_path.is_file() and inst.mask.polygons and inst.area > 0


def test_openimages_reads_every_split(demo_corpus, manifest):
    mids = {}
    root = demo_corpus.openimages_root
    for mid, name in O.read_class_descriptions(root / O.CLASS_FILE).items():
        if name in manifest.by_source_label("openimages"):
            mids[mid] = name
    seen = set()
    for split in ("train", "validation", "test"):
        skips = SkipCounter()
        out = O.read_openimages(root, split, manifest, skips)
        with open(root / f"{split}-annotations-object-segmentation.csv", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["LabelName"] in mids]
        assert len(out) == len(rows) > 0 and skips.total == 0
        seen |= {i.category for i in out}
        for inst in out:
            assert inst.mask.png.is_file() and inst.mask.png_member and inst.area > 0
    # categories with no LVIS name get their images from Open Images only
    assert {c.name for c in manifest if c.openimages and not c.lvis} <= seen


def test_vggsound_has_clips_for_every_category(demo_corpus, manifest):
    skips = SkipCounter()
    idx = V.read_vggsound(demo_corpus.vggsound_csv, demo_corpus.vggsound_audio, manifest, skips)
    counts = demo_corpus.info["counts"]["vggsound"]
    assert idx.rows_total == counts["rows"]
    assert sum(idx.missing_by_label.values()) == counts["missing"] == skips.total
    label_cat = manifest.by_source_label("vggsound")
    per_cat = Counter(label_cat[c.label].name for c in idx.clips)
    assert set(per_cat) == set(manifest.names)
    for split in ("train", "test"):
        assert {label_cat[c.label].name for c in idx.clips if c.split == split} == set(
            manifest.names
        )
    assert all(V.audio_readable(c.path) for c in idx.clips[:10])


def test_avs_synthetic_release_reads_cleanly(demo_corpus):
    skips = SkipCounter()
    rel = read_release(demo_corpus.avs_synthetic_root, skips)
    counts = demo_corpus.info["counts"]["avs_synthetic"]
    assert len(rel.rows) == counts["rows"] and skips.total == 0
    assert {r.split for r in rel.rows} == {"train", "validation", "test"}
    per_cat = Counter(r.category for r in rel.rows)
    assert set(per_cat) == set(rel.categories.values()) and all(n > 0 for n in per_cat.values())
    for r in rel.rows:
        assert r.split == "train" or r.audio_path.is_file()
        assert r.instance.mask.png.is_file() and r.instance.area > 0
    train_ids = {r.category_id for r in rel.rows if r.split == "train"}
    assert all(rel.audio_pool.get(cid) for cid in train_ids)
