"""sources/_files: directory index, header probes, mask decoding and measuring, CSV opening with
one-line errors — on files written here, with hand-stated expectations."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avsynth.errors import SourceError
from avsynth.sources._files import DirIndex, csv_rows, decode_mask, image_size, mask_box_area, open_text


def test_dir_index_lists_plain_files_once(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"y")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.jpg").write_bytes(b"z")
    idx = DirIndex(str(tmp_path))
    assert idx.names == {"a.jpg", "b.png"}  # not the sub-directory, not its files
    assert "a.jpg" in idx and "sub" not in idx and "c.jpg" not in idx
    assert idx.path("a.jpg") == tmp_path / "a.jpg" and idx.path("zz.jpg") is None
    (tmp_path / "late.jpg").write_bytes(b"w")
    assert "late.jpg" not in idx  # listed once
    assert DirIndex(tmp_path / "missing").names == set()
    assert DirIndex(tmp_path / "a.jpg").names == set()  # a file, not a directory
    empty = tmp_path / "empty"
    empty.mkdir()
    assert DirIndex(empty).names == set() and DirIndex(empty).path("a") is None


def test_image_size_reads_the_header(tmp_path):
    Image.new("RGB", (7, 5)).save(tmp_path / "i.jpg")
    assert image_size(tmp_path / "i.jpg") == (7, 5)
    Image.new("L", (1, 1)).save(tmp_path / "dot.png")  # the smallest image is still an image
    assert image_size(tmp_path / "dot.png") == (1, 1)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    assert image_size(tmp_path / "bad.jpg") is None
    assert image_size(tmp_path / "missing.jpg") is None
    with open(tmp_path / "i.jpg", "rb") as fh:
        head = fh.read(30)
    (tmp_path / "cut.jpg").write_bytes(head)  # truncated before the size
    assert image_size(tmp_path / "cut.jpg") is None


def png(arr, mode=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "PNG")
    return buf.getvalue()


def test_decode_mask_forms(tmp_path):
    gray = np.array([[0, 1, 255], [0, 0, 7]], dtype=np.uint8)
    want = np.array([[False, True, True], [False, False, True]])
    assert np.array_equal(decode_mask(png(gray)), want)
    (tmp_path / "m.png").write_bytes(png(gray))
    got = decode_mask(tmp_path / "m.png")  # a path too
    assert got.dtype == bool and np.array_equal(got, want)
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0, 2] = 1  # blue only → foreground
    rgb[1, 2, 0] = 200
    assert np.array_equal(decode_mask(png(rgb)), [[True, False, False], [False, False, True]])
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 3] = 255  # alpha alone is not foreground
    rgba[1, 1, 1] = 9
    assert np.array_equal(decode_mask(png(rgba)), [[False, False, False], [False, True, False]])
    la = np.zeros((2, 3, 2), np.uint8)
    la[..., 1] = 255
    la[0, 2, 0] = 4  # luminance channel counts, alpha does not
    assert np.array_equal(decode_mask(png(la, "LA")), [[False, False, True], [False, False, False]])
    assert decode_mask(b"junk") is None
    assert decode_mask(png(gray)[:40]) is None  # truncated
    assert decode_mask(tmp_path / "missing.png") is None


def test_mask_box_area_in_the_image_frame():
    m = np.zeros((4, 6), bool)
    m[1:3, 2:5] = True  # rows 1-2, cols 2-4
    assert mask_box_area(m, 6, 4) == ((2.0, 1.0, 3.0, 2.0), 6.0)
    # a mask at half the image's resolution is scaled ×2 in x and ×3 in y
    assert mask_box_area(m, 12, 12) == ((4.0, 3.0, 6.0, 6.0), 36.0)
    one = np.zeros((4, 6), bool)
    one[3, 5] = True
    assert mask_box_area(one, 6, 4) == ((5.0, 3.0, 1.0, 1.0), 1.0)
    assert mask_box_area(np.zeros((4, 6), bool), 6, 4) is None


def test_open_text_and_csv_rows(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes('\ufeffid,name\n1,"x, y"\n2,z\n'.encode("utf-8"))
    assert list(csv_rows(p, "the list")) == [(1, ["id", "name"]), (2, ["1", "x, y"]), (3, ["2", "z"])]
    with open_text(p, "the list") as fh:
        assert fh.read().startswith("id,")  # BOM stripped

    def err(path, what="the list"):
        with pytest.raises(SourceError) as e:
            list(csv_rows(path, what))
        return str(e.value)

    assert err(tmp_path / "none.csv") == f"{tmp_path / 'none.csv'}: the list not found"
    (tmp_path / "dir.csv").mkdir()
    assert err(tmp_path / "dir.csv") == f"{tmp_path / 'dir.csv'}: the list not found"
    (tmp_path / "empty.csv").write_bytes(b" \n\t\n")
    assert err(tmp_path / "empty.csv", "labels") == f"{tmp_path / 'empty.csv'}: labels is empty"
    (tmp_path / "nul.csv").write_bytes(b"a,b\n\x00\x01")
    assert err(tmp_path / "nul.csv") == f"{tmp_path / 'nul.csv'}: the list contains NUL bytes; it is not a CSV text file"
    (tmp_path / "latin.csv").write_bytes(b"a,caf\xe9,b\nmore,text,here\n")
    assert err(tmp_path / "latin.csv") == (f"{tmp_path / 'latin.csv'}: the list is not UTF-8 text (byte 5); "
                                           "it is not a CSV text file")
    # a multi-byte character cut by the 64 KiB probe is not an error: the file is valid UTF-8
    cut = b"a," * 32767 + b"a\xc3\xa9\n"  # 65535 bytes, then "é" straddling the 65,536-byte probe
    (tmp_path / "cut.csv").write_bytes(cut)
    rows = list(csv_rows(tmp_path / "cut.csv", "the list"))
    assert len(rows) == 1 and rows[0][1][-1] == "aé"
    # the probe is the first 64 KiB: a NUL byte after it is not refused, csv reads it as text
    (tmp_path / "nul_late.csv").write_bytes(b"x" * 65536 + b"\x00,y\n")
    assert list(csv_rows(tmp_path / "nul_late.csv", "the list")) == [(1, ["x" * 65536 + "\x00", "y"])]
    # a quoted field may hold a line break, kept as written (the file is opened with newline="")
    (tmp_path / "multi.csv").write_bytes(b'id,text\r\n1,"two\r\nlines"\r\n2,z\r\n')
    assert list(csv_rows(tmp_path / "multi.csv", "the list")) == [
        (1, ["id", "text"]), (3, ["1", "two\r\nlines"]), (4, ["2", "z"])]
    # an invalid byte beyond the probe: decoding error while reading, named with its line
    late = b"x,y\n" * 20000 + b"bad,\xff\xfe\n"
    (tmp_path / "late.csv").write_bytes(late)
    msg = err(tmp_path / "late.csv")
    assert msg.startswith(f"{tmp_path / 'late.csv'}: the list is not UTF-8 text near line ")
    assert msg.endswith("invalid start byte")
    # a field over csv's field size limit (131,072 characters) on line 2
    (tmp_path / "bad.csv").write_bytes(b"a,b\n" + b"x" * 140_000 + b"\n")
    assert err(tmp_path / "bad.csv") == (f"{tmp_path / 'bad.csv'}: malformed CSV at line 2: "
                                         "field larger than field limit (131072)")


def test_open_text_read_error_is_one_line():
    """A file that exists but cannot be read: /proc/self/mem is a regular file whose read at
    offset 0 fails with EIO (whoever runs the test, root included)."""
    mem = Path("/proc/self/mem")
    if not mem.is_file():
        pytest.skip("no /proc/self/mem (not Linux)")
    with pytest.raises(SourceError) as e:
        open_text(mem, "the list")
    assert str(e.value) == "/proc/self/mem: cannot read the list: Input/output error"
