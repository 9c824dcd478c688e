"""Engines run a list of independent tasks and yield each result as it finishes.

One signature for every engine: ``run_tasks(engine, fn, tasks, workers=..., address=...)`` yields
``(task index, fn(*task))`` pairs in completion order. Progress travels in the results: a task
returns what it did (e.g. its row count) and the caller counts. No engine keeps module state.

Every task is a pure function of its arguments, so the output is identical whichever engine runs
it and with however many workers.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

ENGINES = ("local", "ray")


def run_tasks(
    engine: str,
    fn: Callable,
    tasks: Sequence[tuple],
    *,
    workers: int,
    address: str | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, fn(*tasks[i]))`` for every task, as each finishes, on ``engine`` ("local" | "ray").

    ``address`` is the Ray cluster address (ignored by the local engine).
    """
    if engine == "local":
        from avsynth.engines.local import run_local

        return run_local(fn, tasks, workers=workers, address=address)
    if engine == "ray":
        from avsynth.engines.ray_engine import run_ray

        return run_ray(fn, tasks, workers=workers, address=address)
    raise ValueError(f"unknown engine {engine!r}; expected 'local' or 'ray'")


def run_all(
    engine: str,
    fn: Callable,
    tasks: Sequence[tuple],
    *,
    workers: int,
    address: str | None = None,
    on_result: Callable[[Any], None] | None = None,
) -> list:
    """Run every task; the results in task order. ``on_result`` sees each result as it finishes."""
    results: list = [None] * len(tasks)
    for i, res in run_tasks(engine, fn, tasks, workers=workers, address=address):
        results[i] = res
        if on_result is not None:
            on_result(res)
    return results
