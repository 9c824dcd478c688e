"""sources/vggss and sources/flickr_soundnet on small trees written here: which files are found
(suffix and directory precedence, video fallbacks), what is counted as skipped, how annotations
are read, and the one-line errors. Expected values follow from each tree's construction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avsynth.errors import SourceError
from avsynth.sources.flickr_soundnet import open_flickr, read_flickr_xml
from avsynth.sources.records import SkipCounter
from avsynth.sources.vggss import corrupt_coordinates, find_media, open_vggss, read_id_list, read_vggss_json

NO_FRAME = "missing frame (no frames/{id}.jpg, no video)"
NO_AUDIO = "missing audio (no audio/{id}.wav, no video)"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def message(fn, *args) -> str:
    with pytest.raises(SourceError) as e:
        fn(*args)
    return str(e.value)


def test_read_vggss_json_entries_and_errors(tmp_path):
    p = tmp_path / "vggss.json"
    p.write_text(json.dumps([{"file": "b_000002", "class": "dog", "bbox": [[0, 0.5, 1, 1]]},
                             {"file": "a_000001", "bbox": [[0.1, 0.2, 0.3, 0.4], [-2.88e16, 0, 1, 1]]}]))
    ann = read_vggss_json(str(p))
    assert list(ann) == ["b_000002", "a_000001"]  # file order
    assert ann["b_000002"] == ("dog", ((0.0, 0.5, 1.0, 1.0),))
    assert ann["a_000001"] == ("", ((0.1, 0.2, 0.3, 0.4), (-2.88e16, 0.0, 1.0, 1.0)))  # no class: ""
    assert all(type(v) is float for _, boxes in ann.values() for b in boxes for v in b)
    assert message(read_vggss_json, tmp_path / "none.json") == f"{tmp_path / 'none.json'}: VGG-SS annotation file not found"
    cases = {
        "{not json": "not a readable VGG-SS json: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "[]": "a VGG-SS json is a non-empty list of {file, class, bbox} entries",
        '{"file": "a"}': "a VGG-SS json is a non-empty list of {file, class, bbox} entries",
        '[["a"]]': "entry 0: needs 'file' (string) and 'bbox'",
        '[{"file": "a", "bbox": []}, {"file": 3, "bbox": []}]': "entry 1: needs 'file' (string) and 'bbox'",
        '[{"file": "a"}]': "entry 0: needs 'file' (string) and 'bbox'",
    }
    box_msg = "'bbox' must be a list of [xmin, ymin, xmax, ymax] lists of finite numbers"
    for bad_box in ('"0,0,1,1"', "[[0, 0, 1]]", "[[0, 0, 1, 1, 1]]", "[[0, 0, true, 1]]", '[[0, 0, "1", 1]]',
                    "[[0, 0, NaN, 1]]", "[[0, 0, Infinity, 1]]", "[[0, 0, 1, 1], [0, 0]]", '[{"x": 1}]'):
        cases['[{"file": "a", "bbox": [[0, 0, 1, 1]]}, {"file": "c_1", "bbox": ' + bad_box + "}]"] = \
            f"entry 1 (c_1): {box_msg}"
    for text, want in cases.items():
        p.write_text(text)
        assert message(read_vggss_json, p) == f"{p}: {want}", text
    p.write_bytes(b"\xff\xfe[")
    assert message(read_vggss_json, p).startswith(f"{p}: not a readable VGG-SS json: ")
    p.write_text('[{"file": "a", "bbox": []}]')  # an entry with no box is read (no box to draw)
    assert read_vggss_json(p) == {"a": ("", ())}


def test_corrupt_coordinates_counts_negatives():
    assert corrupt_coordinates(((0.0, 0.0, 1.0, 1.0),)) == 0  # zero is not corrupt
    assert corrupt_coordinates(((-2.88e16, 0.0, 1.0, -1e-9), (0.2, -0.1, 0.5, 0.5))) == 3
    assert corrupt_coordinates(()) == 0


def test_read_id_list_first_column(tmp_path):
    p = tmp_path / "flickr_test.csv"
    p.write_text(" 100,202\n\n200\n ,9\n300,x\n")
    assert read_id_list(str(p), "the test list") == ["100", "200", "300"]
    p.write_text("\n , 1\n")
    assert message(read_id_list, str(p), "Flickr test list") == f"{p}: Flickr test list lists no ids"
    assert message(read_id_list, tmp_path / "gone.csv", "Flickr test list") == f"{tmp_path / 'gone.csv'}: Flickr test list not found"


def test_find_media_precedence_and_fallbacks(tmp_path):
    root = tmp_path
    touch(root / "frames" / "a.png")
    touch(root / "frames" / "a.jpg")  # .jpg before .png
    touch(root / "audio" / "a.flac")
    touch(root / "audio" / "a.wav")  # .wav before .flac
    touch(root / "frames" / "b.jpeg")
    touch(root / "videos" / "b.webm")  # a video gives the audio when there is no audio file
    touch(root / "video" / "c.mkv")  # video only: frame None, audio = the video
    touch(root / "videos" / "c.mp4")  # "video/" is looked at before "videos/"
    touch(root / "video" / "d.webm")
    touch(root / "video" / "d.mp4")  # .mp4 before .webm
    touch(root / "audio" / "d.wav")
    touch(root / "audio" / "e.wav")  # audio, no frame, no video
    touch(root / "frames" / "f.jpg")  # frame, no audio, no video
    touch(root / "frames" / "g.gif")  # not a frame suffix
    touch(root / "audio" / "g.mp3")  # not an audio suffix
    skips = SkipCounter()
    got = find_media(root, ["a", "b", "c", "d", "e", "f", "g"], skips)
    assert got == {
        "a": (root / "frames" / "a.jpg", None, root / "audio" / "a.wav"),
        "b": (root / "frames" / "b.jpeg", root / "videos" / "b.webm", root / "videos" / "b.webm"),
        "c": (None, root / "video" / "c.mkv", root / "video" / "c.mkv"),
        "d": (None, root / "video" / "d.mp4", root / "audio" / "d.wav"),
    }
    assert skips.as_dict() == {NO_AUDIO: {"count": 1, "examples": ["f"]},
                               NO_FRAME: {"count": 2, "examples": ["e", "g"]}}


def vggss_tree(tmp_path) -> Path:
    root = tmp_path / "vggss"
    for i in ("a_1", "b_2", "c_3"):
        touch(root / "frames" / f"{i}.jpg")
        touch(root / "audio" / f"{i}.wav")
    touch(root / "frames" / "d_4.jpg")  # no audio
    (root / "vggss.json").write_text(json.dumps([
        {"file": "c_3", "class": "cat", "bbox": [[0.1, 0.1, 0.5, 0.5]]},
        {"file": "a_1", "class": "dog", "bbox": [[-1, 0, 1, -3], [0, -2, 1, 1]]},
        {"file": "d_4", "class": "cow", "bbox": [[0, 0, 1, 1]]},
        {"file": "b_2", "class": "owl", "bbox": [[0.2, 0.2, 0.4, 0.4]]}]))
    return root


def test_open_vggss_defaults_skips_and_corrupt(tmp_path):
    root = vggss_tree(tmp_path)
    s = open_vggss(str(root))  # no test list: every annotated clip, in file order
    assert s.dataset == "vggss" and s.root == root and s.annotations == root / "vggss.json"
    assert [(it.id, it.category) for it in s.items] == [("c_3", "cat"), ("a_1", "dog"), ("b_2", "owl")]
    it = s.items[1]
    assert (it.dataset, it.frame, it.audio, it.video) == ("vggss", root / "frames" / "a_1.jpg",
                                                          root / "audio" / "a_1.wav", None)
    assert it.boxes == ((-1.0, 0.0, 1.0, -3.0), (0.0, -2.0, 1.0, 1.0))
    assert s.listed == 4 and s.skips.as_dict() == {NO_AUDIO: {"count": 1, "examples": ["d_4"]}}
    assert s.corrupt_entries == ("a_1",) and s.corrupt_coordinates == 3
    (root / "vggss_test.csv").write_text("b_2\nzz_9\nd_4\na_1\n")  # found by default when present
    s = open_vggss(root)
    assert [it.id for it in s.items] == ["b_2", "a_1"] and s.listed == 4
    assert s.skips.as_dict() == {"not in the annotation file": {"count": 1, "examples": ["zz_9"]},
                                 NO_AUDIO: {"count": 1, "examples": ["d_4"]}}
    other = tmp_path / "list.csv"
    other.write_text("c_3\n")
    ann = tmp_path / "elsewhere.json"
    ann.write_text((root / "vggss.json").read_text())
    s = open_vggss(root, str(ann), str(other))  # explicit paths win
    assert [it.id for it in s.items] == ["c_3"] and s.annotations == ann and s.listed == 1
    assert s.corrupt_entries == () and s.corrupt_coordinates == 0
    touch(root / "video" / "b_2.mp4")
    (root / "audio" / "b_2.wav").unlink()
    (root / "frames" / "b_2.jpg").unlink()
    (other.parent / "only_b.csv").write_text("b_2\n")
    s = open_vggss(root, None, other.parent / "only_b.csv")  # b_2 has only a video now
    assert [(it.id, it.frame, it.video, it.audio) for it in s.items] == [
        ("b_2", None, root / "video" / "b_2.mp4", root / "video" / "b_2.mp4")]
    (other.parent / "none.csv").write_text(" ,x\n")
    assert message(open_vggss, root, None, other.parent / "none.csv") == f"{other.parent / 'none.csv'}: VGG-SS test list lists no ids"
    assert message(open_vggss, root, None, other.parent / "gone.csv") == f"{other.parent / 'gone.csv'}: VGG-SS test list not found"
    assert message(open_vggss, tmp_path / "nope") == (
        f"{tmp_path / 'nope'}: VGG-SS root not found (expected frames/ and audio/ inside)")
    (tmp_path / "plain").write_text("")
    assert "VGG-SS root not found" in message(open_vggss, tmp_path / "plain")


BOX = "<bbox><label>{n}</label><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bbox>"


def test_read_flickr_xml(tmp_path):
    p = tmp_path / "1.xml"
    p.write_text("<annotation><bbox><n>0</n><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bbox>"
                 "<object><name>x</name>" + BOX.format(n=1, a=10, b=20, c=100, d=200) + "</object>"
                 "<object>" + BOX.format(n=2, a=0, b=0, c=256, d=128) + "<box><n>0</n><xmin>5</xmin></box></object>"
                 "</annotation>")
    # only <bbox> grandchildren of the root, each after its first child: the root's own child is not
    assert read_flickr_xml(str(p)) == ((10, 20, 100, 200), (0, 0, 256, 128))
    assert message(read_flickr_xml, tmp_path / "no.xml") == f"{tmp_path / 'no.xml'}: Flickr-SoundNet annotation not found"
    p.write_text("<annotation><object>")
    assert message(read_flickr_xml, p) == (f"{p}: not a readable Flickr-SoundNet XML annotation: "
                                           "no element found: line 1, column 20")
    p.write_text("<a><o><bbox><n>1</n><xmin>1</xmin><ymin>x</ymin><xmax>3</xmax><ymax>4</ymax></bbox></o></a>")
    assert message(read_flickr_xml, p) == (f"{p}: a <bbox> needs a first child then four integer coordinates, "
                                           "got ['1', 'x', '3', '4']")
    p.write_text("<a><o><bbox><n>1</n><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax></bbox></o></a>")
    assert message(read_flickr_xml, p).endswith("got ['1', '2', '3']")
    p.write_text("<a><o><bbox><n>1</n><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax/></bbox></o></a>")
    assert message(read_flickr_xml, p).endswith("got ['1', '2', '3', None]")
    p.write_text("<a><o><name>n</name></o></a>")
    assert read_flickr_xml(p) == ()
    # children after the four coordinates are not read (the reference reads children 1-4 only)
    p.write_text("<a><o><bbox><n>1</n><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax><note>x</note>"
                 "</bbox></o></a>")
    assert read_flickr_xml(p) == ((1, 2, 3, 4),)


def flickr_tree(tmp_path) -> Path:
    root = tmp_path / "flickr"
    for i, box in (("30", (1, 2, 3, 4)), ("10", (5, 6, 7, 8)), ("20", (0, 0, 256, 256))):
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{i}.xml").write_text(
            "<annotation><object>" + BOX.format(n=1, a=box[0], b=box[1], c=box[2], d=box[3]) + "</object></annotation>")
        touch(root / "frames" / f"{i}.jpg")
        touch(root / "audio" / f"{i}.wav")
    (root / "audio" / "20.wav").unlink()
    touch(root / "Annotations" / "notes.txt")
    return root


def test_open_flickr(tmp_path):
    root = flickr_tree(tmp_path)
    s = open_flickr(str(root))  # no test list: the XML files' ids, sorted
    assert s.dataset == "flickr" and s.annotations == root / "Annotations" and s.listed == 3
    assert [(it.id, it.category, it.boxes) for it in s.items] == [("10", "", ((5, 6, 7, 8),)),
                                                                   ("30", "", ((1, 2, 3, 4),))]
    assert (s.items[0].dataset, s.items[0].frame, s.items[0].audio) == (
        "flickr", root / "frames" / "10.jpg", root / "audio" / "10.wav")
    assert s.skips.as_dict() == {NO_AUDIO: {"count": 1, "examples": ["20"]}}
    (root / "flickr_test.csv").write_text("30,1\n99,2\n")
    s = open_flickr(root)
    assert [it.id for it in s.items] == ["30"] and s.listed == 2
    assert s.skips.as_dict() == {"missing annotation (no {id}.xml)": {"count": 1, "examples": ["99"]}}
    ann = tmp_path / "xmls"
    ann.mkdir()
    (ann / "10.xml").write_text((root / "Annotations" / "30.xml").read_text())
    lst = tmp_path / "l.csv"
    lst.write_text("10\n")
    s = open_flickr(root, str(ann), str(lst))
    assert [(it.id, it.boxes) for it in s.items] == [("10", ((1, 2, 3, 4),))] and s.annotations == ann
    touch(root / "videos" / "20.mkv")  # 20: a frame, no audio file, a video: its audio from the video
    (lst).write_text("20\n")
    touch(root / "video" / "30.mp4")  # 30 has its frame and audio files too: the video is only recorded
    lst.write_text("20\n30\n")
    s = open_flickr(root, None, lst)
    assert [(it.id, it.frame, it.video, it.audio) for it in s.items][1] == (
        "30", root / "frames" / "30.jpg", root / "video" / "30.mp4", root / "audio" / "30.wav")
    lst.write_text("20\n")
    s = open_flickr(root, None, lst)
    assert s.root == root
    assert [(it.id, it.frame, it.video, it.audio) for it in s.items] == [
        ("20", root / "frames" / "20.jpg", root / "videos" / "20.mkv", root / "videos" / "20.mkv")]
    (lst).write_text(" ,x\n")
    assert message(open_flickr, root, None, lst) == f"{lst}: Flickr-SoundNet test list lists no ids"
    assert message(open_flickr, root, None, tmp_path / "gone.csv") == f"{tmp_path / 'gone.csv'}: Flickr-SoundNet test list not found"
    assert message(open_flickr, tmp_path / "nope") == (
        f"{tmp_path / 'nope'}: Flickr-SoundNet root not found (expected frames/ and audio/ inside)")
    bare = tmp_path / "bare"
    bare.mkdir()
    assert message(open_flickr, bare) == (f"{bare / 'Annotations'}: Flickr-SoundNet annotation folder "
                                          "(one {id}.xml per image) not found")
    (bare / "Annotations").mkdir()
    touch(bare / "Annotations" / "readme.txt")
    assert message(open_flickr, bare) == f"{bare / 'Annotations'}: no .xml annotation files"
