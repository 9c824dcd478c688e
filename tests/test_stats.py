"""`avsynth stats`: counts, histograms, contact sheet; and the shared overlay drawing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from avsynth.cli import app
from avsynth.errors import AvsynthError
from avsynth.shards.overlay import (
    STRIP_HEIGHT,
    SheetItem,
    captioned,
    contact_sheet,
    overlay,
    spectrogram_strip,
    tile,
)
from avsynth.shards.stats import DBFS_FLOOR, auto_bins, compute_stats, rms_dbfs, sheet_items, write_stats

from ._tiny_shards import load_record, make_shard_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_shard_dir(tmp_path_factory.mktemp("stats") / "ds")


def _png(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        return im.size


def test_counts_match_the_build_record_and_the_columns(tiny):
    stats = compute_stats(tiny)
    record = load_record(tiny)
    assert stats["splits"] == ["train", "validation", "test"]
    for split, info in record["splits"].items():
        assert stats["counts"][split] == info["per_category"]
        assert stats["totals"][split] == info["rows"]
    assert [c["name"] for c in stats["categories"]] == ["dog", "cat", "guitar"]
    areas = pq.read_table(tiny / "data" / "test-00000-of-00001.parquet", columns=["mask_area"]).column(0).to_pylist()
    assert stats["mask_area"]["values"]["test"] == pytest.approx(areas)
    assert sum(stats["mask_area"]["histogram"]["counts"]) == 12
    assert stats["audio_rms_dbfs"]["decoded"] == 12
    assert sum(stats["audio_rms_dbfs"]["histogram"]["counts"]) == 12


def test_audio_levels_are_rms_dbfs_of_the_stored_clips(tiny):
    stats = compute_stats(tiny)
    # the helper's tones have amplitudes in [0.05, 0.95]: a sine's RMS is amplitude / sqrt(2)
    lo, hi = 20 * np.log10(0.05 / np.sqrt(2)), 20 * np.log10(0.95 / np.sqrt(2))
    for values in stats["audio_rms_dbfs"]["values"].values():
        assert all(lo - 0.1 <= v <= hi + 0.1 for v in values)
    sampled = compute_stats(tiny, audio_limit=5, seed=3)
    assert sampled["audio_rms_dbfs"]["decoded"] == 5


def test_rms_dbfs():
    t = np.arange(16000) / 16000
    assert rms_dbfs(0.5 * np.sin(2 * np.pi * 440 * t)) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=1e-3)
    assert rms_dbfs(np.ones(100)) == pytest.approx(0.0)
    assert rms_dbfs(np.zeros(100)) == DBFS_FLOOR
    assert rms_dbfs(np.zeros(0)) == DBFS_FLOOR


def test_write_stats_outputs_valid_pngs_and_json(tiny, tmp_path):
    result = write_stats(tiny, tmp_path / "out", sheet_size=5, sheet_cols=3, thumb=64)
    assert set(result.files) == {"stats", "mask_area", "audio_rms_dbfs", "contact_sheet"}
    for key in ("mask_area", "audio_rms_dbfs"):
        w, h = _png(result.files[key])
        assert w > 100 and h > 100
    w, h = _png(result.files["contact_sheet"])
    assert w == 3 * 64 + 4 * 4  # 3 columns of 64 px cells and 4 px gaps
    assert h > 2 * 64  # two rows of captioned cells
    saved = json.loads(result.files["stats"].read_text())
    assert saved["totals"] == {"train": 6, "validation": 3, "test": 3}
    assert "values" not in saved["mask_area"]


def test_default_out_dir_and_cli_table(tiny, tmp_path):
    ds = Path(shutil.copytree(tiny, tmp_path / "ds"))
    result = CliRunner().invoke(app, ["stats", str(ds), "--sheet-size", "3"])
    assert result.exit_code == 0, result.output
    saved = json.loads((ds / "stats" / "stats.json").read_text())
    assert saved["totals"] == {"train": 6, "validation": 3, "test": 3}  # the fixture's rows
    for name in ("mask_area_hist.png", "audio_rms_dbfs_hist.png", "contact_sheet.png"):
        with Image.open(ds / "stats" / name) as im:
            assert im.format == "PNG" and len(set(im.convert("RGB").getdata())) > 8, name  # drawn on
    assert "guitar" in result.output and "validation" in result.output
    assert "contact_sheet: " in result.output


def test_missing_shards_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AvsynthError, match="no shards"):
        compute_stats(tmp_path / "empty")
    ds = Path(shutil.copytree(make_shard_dir(tmp_path / "src", rows={"train": 2}, shards={"train": 1}), tmp_path / "ds"))
    (ds / "data" / "train-00000-of-00001.parquet").unlink()
    result = CliRunner().invoke(app, ["stats", str(ds)])
    assert result.exit_code == 2 and "missing" in result.output


def test_overlay_tints_only_the_mask_and_outlines_it():
    img = Image.new("RGB", (20, 10), (0, 0, 0))
    mask = np.zeros((10, 20), dtype=bool)
    mask[2:8, 5:15] = True
    out = np.asarray(overlay(img, mask, (200, 100, 0), alpha=0.5))
    assert (out[~mask] == 0).all()
    assert tuple(out[5, 10]) == (100, 50, 0)  # interior: half-way blend
    assert tuple(out[2, 10]) == (200, 100, 0)  # boundary: full colour
    small = overlay(img, mask[::2, ::2], (200, 100, 0))  # a mask of another size is resized
    assert small.size == img.size
    with pytest.raises(ValueError):
        overlay(img, mask, alpha=1.5)


def test_contact_sheet_grid_and_captions():
    items = [SheetItem(Image.new("RGB", (40, 30), (i * 40, 0, 0)), None, f"item {i}") for i in range(5)]
    sheet = contact_sheet(items, cols=2, thumb=32)
    cell_h = captioned(Image.new("RGB", (32, 32)), "x").height
    assert sheet.size == (2 * 32 + 3 * 4, 3 * cell_h + 4 * 4)
    assert captioned(Image.new("RGB", (32, 32)), "a very long caption that cannot fit").width == 32
    with pytest.raises(ValueError):
        contact_sheet([], cols=2)


def test_contact_sheet_pages_show_every_category_with_label_and_spectrogram(tmp_path):
    cats = tuple(f"c{i}" for i in range(7))
    ds = make_shard_dir(tmp_path / "src", rows={"train": 14}, shards={"train": 1}, categories=cats)
    result = write_stats(ds, tmp_path / "out", sheet_size=3, sheet_cols=3, thumb=64)
    # 7 categories on pages of 3 tiles: 3 pages, every category once
    pages = [result.files["contact_sheet"], result.files["contact_sheet_2"], result.files["contact_sheet_3"]]
    assert [p.name for p in pages] == ["contact_sheet.png", "contact_sheet-2.png", "contact_sheet-3.png"]
    assert "contact_sheet_4" not in result.files
    items = sheet_items(ds, n=7)
    assert sorted(i.caption.split(" (")[0] for i in items) == sorted(cats)
    assert all("\naudio: " in i.caption and i.audio is not None and i.sample_rate == 16_000 for i in items)
    cell = tile(items[0], 64)
    assert cell.height > 64 + STRIP_HEIGHT  # image, spectrogram strip, two caption lines
    # a rerun with bigger pages removes the stale extra pages
    again = write_stats(ds, tmp_path / "out", sheet_size=10, sheet_cols=5, thumb=64)
    assert set(again.files) == {"stats", "mask_area", "audio_rms_dbfs", "contact_sheet"}
    assert not (tmp_path / "out" / "contact_sheet-2.png").exists()


def test_spectrogram_strip_puts_a_tone_at_its_frequency():
    sr = 16_000
    t = np.arange(sr) / sr
    strip = np.asarray(spectrogram_strip(0.5 * np.sin(2 * np.pi * 4000 * t), sr, width=100, height=80))
    rows = strip.astype(float).sum(axis=(1, 2))
    assert abs(int(np.argmax(rows)) - 40) <= 2  # 4 kHz = half way up a 0-8 kHz strip


def test_histograms_fit_the_data_range():
    bins = auto_bins([0.01, 0.02, 0.05, 0.1, 0.15] * 20)
    assert 0.0 < bins[0] < 0.011 and 0.149 < bins[-1] < 0.16  # not the 0-1 of the quantity
    db = auto_bins(list(np.linspace(-30, -5, 200)))
    assert -31 < db[0] < -30 and -5 < db[-1] < -4


def test_grey_outside_keeps_colour_only_on_the_object():
    img = Image.new("RGB", (20, 10), (200, 50, 50))
    mask = np.zeros((10, 20), dtype=bool)
    mask[2:8, 5:15] = True
    out = np.asarray(overlay(img, mask, (0, 0, 255), alpha=0.5, grey_outside=True)).astype(int)
    grey = round(0.299 * 200 + 0.587 * 50 + 0.114 * 50)
    assert (out[~mask] == grey).all()
    assert tuple(out[5, 10]) == (100, 25, 152)  # interior: half-way to blue


def test_verify_and_stats_report_progress(tiny, tmp_path):
    from avsynth.shards.verify import verify_dir

    record = load_record(tiny)
    n_files = len(record["shards"]) + len(record["audio_pool"])
    seen: list[tuple[str, int, int]] = []
    assert verify_dir(tiny, progress=lambda *a: seen.append(a)).ok
    last = {phase: (done, total) for phase, done, total in seen}
    assert last["checksums"] == (n_files, n_files)
    assert last["decode rows (shards)"] == (len(record["shards"]),) * 2
    steps: list[tuple[str, int, int]] = []
    write_stats(tiny, tmp_path / "s", sheet_size=4, thumb=32, progress=lambda *a: steps.append(a))
    assert [s[1] for s in steps] == [0, 1, 2, 3] and steps[-1] == ("done", 3, 3)
