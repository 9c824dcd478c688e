"""Publishing to the Hugging Face Hub, and loading the published layout back.

The Hub's servers cannot be reached from here (no network), so the upload itself is tested
through ``RecordingApi``, a stand-in for ``HfApi`` that records every call and applies
huggingface_hub's own ``allow_patterns`` filter to the folder. Everything else is real: the dry-run
output, the card and example images written to disk, the refusal on a failed verify, token
redaction (including through the real ``HfApi`` pointed at an endpoint that refuses connections),
and ``datasets.load_dataset`` on the layout (directory, ``parquet`` data files, streaming).
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import datasets
import fsspec
import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.utils import filter_repo_objects
from PIL import Image
from typer.testing import CliRunner

from avsynth.cli import app
from avsynth.errors import VerifyError
from avsynth.hub import (
    MANAGED_PATTERNS,
    PublishError,
    format_plan,
    hub_source,
    is_managed,
    plan_upload,
    publish,
    redact,
    resolve_token,
)
from avsynth.shards.card import read_front_matter
from avsynth.shards.reader import ShardReader

from ._tiny_shards import make_shard_dir

TOKEN = "hf_avsynthTestTokenDoNotLeak0123456789"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_shard_dir(tmp_path_factory.mktemp("hub") / "ds")


@pytest.fixture
def ds(pristine, tmp_path) -> Path:
    """A private copy (publish rewrites the card and adds assets/)."""
    return Path(shutil.copytree(pristine, tmp_path / "ds"))


class RecordingApi:
    """Stand-in for ``HfApi`` (the Hub is unreachable from the test machines): records calls and
    resolves ``upload_folder``'s ``allow_patterns`` with huggingface_hub's own filter."""

    endpoint = "https://huggingface.co"

    def __init__(self, fail_with: Exception | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.uploaded: list[str] = []
        self.fail_with = fail_with

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        if self.fail_with is not None:
            logging.getLogger("huggingface_hub.hf_api").warning("request failed for token %s", kwargs.get("token"))
            raise self.fail_with
        return f"{self.endpoint}/datasets/{repo_id}"

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        root = Path(kwargs["folder_path"])
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        self.uploaded += list(filter_repo_objects(files, allow_patterns=kwargs["allow_patterns"]))

        class Info:
            oid = "0" * 40

        return Info()


def test_plan_lists_only_managed_files(ds):
    (ds / "stats").mkdir()
    (ds / "stats" / "contact_sheet.png").write_bytes(b"png")
    (ds / "notes.txt").write_text("mine")
    (ds / "data" / "sub").mkdir()
    (ds / "data" / "sub" / "x.parquet").write_bytes(b"x")
    (ds / "data" / ".tmp-x.parquet").write_bytes(b"x")
    (ds / "assets").mkdir()
    (ds / "assets" / "logo.png").write_bytes(b"logo")
    items = plan_upload(ds)
    remotes = [i.remote for i in items]
    assert remotes == sorted(remotes)
    assert remotes == [
        "README.md",
        "assets/logo.png",
        "audio_pool/train-00000-of-00001.parquet",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
        "data/validation-00000-of-00001.parquet",
        "manifest.json",
    ]
    for item in items:
        assert item.size == item.local.stat().st_size
        assert item.local == ds / item.remote
    assert not is_managed("stats/contact_sheet.png") and not is_managed("data/sub/x.parquet")
    assert "data/*.parquet" in MANAGED_PATTERNS


def test_dry_run_prints_files_destinations_and_sizes_and_changes_nothing(ds):
    """The dry run's list is checked against the fixture's construction (make_shard_dir writes
    4 train/validation/test shards, one pool shard, card, record; publish adds 4 example
    overlays), and its sizes against the files a real publish then leaves on disk."""
    before = {p: p.read_bytes() for p in ds.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["publish", str(ds), "--repo-id", "org/avs-tiny", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert {p: p.read_bytes() for p in ds.rglob("*") if p.is_file()} == before  # nothing written
    out = result.output
    assert "dry run" in out
    line = re.compile(r"^  (\S+) +-> hf://datasets/org/avs-tiny/(\S+) \(([\d,]+) bytes\)$", re.M)
    printed = [(Path(local), remote, int(size.replace(",", ""))) for local, remote, size in line.findall(out)]
    assert [r for _, r, _ in printed] == [
        "README.md",
        "assets/example-0.jpg",
        "assets/example-1.jpg",
        "assets/example-2.jpg",
        "assets/example-3.jpg",
        "audio_pool/train-00000-of-00001.parquet",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
        "data/validation-00000-of-00001.parquet",
        "manifest.json",
    ]
    assert all(local == ds / remote for local, remote, _ in printed)
    # files that exist already are announced with their size on disk
    for local, remote, size in printed:
        if not remote.startswith("assets/") and remote != "README.md":
            assert size == len(before[local]), remote
    assert f"11 files, {sum(s for _, _, s in printed):,} bytes" in out
    # the planned sizes of the regenerated card and examples are those a real publish writes
    api = RecordingApi()
    publish(ds, "org/avs-tiny", token=TOKEN, api=api)
    assert sorted(api.uploaded) == [r for _, r, _ in printed]
    assert [(r, (ds / r).stat().st_size) for _, r, _ in printed] == [(r, s) for _, r, s in printed]


def test_publish_uploads_managed_files_with_regenerated_card(ds):
    (ds / "stats").mkdir()
    (ds / "stats" / "keep-local.png").write_bytes(b"x")
    api = RecordingApi()
    result = publish(ds, "org/avs-tiny", private=True, revision="v1", token=TOKEN, api=api)
    names = [c[0] for c in api.calls]
    assert names == ["create_repo", "create_branch", "upload_folder", "upload_folder"]
    repo = api.calls[0][1]
    assert repo["repo_type"] == "dataset" and repo["exist_ok"] is True and repo["private"] is True
    assert api.calls[1][1]["branch"] == "v1" and api.calls[1][1]["exist_ok"] is True
    for _, up in api.calls[2:]:
        assert up["repo_id"] == "org/avs-tiny" and up["repo_type"] == "dataset" and up["revision"] == "v1"
        assert up["delete_patterns"] is None  # never deletes remote files
    # shards and assets first, then the card and the record that describe them
    assert api.calls[3][1]["allow_patterns"] == ["README.md", "manifest.json"]
    assert api.uploaded[-2:] == ["README.md", "manifest.json"]
    assert sorted(api.uploaded) == [i.remote for i in result.items]
    assert all(is_managed(r) for r in api.uploaded) and "stats/keep-local.png" not in api.uploaded
    assert result.url == "https://huggingface.co/datasets/org/avs-tiny/tree/v1"
    assert result.commit == "0" * 40
    # the card now shows the example overlays, which exist and are JPEGs
    card = (ds / "README.md").read_text(encoding="utf-8")
    examples = sorted((ds / "assets").glob("example-*.jpg"))
    assert len(examples) == 4  # round-robin over the 3 categories
    for i, p in enumerate(examples):
        assert f"![example {i}](assets/example-{i}.jpg)" in card
        with Image.open(p) as im:
            assert im.format == "JPEG"
    assert read_front_matter(card)["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*"}


def test_publish_refuses_a_build_that_fails_verify(ds):
    shard = ds / "data" / "train-00001-of-00002.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    api = RecordingApi()
    with pytest.raises(VerifyError) as err:
        publish(ds, "org/avs-tiny", token=TOKEN, api=api)
    assert "refusing to publish" in str(err.value)
    assert "data/train-00001-of-00002.parquet" in str(err.value)
    assert api.calls == []
    result = CliRunner().invoke(app, ["publish", str(ds), "--repo-id", "org/avs-tiny", "--dry-run"])
    assert result.exit_code == 2 and "refusing to publish" in result.output


def test_token_never_leaks_from_hub_errors_logs_or_output(ds, capsys, caplog):
    api = RecordingApi(fail_with=RuntimeError(f"401 Unauthorized: bad token {TOKEN}"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PublishError) as err:
        publish(ds, "org/avs-tiny", token=TOKEN, api=api)
    text = str(err.value)
    assert "401 Unauthorized" in text and "[REDACTED]" in text and TOKEN not in text
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert caplog.records and all(TOKEN not in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err


def test_token_redacted_with_the_real_client_against_an_unreachable_endpoint(ds, caplog):
    caplog.set_level(logging.DEBUG)
    api = HfApi(endpoint="http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(PublishError) as err:
        publish(ds, "org/avs-tiny", token=TOKEN, api=api)
    assert "publishing to org/avs-tiny failed" in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text


def test_cli_never_prints_the_token(ds, monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    runner = CliRunner()
    result = runner.invoke(app, ["publish", str(ds), "--repo-id", "org/avs-tiny", "--token", TOKEN])
    assert result.exit_code == 2
    assert "publishing to org/avs-tiny failed" in result.output and TOKEN not in result.output


def test_token_precedence_explicit_env_cached(tmp_path, monkeypatch):
    cached = tmp_path / "token"
    cached.write_text("hf_cachedLoginToken")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(cached))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert resolve_token() == "hf_cachedLoginToken"
    monkeypatch.setenv("HF_TOKEN", "hf_fromEnvironment")
    assert resolve_token() == "hf_fromEnvironment"
    assert resolve_token("hf_explicit") == "hf_explicit"


def test_no_token_is_a_clear_error(ds, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(PublishError, match="no Hugging Face token"):
        publish(ds, "org/avs-tiny", api=RecordingApi())


def test_redact_and_repo_id_checks(ds):
    assert redact(f"a {TOKEN} b {TOKEN}", TOKEN) == "a [REDACTED] b [REDACTED]"
    assert redact("nothing", None) == "nothing"
    with pytest.raises(PublishError, match="ORG/NAME"):
        publish(ds, "no-slash", dry_run=True)
    assert hub_source("org/x") == "hf://datasets/org/x" and hub_source("org/x", "v1") == "hf://datasets/org/x@v1"
    assert "hf://datasets/org/x@v1/README.md" in format_plan(plan_upload(ds), "org/x", "v1")


def test_published_layout_loads_with_datasets(ds, tmp_path):
    publish(ds, "org/avs-tiny", token=TOKEN, api=RecordingApi())  # writes the final card
    cache = str(tmp_path / "hf-cache")
    full = datasets.load_dataset(str(ds), cache_dir=cache)
    assert {k: v.num_rows for k, v in full.items()} == {"train": 6, "validation": 3, "test": 3}

    files = {s: sorted(str(p) for p in (ds / "data").glob(f"{s}-*.parquet")) for s in ("train", "validation", "test")}
    raw = datasets.load_dataset("parquet", data_files=files, cache_dir=cache)
    assert {k: v.num_rows for k, v in raw.items()} == {"train": 6, "validation": 3, "test": 3}
    feats = raw["train"].features  # from the Parquet schema's `huggingface` metadata
    assert isinstance(feats["image"], datasets.Image) and isinstance(feats["mask"], datasets.Image)
    assert isinstance(feats["audio"], datasets.Audio)

    for split, n in (("train", 6), ("test", 3)):
        stream = datasets.load_dataset(str(ds), split=split, streaming=True)
        assert isinstance(stream, datasets.IterableDataset)
        stream = stream.cast_column("audio", datasets.Audio(decode=False))  # no torchcodec here
        rows = list(stream)
        assert len(rows) == n and {r["split"] for r in rows} == {split}
        assert rows[0]["image"].size == (rows[0]["width"], rows[0]["height"])
        assert rows[0]["audio"]["bytes"][:4] == b"fLaC"


def test_shard_reader_reads_through_fsspec_urls(pristine):
    """``ShardReader`` takes fsspec URLs; ``hf://datasets/ORG/NAME`` resolves to huggingface_hub's
    HfFileSystem. The Hub cannot be reached here, so the remote read goes through ``memory://``,
    the same fsspec code path with another file system."""
    fs, root = fsspec.core.url_to_fs(hub_source("org/avs-tiny"))
    assert type(fs).__name__ == "HfFileSystem" and root == "datasets/org/avs-tiny"

    mem = fsspec.filesystem("memory")
    for p in pristine.rglob("*"):
        if p.is_file() and not p.name.startswith("."):
            mem.pipe(f"/avs-tiny/{p.relative_to(pristine).as_posix()}", p.read_bytes())
    remote = ShardReader("memory://avs-tiny", "train", columns=["id", "category"])
    local = ShardReader(pristine, "train", columns=["id", "category"])
    assert len(remote) == len(local) == 6
    assert list(remote.iter_rows()) == list(local.iter_rows())
