"""VGGSound index: header-less csv with quoted labels, local clips, the real test list."""

from __future__ import annotations

import pytest

from avsynth.errors import SourceError
from avsynth.manifest import load_manifest
from avsynth.sources import vggsound as V
from avsynth.sources.records import SkipCounter
from tests.fixtures import (
    REAL_CLIP,
    REAL_CLIP_LABEL,
    place_clip,
    write_manifest,
    write_vggsound_csv,
)

ROWS = [
    ("FwVYUHKoLtQ", 34, REAL_CLIP_LABEL, "test"),
    ("-0Gj8-vB1q4", 30, "bird chirping, tweeting", "train"),
    ("---g-f_I2yQ", 1, "dog barking", "test"),
    ("zzz_abc_def", 120, "dog barking", "train"),  # no local file
    ("aaaaaaaaaaa", 5, "lions roaring", "train"),  # not in the manifest
]


@pytest.fixture
def manifest(tmp_path):
    return load_manifest(
        write_manifest(
            tmp_path / "m.yaml",
            [
                {"name": "violin", "lvis": ["violin"], "vggsound": [REAL_CLIP_LABEL]},
                {"name": "bird", "lvis": ["bird"], "vggsound": ["bird chirping, tweeting"]},
                {"name": "dog", "lvis": ["dog"], "vggsound": ["dog barking", "dog howling"]},
            ],
        )
    )


@pytest.fixture
def corpus(tmp_path, real_dir):
    csv_path = write_vggsound_csv(tmp_path / "vggsound.csv", ROWS)
    audio = tmp_path / "audio"
    place_clip(real_dir, audio, "FwVYUHKoLtQ", 34, ".wav")
    place_clip(real_dir, audio, "FwVYUHKoLtQ", 34, ".flac")  # wav preferred
    place_clip(real_dir, audio, "-0Gj8-vB1q4", 30, ".flac")
    place_clip(real_dir, audio, "---g-f_I2yQ", 1, ".mp4")
    place_clip(real_dir, audio, "aaaaaaaaaaa", 5, ".wav")
    (audio / "notes.txt").write_text("not audio")
    return csv_path, audio


def test_csv_format_is_the_real_one(corpus):
    text = corpus[0].read_text()
    assert text.splitlines()[1] == '-0Gj8-vB1q4,30,"bird chirping, tweeting",train'


def test_index_with_manifest(corpus, manifest):
    csv_path, audio = corpus
    skips = SkipCounter()
    idx = V.read_vggsound(csv_path, audio, manifest, skips)
    assert idx.rows_total == 5 and idx.rows_selected == 4
    assert [(c.label, c.audio_id, c.path.name, c.split) for c in idx.clips] == [
        ("bird chirping, tweeting", "-0Gj8-vB1q4_000030", "-0Gj8-vB1q4_000030.flac", "train"),
        ("dog barking", "---g-f_I2yQ_000001", "---g-f_I2yQ_000001.mp4", "test"),
        (REAL_CLIP_LABEL, "FwVYUHKoLtQ_000034", "FwVYUHKoLtQ_000034.wav", "test"),
    ]  # fmt: skip
    assert idx.clips[2].start_seconds == 34 and idx.clips[2].source == "vggsound"
    assert "CC BY 4.0" in idx.clips[2].license
    assert idx.missing_by_label == {"dog barking": 1}
    assert skips.counts[V.SKIP_MISSING] == 1
    assert skips.examples[V.SKIP_MISSING] == ["zzz_abc_def_000120"]
    assert set(idx.by_label()) == {"bird chirping, tweeting", "dog barking", REAL_CLIP_LABEL}


def test_index_without_manifest_keeps_all_labels(corpus):
    idx = V.read_vggsound(*corpus, None, SkipCounter())
    assert idx.rows_selected == 5 and len(idx.clips) == 4


def test_real_clip_probe(corpus, manifest, real_dir):
    csv_path, audio = corpus
    (audio / "-0Gj8-vB1q4_000030.flac").write_bytes(b"fLaC but truncated")
    skips = SkipCounter()
    idx = V.read_vggsound(csv_path, audio, manifest, skips, probe=True)
    assert [c.audio_id for c in idx.clips] == ["---g-f_I2yQ_000001", "FwVYUHKoLtQ_000034"]
    assert skips.counts[V.SKIP_UNREADABLE] == 1
    # without probing the index trusts the listing (the decoder skips it later)
    assert len(V.read_vggsound(csv_path, audio, manifest, SkipCounter()).clips) == 3


def test_malformed_rows_are_counted(tmp_path, corpus, manifest):
    csv_path, audio = corpus
    text = csv_path.read_text()
    text += "onlythree,1,dog barking\n"  # wrong field count
    text += "abc,xx,dog barking,train\n"  # non-integer start
    text += "abd,3,dog barking,validation\n"  # bad split
    text += "abe,-3,dog barking,train\n"  # negative start
    text += "\n"  # blank lines are ignored
    text += "FwVYUHKoLtQ,34,playing violin, fiddle,test\n"  # unquoted comma label: 5 fields
    text += '-0Gj8-vB1q4,30,"bird chirping, tweeting",train\n'  # exact duplicate
    text += '-0Gj8-vB1q4,30,"bird chirping, tweeting",test\n'  # same clip in the other split
    text += "-0Gj8-vB1q4,30,dog howling,train\n"  # same clip, second label: kept
    csv_path.write_text(text)
    skips = SkipCounter()
    idx = V.read_vggsound(csv_path, audio, manifest, skips)
    assert skips.counts[V.SKIP_MALFORMED] == 5
    assert skips.counts[V.SKIP_DUPLICATE] == 1 and skips.counts[V.SKIP_TWO_SPLITS] == 1
    assert len(idx.clips) == 4 and idx.rows_total == 8
    assert [c.label for c in idx.clips if c.audio_id == "-0Gj8-vB1q4_000030"] == [
        "bird chirping, tweeting",
        "dog howling",
    ]


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL"),
        (b"\xff\xfe\xfa garbage \xc3\x28 more", "not UTF-8"),
        (b"a,b\nc,d\n", "no valid 'ytid,start_seconds,label,split' rows"),
        (b'"unterminated,1,x,train\n', "no valid"),
    ],
)
def test_not_a_vggsound_csv_is_an_error(tmp_path, content, problem):
    p = tmp_path / "vggsound.csv"
    p.write_bytes(content)
    (tmp_path / "a").mkdir()
    with pytest.raises(SourceError, match=problem) as info:
        V.read_vggsound(p, tmp_path / "a", None, SkipCounter())
    assert "vggsound.csv" in str(info.value)


def test_missing_csv_and_audio_dir(tmp_path, corpus):
    csv_path, _ = corpus
    with pytest.raises(SourceError, match="nope.csv: VGGSound csv not found"):
        V.read_vggsound(tmp_path / "nope.csv", tmp_path, None, SkipCounter())
    with pytest.raises(SourceError, match="noaudio: VGGSound audio directory not found"):
        V.read_vggsound(csv_path, tmp_path / "noaudio", None, SkipCounter())


def test_real_test_list(real_dir, tmp_path, manifest):
    rows = V.read_vggsound_test_list(real_dir / "vggsound" / "test.csv")
    assert len(rows) == 15446
    assert rows[0] == V.VGGSoundRow("glLQrEijrKg", 300, "playing hammond organ", "test")
    labels = {r.label for r in rows}
    assert "heart sounds, heartbeat" in labels and "bird chirping, tweeting" in labels
    assert all(len(r.ytid) == 11 for r in rows)
    audio = tmp_path / "audio"
    place_clip(real_dir, audio, "FwVYUHKoLtQ", 34)  # the real clip is a test-list clip
    skips = SkipCounter()
    idx = V.index_vggsound_rows(rows, audio, manifest, skips)
    assert [(c.audio_id, c.label, c.split) for c in idx.clips] == [
        ("FwVYUHKoLtQ_000034", REAL_CLIP_LABEL, "test")
    ]
    assert idx.rows_selected == 1 + sum(idx.missing_by_label.values())
    assert set(idx.missing_by_label) == {
        REAL_CLIP_LABEL,
        "bird chirping, tweeting",
        "dog barking",
        "dog howling",
    }
    assert skips.counts[V.SKIP_MISSING] == idx.rows_selected - 1


def test_test_list_bad_rows(tmp_path, real_dir):
    p = tmp_path / "t.csv"
    p.write_text("abc_000001.mp4,dog barking\nnounderscore.mp4,x\nabc_0001.mp4\n")
    skips = SkipCounter()
    assert V.read_vggsound_test_list(p, skips) == [V.VGGSoundRow("abc", 1, "dog barking", "test")]
    assert skips.counts[V.SKIP_MALFORMED] == 2


def test_real_clip_is_readable(real_dir):
    assert V.audio_readable(real_dir / REAL_CLIP)


def test_undecodable_bytes_late_in_the_file(tmp_path):
    p = tmp_path / "vggsound.csv"
    p.write_bytes(b"abcdefghijk,1,dog barking,train\n" * 5000 + b"\xff\xfe broken\n")
    (tmp_path / "a").mkdir()
    with pytest.raises(
        SourceError, match=r"vggsound.csv: VGGSound csv is not UTF-8 text near line"
    ):
        V.read_vggsound(p, tmp_path / "a", None, SkipCounter())
