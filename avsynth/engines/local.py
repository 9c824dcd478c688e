"""The local engine: a process pool (or the calling process when ``workers == 1``)."""

from __future__ import annotations

import multiprocessing as mp
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
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
        pending = {pool.submit(fn, *t): i for i, t in enumerate(tasks)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=pending.__getitem__):
                    i = pending.pop(fut)
                    yield i, fut.result()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
