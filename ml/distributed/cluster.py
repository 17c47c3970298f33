"""Talking to the Dask cluster from a tabjob job process: connect, find and wait for workers,
restart them, and the two ways the cluster fails (both platform failures: the service retries)."""

from __future__ import annotations

from typing import Any

ENGINE = "dask"
CONNECT_TIMEOUT_S = 10.0
# How long a job waits for Dask workers (a cluster scaled to zero starts them on demand).
WORKERS_WAIT_S = 300.0
POLL_S = 0.5


class ClusterUnavailable(RuntimeError):
    """The Dask scheduler cannot be reached or has too few workers: a platform failure (retried)."""


class WorkerLost(RuntimeError):
    """A Dask worker holding part of the job left before the job ended: a platform failure (retried)."""


def connect(scheduler: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A Dask client of the scheduler at ``scheduler`` (``tcp://host:port``). Everything goes
    through the scheduler (``direct_to_workers=False``): the NetworkPolicies let a tabjob worker
    reach the scheduler only."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=timeout_s, set_as_default=False, direct_to_workers=False)
    except (OSError, TimeoutError) as exc:
        reason = type(exc).__name__
        raise ClusterUnavailable(f"The Dask scheduler at {scheduler} cannot be reached ({reason}).") from exc


def workers(client: Any) -> list[str]:
    """The addresses of the workers the scheduler knows now, sorted."""
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def wait_for_workers(client: Any, wait_s: float, count: int = 1) -> list[str]:
    """The workers, once there are at least ``count`` (at most ``wait_s`` seconds)."""
    try:
        client.wait_for_workers(count, timeout=wait_s)
    except (TimeoutError, OSError) as exc:
        raise ClusterUnavailable(f"The Dask cluster has fewer than {count} workers after {wait_s:g} s.") from exc
    return workers(client)


def restart(client: Any, chosen: list[str]) -> list[str]:
    """Restart those of ``chosen`` still there (their nannies start fresh processes): the only way
    to stop a task running native code, such as an allreduce waiting for a lost peer."""
    alive = [w for w in chosen if w in set(workers(client))]
    if alive:
        client.restart_workers(alive, raise_for_error=False)
    return alive


def free_workers(scheduler: str, chosen: list[str] | None = None) -> list[str]:
    """Restart Dask workers (all by default) after a job that did not finish, so its tasks stop
    and its memory returns. Returns the addresses restarted."""
    client = connect(scheduler)
    try:
        return restart(client, workers(client) if chosen is None else chosen)
    finally:
        client.close()


def scheduler_host(client: Any) -> str | None:
    """The scheduler's host, where XGBoost's tracker listens (every worker reaches it)."""
    from distributed.comm import get_address_host

    try:
        return get_address_host(client.scheduler.address)
    except ValueError:
        return None


def device(client: Any, chosen: list[str], requested: str | None) -> str:
    """What the workers train on: ``cpu`` or ``cuda`` as asked, or for ``auto`` (None) ``cuda``
    when every chosen worker reports a usable GPU (``ml.device``, asked on the workers)."""
    from ml.distributed.worker_env import worker_device

    if requested in ("cpu", "cuda"):
        return requested
    found = client.run(worker_device, requested, workers=chosen)
    return "cuda" if all(d == "cuda" for d in found.values()) else "cpu"
