"""File helpers used everywhere: atomic writes, sha256 of a file, the cache directory.

One of each, so that every file avsynth writes follows the same rules:

* **Atomic.** Data goes to a hidden temporary file in the destination folder
  (``.tmp-{name}.{pid}.{random}``), is flushed and fsynced, then renamed over the destination; a
  crash leaves either the old file or the new one, never half of one. The temporary file is
  removed when the write fails.
* **Modes follow the umask.** The temporary file is created with ``open(..., "x")`` (mode
  ``0o666 & ~umask``), not ``mkstemp`` (always ``0o600``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: Prefix of every temporary file avsynth creates next to a destination.
TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20


def temp_name(path: Path) -> Path:
    """A fresh hidden temporary path beside ``path`` (same folder, so the rename is atomic)."""
    return path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")


def fsync_dir(directory: Path) -> None:
    """fsync a directory so a rename inside it survives a power loss (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it is fsynced and renamed to
    ``path`` (replacing it), on an exception it is removed and ``path`` is untouched.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8 unless ``encoding`` says otherwise).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    xmode = "xb" if mode == "wb" else "x"
    kwargs = {} if mode == "wb" else {"encoding": encoding or "utf-8", "newline": "\n"}
    try:
        with open(tmp, xmode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (and a final newline) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return atomic_write_text(path, text)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's contents (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def cache_dir(*parts: str) -> Path:
    """avsynth's cache folder (joined with ``parts``): ``$AVSYNTH_CACHE``, else
    ``$XDG_CACHE_HOME/avsynth``, else ``~/.cache/avsynth``. Nothing is created."""
    env = os.environ.get("AVSYNTH_CACHE")
    if env:
        base = Path(env).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "avsynth"
    return base.joinpath(*parts)
