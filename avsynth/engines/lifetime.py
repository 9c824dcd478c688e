"""Worker lifetime: a worker process dies with the process that started it, and SIGTERM ends the
main process the way Ctrl-C does (so the same clean-up runs and no worker is left behind).

Linux: a pool worker asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``
through ctypes), so even ``kill -9`` of the build leaves no worker running; the multiprocessing
resource tracker exits by itself once no process holds its pipe. Elsewhere the initializer only
checks that the parent is still alive.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: SIGKILL this process when its parent dies (Linux); exit at once if the
    parent is already gone (it may have died before the request took effect)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM received: handled like Ctrl-C (a KeyboardInterrupt) by every clean-up path."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (like Ctrl-C)."""
    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
