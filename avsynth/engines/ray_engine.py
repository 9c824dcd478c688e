"""The Ray engine: each shard task is a Ray remote call (a local Ray instance or a cluster).

``address=None`` starts a local instance with ``workers`` CPUs; ``"auto"`` or ``"ray://host:port"``
joins a cluster. Progress moves per finished shard.
"""

from __future__ import annotations

from typing import Callable, Sequence

from avsynth.engines import ProgressFn
from avsynth.errors import BuildError


def run_ray(
    fn: Callable,
    tasks: Sequence[tuple],
    *,
    workers: int,
    on_rows: ProgressFn | None = None,
    address: str | None = None,
) -> list:
    try:
        import ray
    except ImportError:
        raise BuildError(
            "--engine ray needs Ray: pip install 'avsynth[ray]' (or use --engine local)"
        ) from None
    started_here = False
    if not ray.is_initialized():
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=max(1, workers), **kwargs)
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        refs = [remote.remote(*t) for t in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                res = ray.get(ref)
                results[index[ref]] = res
                if on_rows is not None:
                    on_rows(getattr(res, "rows_done", 0))
        return results
    finally:
        if started_here:
            ray.shutdown()
