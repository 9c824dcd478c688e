"""Exceptions that carry a clear, user-facing message (the CLI prints them without a traceback)."""

from __future__ import annotations

from pathlib import Path


class AvsynthError(Exception):
    """Base class: an error the user can act on. ``str(err)`` is the whole message."""


class SourceError(AvsynthError):
    """Bad or missing input data. The message names the file and the problem."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class ManifestError(AvsynthError):
    """A category manifest or a --categories selection is invalid."""


class BuildError(AvsynthError):
    """The build cannot proceed (dirty output dir, inconsistent resume, ...)."""


class VerifyError(AvsynthError):
    """A shard directory failed verification."""
