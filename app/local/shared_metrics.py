"""The embedded stack's one prometheus-client multiprocess directory: every worker (and the API)
writes its job counters and histograms there, and the API's ``/metrics`` merges them, so one
scrape of the API sees every worker's jobs (the stack's workers expose no port of their own).

prometheus-client's rules (https://prometheus.github.io/client_python/multiprocess/): the
directory is set before the processes start and emptied between runs (a previous run's files
would be summed in; counters restart from zero, as a pod's do), and a dead process's live
gauges are removed with ``mark_process_dead``."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.observability import MULTIPROC_ENV


def metrics_dir(data_dir: Path) -> Path:
    return data_dir / "metrics"


def env(data_dir: Path) -> dict[str, str]:
    """What every child of the stack needs in its environment."""
    return {MULTIPROC_ENV: str(metrics_dir(data_dir))}


def reset(data_dir: Path) -> None:
    """Empty the directory: before any process of a new run starts."""
    shutil.rmtree(metrics_dir(data_dir), ignore_errors=True)
    metrics_dir(data_dir).mkdir(parents=True)


def forget(pid: int, data_dir: Path) -> None:
    """A process died: its live gauges (a worker's busy count) leave with it; counters stay.
    prometheus-client is loaded here, the first time a child dies, not when the stack starts:
    the supervisor that calls this idles without it (``app.local.supervisor``)."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid, str(metrics_dir(data_dir)))
