"""The local engine: a process pool (or the calling process when ``workers == 1``)."""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence


def run_local(
    fn: Callable, tasks: Sequence[tuple], *, workers: int, address: str | None = None
) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, fn(*tasks[i]))`` as tasks finish (in order when run in this process)."""
    del address  # one signature for every engine; a process pool has no address
    if workers <= 1 or len(tasks) <= 1:
        for i, t in enumerate(tasks):
            yield i, fn(*t)
        return
    from avsynth.engines.lifetime import die_with_parent

    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx,
                               initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        pending = {pool.submit(fn, *t): i for i, t in enumerate(tasks)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=pending.__getitem__):
                i = pending.pop(fut)
                yield i, fut.result()
    except BaseException:
        # interrupted or failed: stop the workers now rather than let them finish their shards
        # (what they were writing is a temporary file that the next --resume removes)
        workers_now = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in workers_now:
            if proc.is_alive():
                proc.terminate()
        for proc in workers_now:
            proc.join(timeout=5)
        # Let the pool's manager thread see the dead workers and close its wake-up pipe now: if it
        # is still closing it when the interpreter exits, concurrent.futures' exit hook can write
        # to the half-closed pipe and print an "Exception ignored ... Bad file descriptor"
        # traceback after our one-line message (seen in CI after SIGTERM). The thread is taken
        # before shutdown(), which drops the pool's reference to it; one still alive after 30 s is
        # taken out of that hook's table.
        if manager is not None:
            manager.join(timeout=30)
            if manager.is_alive():  # still closing (a loaded machine): keep the exit hook off its pipe
                _exit_wakeups().pop(manager, None)
        raise
    else:
        pool.shutdown(wait=True)


def _exit_wakeups() -> dict:
    """concurrent.futures' table of manager threads that its interpreter-exit hook wakes up (a
    private name of CPython's ``concurrent.futures.process``; an empty dict where it is absent)."""
    from concurrent.futures import process

    return getattr(process, "_threads_wakeups", {})
