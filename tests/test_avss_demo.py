"""The demo AVSS tree (``--scale avss``): few classes, each sounding in several train videos."""

from __future__ import annotations

import csv
from collections import Counter

import yaml

from avsynth.demo import SCALES, make_layout
from avsynth.manifest import load_manifest

# The first 8 categories of manifests/avs-synthetic-46.yaml and their AVSBench-semantic object names
# (read off the manifest and the real class list by hand: ambulance is an "emergency-car").
FIRST_8 = {"ambulance": "emergency-car", "cat": "cat", "dog": "dog", "bus": "bus", "horse": "horse",
           "lion": "lion", "bird": "bird", "guitar": "guitar"}


def test_avss_scale_gives_every_class_several_train_videos(labels_dir):
    with open(labels_dir / "avsbench_avss_classes.csv") as f:
        real = {r["name"]: int(r["idx"]) for r in csv.DictReader(f)}  # the real 71 classes, 0 = background
    with open("manifests/avs-synthetic-46.yaml") as f:
        first = [c["name"] for c in yaml.safe_load(f)["categories"][:8]]
    assert first == list(FIRST_8)
    layout, _ = make_layout(load_manifest("avs-synthetic-46"), 0, SCALES["avss"])
    assert [c.name for c in layout.cats] == list(FIRST_8)
    # every category is a real AVSS class, drawn in that class's palette colour (so the semantic
    # masks decode to it; none of them is background in the masks)
    assert [c.avss_name for c in layout.cats] == list(FIRST_8.values())
    assert [c.palette_index for c in layout.cats] == [real[n] for n in FIRST_8.values()]

    def sounding(label, split):
        jobs = [v for v in layout.videos if (v.label, v.split) == (label, split)]
        return jobs, Counter(c for v in jobs for c in v.sounding)

    # S4 (v1s): 48 / 16 / 16 videos, one sounding object each, round robin over the 8 classes
    for split, per_class in (("train", 6), ("val", 2), ("test", 2)):
        jobs, count = sounding("v1s", split)
        assert len(jobs) == 8 * per_class
        assert count == {k: per_class for k in range(8)}
        assert all(len(v.silent) >= 1 and v.sounding[0] not in v.silent for v in jobs)  # a distractor
    # MS3 (v1m): 24 / 8 / 8 videos, two sounding objects and one silent one, all different
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        jobs, count = sounding("v1m", split)
        assert len(jobs) == n and sum(count.values()) == 2 * n
        assert all(len(v.sounding) == 2 and len(set(v.sounding + v.silent)) == 3 for v in jobs)
    # so every class sounds in at least 6 train videos (the default tree gives 1 to 4 per class)
    _, s4 = sounding("v1s", "train")
    _, ms3 = sounding("v1m", "train")
    assert min((s4 + ms3)[k] for k in range(8)) >= 6
