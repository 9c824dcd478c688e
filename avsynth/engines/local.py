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
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in workers_now:
            if proc.is_alive():
                proc.terminate()
        for proc in workers_now:
            proc.join(timeout=5)
        # Let the pool's manager thread see the dead workers and close its wake-up pipe now: if it
        # is still closing it when the interpreter exits, concurrent.futures' exit hook can write
        # to the half-closed pipe and print an "Exception ignored ... Bad file descriptor"
        # traceback after our one-line message (seen once in CI after SIGTERM).
        manager = getattr(pool, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(timeout=5)
        raise
    else:
        pool.shutdown(wait=True)
