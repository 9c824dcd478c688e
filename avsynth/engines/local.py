"""The local engine: a process pool (or the calling process when ``workers == 1``).

Rows finished inside workers are counted through a shared counter so the progress bar moves row by
row, not shard by shard.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Sequence

from avsynth.engines import ProgressFn

_SINK = None  # in a worker: a shared multiprocessing.Value; inline: the on_rows callback


def _init(counter) -> None:
    global _SINK
    _SINK = counter


def report_rows(n: int = 1) -> None:
    """Called by task code after finishing ``n`` rows (a no-op outside a counted run)."""
    sink = _SINK
    if sink is None:
        return
    if callable(sink):
        sink(n)
        return
    with sink.get_lock():
        sink.value += n


def run_local(
    fn: Callable, tasks: Sequence[tuple], *, workers: int, on_rows: ProgressFn | None = None
) -> list:
    if workers <= 1 or len(tasks) <= 1:
        global _SINK
        previous, _SINK = _SINK, on_rows
        try:
            return [fn(*t) for t in tasks]
        finally:
            _SINK = previous
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    results: list = [None] * len(tasks)
    seen = 0
    with ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=ctx, initializer=_init, initargs=(counter,)
    ) as pool:
        pending = {pool.submit(fn, *t): i for i, t in enumerate(tasks)}
        try:
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                now = counter.value
                if on_rows is not None and now > seen:
                    on_rows(now - seen)
                seen = now
                for fut in done:
                    results[pending.pop(fut)] = fut.result()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    now = counter.value
    if on_rows is not None and now > seen:
        on_rows(now - seen)
    return results
