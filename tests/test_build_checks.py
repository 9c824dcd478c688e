"""Build-time checks (issue 12, cases 1 and 2): short, truncated and silent audio; malformed RLE,
far-out polygons, RGB and wrongly-shaped Open Images masks. The corrupt inputs are made here from
the demo corpus; the plan does not read audio or mask pixels, so the corrupted build plans the same
rows as a clean one, and every row not touched must come out byte-identical."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from PIL import Image
from pycocotools import mask as coco_mask

from avsynth.build import BuildOptions, SourcePaths, build
from avsynth.media.audio import decode_audio
from avsynth.media.checks import (SHORT_AUDIO, SILENT_AUDIO, Rejected, check_mask_image,
                                  check_polygons, check_rle, choose_window, rle_length, rms_dbfs)

SIZES = {"train": 60, "validation": 12, "test": 12}
SR = 16000


def _paths(root: Path) -> SourcePaths:
    return SourcePaths(
        lvis_json=[root / "lvis/lvis_v1_train.json", root / "lvis/lvis_v1_val.json"],
        coco_root=root / "coco", openimages_root=root / "openimages",
        vggsound_csv=root / "vggsound/vggsound.csv", vggsound_audio=root / "vggsound/audio",
    )


def _options(out: Path, root: Path, **kw) -> BuildOptions:
    base = dict(out=out, categories="46", sources=_paths(root), sizes=dict(SIZES), seed=0,
                workers=1, rows_per_shard=25)
    base.update(kw)
    return BuildOptions(**base)


def _rows(out: Path) -> dict[str, dict]:
    rows = {}
    for p in sorted((out / "data").glob("*.parquet")):
        for r in pq.read_table(p).to_pylist():
            rows[r["id"]] = r
    return rows


def _copy_corpus(demo, dest: Path) -> Path:
    for name in ("lvis", "coco", "openimages", "vggsound"):
        shutil.copytree(Path(demo.root) / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def clean(demo_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "out"
    build(_options(out, Path(demo_corpus.root)), progress=False)
    return out, _rows(out)


# ---- unit: the window choice (expected values from the waves' construction) ------------------


def test_window_rejects_short_and_silent_and_moves_off_silence():
    rng = np.random.default_rng(0)
    loud = (0.1 * rng.standard_normal(10 * SR)).astype(np.float32)  # ≈ -20 dBFS
    w = choose_window(loud, SR, 2.0, 3.0, key="k")
    assert (w.offset_s, w.padded, w.moved) == (2.0, False, False)
    assert w.rms_dbfs == pytest.approx(-20.0, abs=0.2)

    with pytest.raises(Rejected) as err:
        choose_window(loud[: SR // 2], SR, 0.0, 3.0, key="clip.wav")
    assert err.value.reason == SHORT_AUDIO and "0.500 s" in err.value.detail
    padded = choose_window(loud[: SR // 2], SR, 1.0, 3.0, key="clip.wav", pad_short=True)
    assert padded.padded and padded.offset_s == 0.0
    # 0.5 s at -20 dBFS in a 3 s window: -20 + 10*log10(0.5/3) ≈ -27.8 dBFS
    assert padded.rms_dbfs == pytest.approx(-20 + 10 * np.log10(0.5 / 3), abs=0.3)

    for quiet in (np.zeros(10 * SR, np.float32), loud * 10 ** (-60 / 20)):  # 0, ≈ -80 dBFS
        with pytest.raises(Rejected) as err:
            choose_window(quiet, SR, 2.0, 3.0, key="clip.wav")
        assert err.value.reason == SILENT_AUDIO

    half = loud.copy()
    half[: 6 * SR] = 0.0  # sound only in the last 4 s
    moved = choose_window(half, SR, 1.0, 3.0, key="clip.wav")
    assert moved.moved and 4.5 - 0.05 <= moved.offset_s <= 7.0  # ≥ 1.5 of 3 s loud
    assert moved.rms_dbfs >= -60.0
    again = choose_window(half, SR, 1.0, 3.0, key="clip.wav")
    assert again == moved  # deterministic
    # a planned window running past the decoded end (7 s clip, offset 6 s) is moved inside it
    inside = choose_window(loud[: 7 * SR], SR, 6.0, 3.0, key="clip.wav")
    assert inside.moved and inside.offset_s <= 4.0


def test_rle_length_agrees_with_pycocotools():
    rng = np.random.default_rng(1)
    for h, w in [(7, 5), (40, 33), (120, 97)]:
        m = np.asfortranarray(rng.random((h, w)) > rng.random())
        rle = coco_mask.encode(m.astype(np.uint8))
        assert rle_length(rle["counts"]) == h * w
        check_rle(rle["counts"].decode(), h, w, w, h, "x")
    assert rle_length("zz") is None
    with pytest.raises(Rejected, match="malformed RLE"):
        check_rle("zz", 10, 10, 10, 10, "lvis:1:2")
    with pytest.raises(Rejected, match="covers|cover 12 pixels"):
        check_rle([4, 8], 10, 10, 10, 10, "lvis:1:2")
    with pytest.raises(Rejected, match="RLE size differs"):
        check_rle([100], 10, 10, 20, 10, "lvis:1:2")
    with pytest.raises(Rejected, match="polygon outside"):
        check_polygons([(1e9, 0, 1e9, 5, -1e9, 5)], 100, 80, "lvis:1:2")
    check_polygons([(0, 0, 99, 0, 99, 79)], 100, 80, "ok")
    with pytest.raises(Rejected, match="not single-channel"):
        check_mask_image("RGB", (100, 80), 200, 160, "oi")
    with pytest.raises(Rejected, match="aspect ratio"):
        check_mask_image("L", (100, 100), 200, 160, "oi")
    check_mask_image("L", (1600, 1066), 1024, 683, "oi")  # the release's usual rescale


# ---- end to end: corrupted copies of the demo corpus ------------------------------------------


def _clip_of(root: Path, audio_id: str) -> Path:
    return root / "vggsound/audio" / f"{audio_id}.wav"


def test_short_truncated_and_silent_audio_are_skipped_not_written(clean, demo_corpus, tmp_path):
    clean_out, clean_rows = clean
    root = _copy_corpus(demo_corpus, tmp_path / "src")
    used = sorted({r["audio_id"] for r in clean_rows.values()})
    cut, truncated, silent, quiet, half = used[:5]
    wave, sr = sf.read(_clip_of(root, cut), dtype="int16")
    sf.write(_clip_of(root, cut), wave[: sr // 2], sr, subtype="PCM_16")  # 0.5 s
    data = _clip_of(root, truncated).read_bytes()
    _clip_of(root, truncated).write_bytes(data[:20_000])  # ≈ 0.62 s of 16-bit audio left
    sf.write(_clip_of(root, silent), np.zeros_like(wave), sr, subtype="PCM_16")
    sf.write(_clip_of(root, quiet), (wave.astype(np.float64) * 1e-4).astype(np.int16) + 1, sr,
             subtype="PCM_16")  # a constant 1/32768 ≈ -90 dBFS plus what survives the scaling
    w2, _ = sf.read(_clip_of(root, half), dtype="int16")
    w2[: 8 * sr] = 0  # sound in the last 2 s only: shorter than the 3 s window → moved
    sf.write(_clip_of(root, half), w2, sr, subtype="PCM_16")

    out = tmp_path / "out"
    record = build(_options(out, root), progress=False).record
    rows = _rows(out)
    skipped = record.skipped
    short = skipped[SHORT_AUDIO]["examples"]
    assert any(cut in e for e in short) and any(truncated in e for e in short), skipped
    assert any(silent in e or quiet in e for e in skipped[SILENT_AUDIO]["examples"]), skipped
    bad = {cut, truncated, silent, quiet}
    for rid, r in clean_rows.items():
        if r["audio_id"] in bad:
            assert rid not in rows, f"{rid} written with bad audio {r['audio_id']}"
    n_bad = sum(r["audio_id"] in bad for r in clean_rows.values())
    assert skipped[SHORT_AUDIO]["count"] + skipped[SILENT_AUDIO]["count"] >= n_bad
    moved = 0
    for rid, r in rows.items():
        wave_r, _ = decode_audio(r["audio"]["bytes"])
        assert rms_dbfs(wave_r) >= -60.0, rid
        if r["audio_id"] == half:
            planned = clean_rows[rid]["audio_offset_s"]
            if planned + 3.0 <= 8.0 - 0.01:  # the planned window is all zeros: moved so that at
                assert 6.0 - 0.05 <= r["audio_offset_s"] <= 7.0 + 1e-9  # least 1 s is loud
                moved += 1
            elif planned + 3.0 > 8.0 + 0.01:  # it holds some sound: kept
                assert r == clean_rows[rid]
        elif r["audio_id"] not in bad:
            assert r == clean_rows[rid]  # untouched rows are exactly the clean build's
    notes = record.audio_checks["notes"]
    moved_rows = [e for e in notes["window moved to non-silent audio"]["examples"]
                  if not e.startswith("pool:")]
    assert len(moved_rows) == moved >= 1, notes
    assert record.audio_checks["min_rms_dbfs"] == -60.0

    # with --pad-short-audio the short clips are kept, padded with zeros and listed by row id
    padded_out = tmp_path / "padded"
    rec2 = build(_options(padded_out, root, pad_short_audio=True), progress=False).record
    rows2 = _rows(padded_out)
    expect = sorted(rid for rid, r in clean_rows.items() if r["audio_id"] in (cut, truncated))
    padded = [r for r in rec2.audio_checks["padded_rows"] if not r.startswith("pool:")]
    assert padded == expect and set(expect) <= set(rows2)
    for rid in padded:
        w, _ = decode_audio(rows2[rid]["audio"]["bytes"])
        assert np.all(w[int(0.7 * SR):] == 0.0)  # zeros after the clip's end


def _rewrite_zip_member(zpath: Path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(zpath) as zf:
        items = [(i, zf.read(i.filename)) for i in zf.infolist()]
    with zipfile.ZipFile(zpath, "w") as zf:
        for info, content in items:
            zf.writestr(info, data if info.filename == member else content)


def _oi_mask_location(root: Path, row: dict) -> tuple[Path, str, bytes]:
    """(zip, member, PNG bytes) of an Open Images row's mask (the annotation id is the mask's
    file name without .png, as the release's MaskPath column has it)."""
    for z in sorted((root / "openimages").glob("*-masks/*.zip")):
        with zipfile.ZipFile(z) as zf:
            for name in zf.namelist():
                if Path(name).name == f"{row['annotation_id']}.png":
                    return z, name, zf.read(name)
    raise AssertionError(f"mask of {row['id']} not found")


def test_bad_masks_are_skipped_with_their_reason(clean, demo_corpus, tmp_path):
    clean_out, clean_rows = clean
    root = _copy_corpus(demo_corpus, tmp_path / "src")
    lvis_rows = sorted(r for r in clean_rows if clean_rows[r]["image_source"] == "lvis")
    oi_rows = sorted(r for r in clean_rows if clean_rows[r]["image_source"] == "openimages")
    rle_row, poly_row = clean_rows[lvis_rows[0]], clean_rows[lvis_rows[1]]
    rgb_row, aspect_row = clean_rows[oi_rows[0]], clean_rows[oi_rows[1]]

    for name in ("lvis_v1_train.json", "lvis_v1_val.json"):
        path = root / "lvis" / name
        data = json.loads(path.read_text())
        for ann in data["annotations"]:
            if str(ann["id"]) == rle_row["annotation_id"]:  # the RLE, at the image's size
                ann["segmentation"] = {"counts": "zz", "size": [rle_row["height"], rle_row["width"]]}
            if str(ann["id"]) == poly_row["annotation_id"]:
                ann["segmentation"] = [[1e9, 1e9, -1e9, 1e9, 1e9, -1e9]]
        path.write_text(json.dumps(data))
    z, member, png = _oi_mask_location(root, rgb_row)
    rgb = Image.open(io.BytesIO(png)).convert("L").convert("RGB")
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    _rewrite_zip_member(z, member, buf.getvalue())
    z, member, png = _oi_mask_location(root, aspect_row)
    img = Image.open(io.BytesIO(png))
    buf = io.BytesIO()
    img.resize((img.width, img.height * 2)).save(buf, format="PNG")  # aspect ratio halved
    _rewrite_zip_member(z, member, buf.getvalue())

    out = tmp_path / "out"
    record = build(_options(out, root), progress=False).record
    rows = _rows(out)
    skipped = record.skipped
    expect = {
        "malformed RLE": rle_row, "polygon outside its image": poly_row,
        "mask image is not single-channel": rgb_row,
        "mask aspect ratio differs from its image": aspect_row,
    }
    for reason, row in expect.items():
        assert reason in skipped, skipped
        assert any(row["annotation_id"] in e for e in skipped[reason]["examples"]), skipped[reason]
        assert row["id"] not in rows
    assert "empty mask" not in skipped
    victims = {r["id"] for r in expect.values()}
    assert set(rows) == set(clean_rows) - victims
    assert all(rows[rid] == clean_rows[rid] for rid in rows)


def test_vggsound_label_typo_in_a_manifest_is_counted_with_the_closest_label(real_dir, tmp_path):
    """Case 4: a custom manifest whose VGGSound label has a typo is reported (as LVIS / Open Images
    labels are), with the closest label of the csv; the correctly spelt label still matches."""
    from avsynth.manifest import Category, Manifest
    from avsynth.sources.records import SkipCounter
    from avsynth.sources.vggsound import SKIP_LABEL_ABSENT, read_vggsound

    audio = tmp_path / "audio"
    audio.mkdir()
    shutil.copyfile(real_dir / "vggsound/FwVYUHKoLtQ_000034.wav", audio / "FwVYUHKoLtQ_000034.wav")
    csv_path = tmp_path / "vggsound.csv"
    csv_path.write_text('FwVYUHKoLtQ,34,"playing violin, fiddle",train\n'
                        'AAAAAAAAAAA,10,dog barking,train\n')
    manifest = Manifest("t", (
        Category("violin", 0, vggsound=("playing violin, fiddle",)),
        Category("dog", 1, vggsound=("dog barkng",)),  # the typo
    ))
    skips = SkipCounter()
    index = read_vggsound(csv_path, audio, manifest, skips)
    assert [c.audio_id for c in index.clips] == ["FwVYUHKoLtQ_000034"]
    assert skips.counts[SKIP_LABEL_ABSENT] == 1
    (example,) = skips.examples[SKIP_LABEL_ABSENT]
    assert example.startswith("'dog barkng' (closest: 'dog barking'"), example
