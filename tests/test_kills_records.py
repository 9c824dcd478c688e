"""sources/records: the MaskRef one-form rule, ImageLabels' key and SkipCounter's counting, example
cap, merge and dict round trip (the build record's ``skipped`` block), with hand-stated values."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsynth.sources.records import ImageLabels, MaskRef, SkipCounter


def test_maskref_needs_exactly_one_form():
    assert MaskRef(polygons=((0.0, 0.0, 1.0, 0.0, 1.0, 1.0),)).rle is None
    assert MaskRef(rle=((2, 3), "abc")).png is None
    assert MaskRef(png=Path("m.png"), png_member="a/m.png").polygons is None
    for kwargs in ({}, {"polygons": (), "png": Path("m.png")}, {"rle": ((1, 1), "0"), "png": Path("m.png")},
                   {"polygons": (), "rle": ((1, 1), "0"), "png": Path("m.png")}):
        with pytest.raises(ValueError, match="^MaskRef needs exactly one of polygons, rle, png$"):
            MaskRef(**kwargs)
    MaskRef(polygons=())  # an empty polygon tuple is still "given" (not None)


def test_image_labels_key():
    labels = ImageLabels("openimages", "0a1b", Path("x.jpg"), 4, 3)
    assert labels.image_key == "openimages:0a1b"
    assert (labels.negatives, labels.not_exhaustive, labels.license) == ((), (), "")


def test_skip_counter_counts_caps_examples_and_merges():
    s = SkipCounter(max_examples=2)
    s.skip("bad png", "a")
    s.skip("bad png", "b")
    s.skip("bad png", "c")  # counted, example over the cap not kept
    s.skip("bad png")  # counted, no example
    s.skip("no audio")  # a reason with no example gets no examples entry
    assert s.counts == {"bad png": 4, "no audio": 1} and s.total == 5
    assert s.examples == {"bad png": ["a", "b"]}
    assert s.as_dict() == {"bad png": {"count": 4, "examples": ["a", "b"]},
                           "no audio": {"count": 1, "examples": []}}
    assert list(SkipCounter(counts={"z": 1, "a": 2}).as_dict()) == ["a", "z"]  # sorted by reason
    assert SkipCounter().max_examples == 5 and SkipCounter().total == 0

    other = SkipCounter()
    for ex in ("d", "e", "f"):
        other.skip("bad png", ex)
    other.skip("truncated", "t1")
    s.merge(other)
    assert s.counts == {"bad png": 7, "no audio": 1, "truncated": 1} and s.total == 9
    assert s.examples == {"bad png": ["a", "b"], "truncated": ["t1"]}  # still capped at 2
    one = SkipCounter(max_examples=3)
    one.skip("r", "a")
    one.merge(other)  # room for two more of "bad png"'s and "r" untouched
    assert one.examples == {"r": ["a"], "bad png": ["d", "e", "f"], "truncated": ["t1"]}
    capped = SkipCounter(max_examples=1)
    capped.skip("bad png", "x")
    capped.merge(other)  # full already: max(0, 1 - 1) = 0 added
    assert capped.examples["bad png"] == ["x"] and capped.counts["bad png"] == 4


def test_skip_counter_dict_round_trip():
    d = {"bad png": {"count": 3, "examples": ["a"]}, "no audio": {"count": "2"}}
    s = SkipCounter.from_dict(d)
    assert s.counts == {"bad png": 3, "no audio": 2} and isinstance(s.counts["no audio"], int)
    assert s.examples == {"bad png": ["a"], "no audio": []}
    assert s.as_dict() == {"bad png": {"count": 3, "examples": ["a"]}, "no audio": {"count": 2, "examples": []}}
    assert SkipCounter.from_dict(s.as_dict()).as_dict() == s.as_dict()
    assert SkipCounter.from_dict({}).total == 0
