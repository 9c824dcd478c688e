"""Publish a shard directory to the Hugging Face Hub (and name it as an ``hf://`` shard source).

``publish`` verifies the directory (and refuses a build that fails), regenerates the dataset card
with example overlays, creates the dataset repository if needed and uploads the files avsynth
manages (README.md, manifest.json, data/*.parquet, audio_pool/*.parquet, assets/*) with
``HfApi.upload_folder``. That upload is resumable and multi-commit in huggingface_hub 2.x with
``hf_xet`` (large folders are committed in batches; re-running an interrupted call skips what was
already committed and de-duplicates uploaded data). The shards and assets go first; README.md and
manifest.json follow in a last commit, so a repository whose card and record are current also has
all their shards. No delete patterns are passed: remote files avsynth does not manage are never
touched.

The token (explicit, else ``HF_TOKEN``, else the cached login) is never printed or logged: every
message and exception text that leaves this module passes through :func:`redact`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from avsynth import __version__
from avsynth.errors import AvsynthError, VerifyError
from avsynth.io import atomic_write_bytes
from avsynth.shards.record import BuildRecord, read_record

MANAGED_PATTERNS: tuple[str, ...] = (
    "README.md",
    "manifest.json",
    "data/*.parquet",
    "audio_pool/*.parquet",
    "assets/*",
)
# Uploaded in the last commit, after everything they describe.
FINAL_FILES = ("README.md", "manifest.json")
EXAMPLES = 4
EXAMPLE_MAX_SIDE = 512
EXAMPLE_NAME = "assets/example-{i}.jpg"
HF_PREFIX = "hf://"
_REDACTED = "[REDACTED]"


class PublishError(AvsynthError):
    """Publishing failed (no token, Hub error, ...). The message never contains the token."""


# ---------------------------------------------------------------------------------------------
# Token handling


def resolve_token(token: str | None = None) -> str | None:
    """The token to use: ``token`` if given, else ``HF_TOKEN``, else the cached ``hf auth login``."""
    if token:
        return token
    env = os.environ.get("HF_TOKEN")
    if env:
        return env
    from huggingface_hub import get_token

    return get_token()


def redact(text: str, token: str | None) -> str:
    """``text`` with every occurrence of ``token`` replaced by ``[REDACTED]``."""
    if not token:
        return text
    return str(text).replace(token, _REDACTED)


class _RedactFilter(logging.Filter):
    """Rewrites a log record's message so that it does not contain the token."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record as is
            return True
        if self.token in message:
            record.msg, record.args = redact(message, self.token), None
        return True


@contextlib.contextmanager
def redacting_logs(token: str | None) -> Iterator[None]:
    """While active, records of the ``huggingface_hub``, ``avsynth`` and root loggers (and the
    handlers of the root logger) have the token replaced by ``[REDACTED]``."""
    if not token:
        yield
        return
    filt = _RedactFilter(token)
    names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in ("huggingface_hub", "avsynth")]
    targets: list[logging.Filterer] = [logging.getLogger(n) for n in names]
    targets += [logging.getLogger("huggingface_hub"), logging.getLogger("avsynth"), logging.root]
    targets += list(logging.root.handlers)
    for t in targets:
        t.addFilter(filt)
    try:
        yield
    finally:
        for t in targets:
            t.removeFilter(filt)


# ---------------------------------------------------------------------------------------------
# Upload plan


@dataclass(frozen=True)
class UploadItem:
    """One file to upload: its local path, its path in the repository and its size in bytes."""

    local: Path
    remote: str
    size: int


def is_managed(remote: str) -> bool:
    """Whether a repository path is one avsynth manages (and so may upload): it matches one of
    MANAGED_PATTERNS component by component (``*`` never crosses a ``/``)."""
    parts = remote.split("/")
    for pattern in MANAGED_PATTERNS:
        pat = pattern.split("/")
        if len(pat) == len(parts) and all(fnmatch(a, b) for a, b in zip(parts, pat)):
            return True
    return False


def _stale_examples(directory: Path, files: dict[str, bytes]) -> list[Path]:
    """Example images in ``directory/assets`` that the regenerated card no longer uses."""
    assets = directory / "assets"
    if not assets.is_dir():
        return []
    return sorted(p for p in assets.glob("example-*.jpg") if f"assets/{p.name}" not in files)


def plan_upload(directory: Path, overrides: dict[str, bytes] | None = None) -> list[UploadItem]:
    """The files of ``directory`` that avsynth manages, sorted by repository path.

    ``overrides`` maps repository paths to contents that will be written before the upload (the
    regenerated card and examples): their sizes are those of the new contents.
    """
    directory = Path(directory)
    overrides = overrides or {}
    found: dict[str, UploadItem] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        remote = path.relative_to(directory).as_posix()
        if is_managed(remote):
            found[remote] = UploadItem(path, remote, path.stat().st_size)
    for remote, data in overrides.items():
        if not is_managed(remote):
            raise ValueError(f"{remote} is not a file avsynth manages")
        found[remote] = UploadItem(directory / PurePosixPath(remote), remote, len(data))
    return [found[k] for k in sorted(found)]


def format_plan(items: list[UploadItem], repo_id: str, revision: str | None = None) -> str:
    """Human-readable dry-run listing: ``local -> hf://datasets/ORG/NAME@rev/path (size)``."""
    target = f"{HF_PREFIX}datasets/{repo_id}" + (f"@{revision}" if revision else "")
    width = max((len(str(i.local)) for i in items), default=0)
    lines = [f"{len(items)} files, {sum(i.size for i in items):,} bytes -> {target}"]
    lines += [f"  {str(i.local):<{width}} -> {target}/{i.remote} ({i.size:,} bytes)" for i in items]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Card with examples


def _example_images(directory: Path, n: int = EXAMPLES, seed: int = 0) -> list[bytes]:
    """JPEG bytes of up to ``n`` captioned mask overlays from the shards (category-covering)."""
    from avsynth.shards.overlay import tile
    from avsynth.shards.stats import sheet_items

    out = []
    for item in sheet_items(directory, n=n, seed=seed):
        img = tile(item, EXAMPLE_MAX_SIDE, font_size=14)  # coloured mask, spectrogram, label
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def card_files(directory: Path, record: BuildRecord, n_examples: int = EXAMPLES) -> dict[str, bytes]:
    """The regenerated card and its example images: {repository path: contents}."""
    from avsynth.shards.card import CARD_NAME, render_card

    images = _example_images(directory, n_examples) if n_examples > 0 else []
    names = [EXAMPLE_NAME.format(i=i) for i in range(len(images))]
    files = dict(zip(names, images))
    files[CARD_NAME] = render_card(record, [Path(n) for n in names]).encode("utf-8")
    return files


def _write_card_files(directory: Path, files: dict[str, bytes]) -> None:
    """Write the card files atomically and remove stale ``assets/example-*.jpg``."""
    for old in _stale_examples(directory, files):
        old.unlink()
    for remote, data in files.items():
        atomic_write_bytes(directory / PurePosixPath(remote), data)


# ---------------------------------------------------------------------------------------------
# Publish


@dataclass(frozen=True)
class PublishResult:
    """Where the dataset went (its URL) and which files were (or, in a dry run, would be) sent."""

    url: str
    items: list[UploadItem]
    dry_run: bool = False
    commit: str | None = None


def dataset_url(repo_id: str, revision: str | None = None, endpoint: str | None = None) -> str:
    """``https://huggingface.co/datasets/ORG/NAME`` (``/tree/REV`` for a revision)."""
    if endpoint is None:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    url = f"{endpoint.rstrip('/')}/datasets/{repo_id}"
    return url + (f"/tree/{revision}" if revision else "")


def _check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo_id):
        raise PublishError(f"--repo-id must look like ORG/NAME, got {repo_id!r}")


def verify_for_publish(directory: Path, sample: int | None = None, progress=None) -> None:
    """Run ``verify_dir``; raise VerifyError listing the problems if the build fails it."""
    from avsynth.shards.verify import verify_dir

    report = verify_dir(directory, sample=sample, progress=progress)
    if not report.ok:
        shown = "\n".join(f"  - {p}" for p in report.problems[:20])
        more = f"\n  ... and {len(report.problems) - 20} more" if len(report.problems) > 20 else ""
        raise VerifyError(
            f"{directory}: refusing to publish: `avsynth verify` found {len(report.problems)} "
            f"problem(s):\n{shown}{more}"
        )


def publish(
    directory: Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    dry_run: bool = False,
    api: Any = None,
    verify_sample: int | None = None,
    n_examples: int = EXAMPLES,
    progress=None,
) -> PublishResult:
    """Verify ``directory``, regenerate its card with examples, and upload its managed files to
    the dataset repository ``repo_id`` (created if missing; ``private`` applies on creation).

    ``dry_run`` changes nothing (local or remote) and returns the exact plan. ``api`` is an
    ``HfApi``-like object (default: a new ``HfApi``). Raises VerifyError when verification
    fails and PublishError on a Hub error; neither message contains the token.
    ``progress(phase, done, total)`` follows verification, the card, and the upload commits.
    """
    step = progress or (lambda phase, done, total: None)
    directory = Path(directory)
    _check_repo_id(repo_id)
    if not directory.is_dir():
        raise PublishError(f"{directory}: not a directory")
    verify_for_publish(directory, verify_sample, progress)
    record = read_record(directory)
    step("dataset card and examples", 0, 1)
    files = card_files(directory, record, n_examples)
    step("dataset card and examples", 1, 1)
    if dry_run:
        stale = set(_stale_examples(directory, files))
        items = [i for i in plan_upload(directory, overrides=files) if i.local not in stale]
        return PublishResult(dataset_url(repo_id, revision), items, dry_run=True)
    tok = resolve_token(token)
    if not tok:
        raise PublishError("no Hugging Face token: pass --token, set HF_TOKEN or run `hf auth login`")
    _write_card_files(directory, files)
    items = plan_upload(directory)
    with redacting_logs(tok):
        try:
            return _upload(directory, repo_id, items, private=private, revision=revision, token=tok, api=api,
                           progress=step)
        except AvsynthError as err:
            raise type(err)(redact(str(err), tok)) from None
        except Exception as err:  # Hub / network errors: re-raised without the token
            message = redact(f"{type(err).__name__}: {err}", tok)
            raise PublishError(f"publishing to {repo_id} failed: {message}") from None


def _upload(
    directory: Path,
    repo_id: str,
    items: list[UploadItem],
    *,
    private: bool,
    revision: str | None,
    token: str,
    api: Any,
    progress=lambda phase, done, total: None,
) -> PublishResult:
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token, library_name="avsynth", library_version=__version__)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private, token=token)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True, token=token)
    last = [i.remote for i in items if i.remote in FINAL_FILES]
    first = [i.remote for i in items if i.remote not in FINAL_FILES]
    info = None
    for n, (patterns, what) in enumerate(((first, "shards and assets"), (last, "dataset card and build record"))):
        progress("upload commits", n, 2)
        if not patterns:
            continue
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(directory),
            repo_type="dataset",
            revision=revision,
            allow_patterns=patterns,
            delete_patterns=None,
            commit_message=f"avsynth {__version__}: {what} ({len(patterns)} files)",
            token=token,
        )
    progress("upload commits", 2, 2)
    commit = getattr(info, "oid", None)
    url = dataset_url(repo_id, revision, getattr(api, "endpoint", None))
    return PublishResult(url, items, dry_run=False, commit=commit)


# ---------------------------------------------------------------------------------------------
# Hub datasets as shard sources


def hub_source(repo_id: str, revision: str | None = None) -> str:
    """The ``hf://datasets/ORG/NAME[@REV]`` URL of a published dataset."""
    return f"{HF_PREFIX}datasets/{repo_id}" + (f"@{revision}" if revision else "")
