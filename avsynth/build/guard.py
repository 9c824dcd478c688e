"""Guards of an output directory: one build at a time (a file lock), and the media fingerprint that
lets ``--resume`` notice source files changed since the interrupted build.

The lock is ``OUT/.avsynth/build.lock`` (``filelock``; released when the process ends, even by
``kill -9``). The fingerprint is the size and modification time (ns) of every file the plan reads
(images, mask files, audio clips), hashed into the build identity; the per-file list is kept in
``OUT/.avsynth/media.json`` so that a resume can name the files that changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from avsynth.errors import BuildError
from avsynth.io import atomic_write_json
from avsynth.plan import Plan

STATE_DIR = ".avsynth"
LOCK_NAME = "build.lock"
MEDIA_NAME = "media.json"


@contextlib.contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold the build lock of ``out``; a second holder gets a one-line BuildError at once."""
    from filelock import FileLock, Timeout

    state = Path(out) / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BuildError(
            f"{out}: another avsynth build is writing to this directory (lock "
            f"{state / LOCK_NAME}); wait for it to finish, or choose another --out"
        ) from None
    try:
        yield
    finally:
        lock.release()


def media_files(plan: Plan) -> dict[str, list[int]]:
    """``{path: [size, mtime_ns]}`` of every file the plan's rows and pool read (missing: [-1, -1])."""
    paths: set[str] = set()
    for spec in plan.shards:
        for item in spec.items:
            paths.add(str(item.clip.path))
            for inst in getattr(item, "instances", ()):
                paths.add(str(inst.image_path))
                if inst.mask.png is not None:
                    paths.add(str(inst.mask.png))
    out: dict[str, list[int]] = {}
    for p in sorted(paths):
        try:
            st = Path(p).stat()
            out[p] = [int(st.st_size), int(st.st_mtime_ns)]
        except OSError:
            out[p] = [-1, -1]
    return out


def media_digest(files: dict[str, list[int]]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def write_media(out: Path, files: dict[str, list[int]]) -> None:
    atomic_write_json(Path(out) / STATE_DIR / MEDIA_NAME, files)


def changed_media(out: Path, files: dict[str, list[int]], limit: int = 3) -> str:
    """The files whose size or mtime differ from the interrupted build's (for the resume error)."""
    try:
        before = json.loads((Path(out) / STATE_DIR / MEDIA_NAME).read_text())
    except (OSError, ValueError):
        return ""
    diff = sorted(p for p in set(before) | set(files) if before.get(p) != files.get(p))
    if not diff:
        return ""
    more = f" and {len(diff) - limit} more" if len(diff) > limit else ""
    return "; changed media: " + ", ".join(diff[:limit]) + more
