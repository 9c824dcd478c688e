"""Engines run a list of independent shard tasks and return their results in task order.

An engine only distributes work: every task is a pure function of its arguments, so the output is
identical whichever engine runs it and with however many workers.
"""

from __future__ import annotations

from typing import Callable, Sequence

ProgressFn = Callable[[int], None]  # called with the number of rows just finished


def run_tasks(
    engine: str,
    fn: Callable,
    tasks: Sequence[tuple],
    *,
    workers: int,
    on_rows: ProgressFn | None = None,
    ray_address: str | None = None,
) -> list:
    """Run ``fn(*task)`` for every task on ``engine`` ("local" | "ray")."""
    if engine == "local":
        from avsynth.engines.local import run_local

        return run_local(fn, tasks, workers=workers, on_rows=on_rows)
    if engine == "ray":
        from avsynth.engines.ray_engine import run_ray

        return run_ray(fn, tasks, workers=workers, on_rows=on_rows, address=ray_address)
    raise ValueError(f"unknown engine {engine!r}; expected 'local' or 'ray'")
