"""The Ray engine: each task is a Ray remote call (a local Ray instance or a cluster).

``address=None`` starts a local instance with ``workers`` CPUs; ``"auto"`` or ``"ray://host:port"``
joins a cluster.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from avsynth.errors import BuildError


def run_ray(
    fn: Callable, tasks: Sequence[tuple], *, workers: int, address: str | None = None
) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, fn(*tasks[i]))`` as the remote calls finish."""
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
    pending: list = []
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        refs = [remote.remote(*t) for t in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield index[ref], ray.get(ref)
    except BaseException:
        for ref in pending:  # interrupted or failed: cancel what has not run
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
