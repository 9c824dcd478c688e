"""sources/vggsound on small files written here: which csv / test-list rows are valid, what each
counted skip names, which local file a clip gets, the header probe, the manifest-label check.
Expected values follow from each file's construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avsynth.errors import SourceError
from avsynth.manifest import load_manifest
from avsynth.sources import vggsound as V
from avsynth.sources.records import SkipCounter
from tests.fixtures import write_manifest


def csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_rows_valid_and_malformed(tmp_path):
    p = csv(tmp_path / "vggsound.csv",
            'aaa,0,"bird chirping, tweeting",train\n'  # start 0 is valid
            "\n"
            ",,,\n"  # a row of empty fields: skipped, not counted
            "bbb,5,dog barking,val\n"  # split not train/test
            " ,5,dog barking,test\n"  # no ytid
            "ccc,5, ,test\n"  # no label
            "ddd,-1,dog barking,test\n"  # negative start
            "eee,x,dog barking,test\n"  # not an integer
            "fff,5,dog barking\n"  # three fields
            "ggg,5,dog barking,test,extra\n"  # five fields
            "hhh, 7 ,dog barking , test\n")  # fields are stripped
    skips = SkipCounter()
    rows = V.parse_vggsound_csv(p, skips)
    assert rows == [V.VGGSoundRow("aaa", 0, "bird chirping, tweeting", "train"),
                    V.VGGSoundRow("hhh", 7, "dog barking", "test")]
    assert rows[1].audio_id == "hhh_000007"
    assert skips.as_dict() == {V.SKIP_MALFORMED: {"count": 7, "examples": [
        "vggsound.csv:4", "vggsound.csv:5", "vggsound.csv:6", "vggsound.csv:7", "vggsound.csv:8"]}}
    bad = csv(tmp_path / "bad.csv", "\nx,1\ny,2,3,4,5,6,7\nz,1,l,nope\n")
    with pytest.raises(SourceError) as e:
        V.parse_vggsound_csv(bad, SkipCounter())
    assert str(e.value) == (f"{bad}: no valid 'ytid,start_seconds,label,split' rows (3 malformed; first: "
                            "line 2: ['x', '1'])")
    blank = csv(tmp_path / "blank.csv", ",,,\n , \n")  # rows, but none with content: nothing malformed either
    with pytest.raises(SourceError) as e:
        V.parse_vggsound_csv(blank, SkipCounter())
    assert str(e.value).endswith("rows (0 malformed; first: )")
    six = csv(tmp_path / "six.csv", "a,b,c,d,e,f,g\n")
    with pytest.raises(SourceError, match=r"\(1 malformed; first: line 1: \['a', 'b', 'c', 'd', 'e'\]\)$"):
        V.parse_vggsound_csv(six, SkipCounter())


def test_test_list_rows(tmp_path):
    p = csv(tmp_path / "test.csv",
            "abc_000010.mp4,dog barking\n"
            "\n"  # a blank line does not end the list
            "a_b-c_000002.wav,owl hooting\n"  # ytids may hold "_": the start is after the last one
            "noext_000003,cat meowing\n"
            "flac_000004.flac,cow lowing\n"
            "dot_12.5,label\n"  # not an audio extension: "12.5" is not a start
            "_000005.mp4,label\n"  # no ytid
            "empty_000006.mp4, \n"  # no label
            "three_000007.mp4,a,b\n"
            "abc_x.mp4,label\n"
            " , \n"  # no content: skipped, not counted
            "two_000008.mp4.mp4,label\n")  # one extension is removed: "000008.mp4" is not a start
    rows = V.read_vggsound_test_list(p)  # no SkipCounter given: the skips are still counted somewhere
    assert [(r.ytid, r.start_seconds, r.label, r.split) for r in rows] == [
        ("abc", 10, "dog barking", "test"), ("a_b-c", 2, "owl hooting", "test"),
        ("noext", 3, "cat meowing", "test"), ("flac", 4, "cow lowing", "test")]
    skips = SkipCounter(max_examples=10)
    V.read_vggsound_test_list(p, skips)
    assert skips.as_dict() == {V.SKIP_MALFORMED: {"count": 6, "examples": [
        "test.csv:6", "test.csv:7", "test.csv:8", "test.csv:9", "test.csv:10", "test.csv:12"]}}
    none = csv(tmp_path / "none.csv", "x,y\n")
    with pytest.raises(SourceError) as e:
        V.read_vggsound_test_list(none)
    assert str(e.value) == f"{none}: no valid '{{ytid}}_{{start}}.mp4,label' rows"
    with pytest.raises(SourceError) as e:
        V.read_vggsound_test_list(tmp_path / "gone.csv")
    assert str(e.value) == f"{tmp_path / 'gone.csv'}: VGGSound test list not found"


def wav(path: Path, frames: int, rate: int = 16_000) -> Path:
    sf.write(path, np.zeros(frames), rate)
    return path


def test_audio_readable_probe(tmp_path):
    assert V.audio_readable(wav(tmp_path / "a.wav", 1600))
    assert V.audio_readable(wav(tmp_path / "one.wav", 1))  # one frame is a stream
    assert V.audio_readable(wav(tmp_path / "slow.wav", 4, rate=1))  # any positive rate
    assert not V.audio_readable(wav(tmp_path / "empty.wav", 0))
    (tmp_path / "junk.flac").write_bytes(b"not audio")
    assert not V.audio_readable(tmp_path / "junk.flac")
    for name in ("v.mp4", "V.MP4"):  # container audio: not probed here
        (tmp_path / name).write_bytes(b"not probed")
        assert V.audio_readable(tmp_path / name)


def test_index_rows_files_skips_and_licence(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    wav(audio / "aaa_000001.wav", 1600)
    wav(audio / "aaa_000001.flac", 1600)  # wav preferred
    (audio / "bbb_000002.mp4").write_bytes(b"mp4")
    wav(audio / "ccc_000003.flac", 0)  # unreadable: an empty stream
    (audio / "ddd_000004.wav").mkdir()  # a directory, not a clip
    rows = [V.VGGSoundRow("bbb", 2, "dog barking", "test"), V.VGGSoundRow("aaa", 1, "cat meowing", "train"),
            V.VGGSoundRow("aaa", 1, "cat meowing", "train"),  # duplicate
            V.VGGSoundRow("aaa", 1, "cat meowing", "test"),  # the same clip in the other split
            V.VGGSoundRow("ccc", 3, "dog barking", "train"), V.VGGSoundRow("ddd", 4, "dog barking", "train")]
    skips = SkipCounter()
    idx = V.index_vggsound_rows(rows, audio, None, skips)  # no probe by default: ccc kept
    assert [(c.audio_id, c.label, c.split, c.path.name, c.start_seconds) for c in idx.clips] == [
        ("aaa_000001", "cat meowing", "train", "aaa_000001.wav", 1),
        ("bbb_000002", "dog barking", "test", "bbb_000002.mp4", 2),
        ("ccc_000003", "dog barking", "train", "ccc_000003.flac", 3)]
    assert {c.license for c in idx.clips} == {V.LICENSE} and idx.clips[0].source == "vggsound"
    assert (idx.rows_total, idx.rows_selected, idx.missing_by_label) == (6, 4, {"dog barking": 1})
    assert skips.as_dict() == {
        V.SKIP_MISSING: {"count": 1, "examples": ["ddd_000004"]},
        V.SKIP_TWO_SPLITS: {"count": 1, "examples": ["aaa_000001 (train and test)"]},
        V.SKIP_DUPLICATE: {"count": 1, "examples": ["aaa_000001"]}}
    by = idx.by_label()
    assert {k: [c.audio_id for c in v] for k, v in by.items()} == {
        "cat meowing": ["aaa_000001"], "dog barking": ["bbb_000002", "ccc_000003"]}
    probed = SkipCounter()
    idx = V.index_vggsound_rows(rows, audio, None, probed, probe=True)
    assert [c.audio_id for c in idx.clips] == ["aaa_000001", "bbb_000002"]
    assert probed.as_dict()[V.SKIP_UNREADABLE] == {"count": 1, "examples": [str(audio / "ccc_000003.flac")]}
    with pytest.raises(SourceError, match="VGGSound audio directory not found"):
        V.index_vggsound_rows(rows, tmp_path / "none", None, SkipCounter())


def test_manifest_labels_are_checked(tmp_path):
    manifest = load_manifest(write_manifest(tmp_path / "m.yaml", [
        {"name": "dog", "lvis": ["dog"], "vggsound": ["dog barkin", "my dog noise"]},
        {"name": "cat", "lvis": ["cat"], "vggsound": ["zzzz qqqq xxxx"]}]))
    audio = tmp_path / "audio"
    audio.mkdir()
    rows = [V.VGGSoundRow("a", 1, "my dog noise", "train")]  # not a class, but in the csv: fine
    skips = SkipCounter()
    V.index_vggsound_rows(rows, audio, manifest, skips)
    # the three closest class names (difflib, cutoff 0.6), or none
    assert skips.as_dict()[V.SKIP_LABEL_ABSENT] == {"count": 2, "examples": [
        "'dog barkin' (closest: 'dog barking', 'dog baying', 'fox barking')",
        "'zzzz qqqq xxxx' (closest: none)"]}
    assert V.SKIP_MISSING in skips.counts
    s = SkipCounter()
    V.check_labels({"playing gitar"}, set(), s)
    assert s.examples[V.SKIP_LABEL_ABSENT] == ["'playing gitar' (closest: 'playing sitar', 'playing guiro', "
                                               "'playing zither')"]
    assert len(V.vggsound_classes()) == 309
