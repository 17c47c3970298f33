"""The embedded stack's Dask cluster: one scheduler and N memory-limited workers, supervised.

Each worker is ``dask worker`` with its nanny (the nanny restarts its worker process when it dies or
passes its memory limit); the stack restarts a scheduler or nanny that dies, with the same
back-off as Valkey and SeaweedFS. Everything listens on 127.0.0.1 only. Off by default: the
scheduler and two idle workers cost about 250 MiB of PSS (docs/distributed.md).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from app.local.servers import START_TIMEOUT_S, _exited, _launch, _stop, free_port
from app.local.supervision import Restarts

log = logging.getLogger("tabjob.stack")

# Dask's memory thresholds are fractions of the worker's limit, compared with the worker process's
# RSS (https://distributed.dask.org/en/stable/worker-memory.html). The workers hold no Dask-managed
# data (the engine streams parts inside its tasks), so spilling (target, spill) and pausing only get
# in the way: a paused worker would never start its share of a collective fit. The nanny restarts a
# worker whose RSS passes the limit itself (terminate 1.0), not 95 % of it (Dask's default): the
# engine sizes its batches and pages to stay under the limit, and on the 192 MiB workers of the
# held-out check the 5 % margin is 10 MiB, a third of what is left for data (docs/distributed.md).
WORKER_MEMORY_ENV = {
    "DASK_DISTRIBUTED__WORKER__MEMORY__TARGET": "False",
    "DASK_DISTRIBUTED__WORKER__MEMORY__SPILL": "False",
    "DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE": "False",
    "DASK_DISTRIBUTED__WORKER__MEMORY__TERMINATE": "1.0",
    # pyarrow's own allocator keeps freed batches for reuse; the system one hands them back.
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    "MALLOC_ARENA_MAX": "1",
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
}


@dataclass
class LocalDaskCluster:
    """Parameters:
    data_dir: the workers' local directories (downloads of parts) live under it.
    workers: how many Dask workers.
    worker_memory: each worker's memory limit, as Dask reads it (``192MiB``, ``2GiB``).
    threads: threads per worker (XGBoost's ``nthread`` there).
    """

    data_dir: Path
    workers: int
    worker_memory: str = "192MiB"
    threads: int = 1
    port: int = 0
    scheduler: object | None = None
    nannies: list[object] = field(default_factory=list)
    restarts: dict[str, Restarts] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Where this engine is, for the API and the workers (app/core/settings_engines.py)."""
        return {"TABJOB_DASK_SCHEDULER_ADDRESS": self.address, "TABJOB_DASK_MIN_WORKERS": str(self.workers)}

    def _scheduler_args(self) -> list[str]:
        return [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                "--port", str(self.port), "--no-dashboard", "--no-show",
                "--preload", "ml.distributed.preload"]  # fmt: skip

    def _worker_args(self, i: int) -> list[str]:
        return [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--host", "127.0.0.1",
                "--nthreads", str(self.threads), "--memory-limit", self.worker_memory, "--name", f"dask-{i}",
                "--no-dashboard", "--local-directory", str(self.data_dir / "dask"),
                "--preload", "ml.distributed.preload", "--death-timeout", "60"]  # fmt: skip

    def _env(self) -> dict[str, str]:
        return {**os.environ, **WORKER_MEMORY_ENV, "PYTHONUNBUFFERED": "1"}

    def launch(self, logs: Path) -> None:
        """Start the scheduler and the workers (the workers connect once the scheduler listens)."""
        (self.data_dir / "dask").mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.scheduler = _launch(self._scheduler_args(), logs / "dask-scheduler.log", env=self._env())
        self.nannies = [_launch(self._worker_args(i), logs / f"dask-worker-{i}.log", env=self._env())
                        for i in range(self.workers)]  # fmt: skip
        self.restarts = {name: Restarts() for name in self.names()}

    def names(self) -> list[str]:
        return ["dask-scheduler", *(f"dask-worker-{i}" for i in range(self.workers))]

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Return once every worker has joined the scheduler."""
        from distributed import Client

        for name, process in zip(self.names(), self._processes(), strict=True):
            why = _exited(process, name)  # type: ignore[arg-type]
            if why:
                raise RuntimeError(why)
        client = Client(self.address, timeout=timeout_s, set_as_default=False)
        try:
            client.wait_for_workers(self.workers, timeout=timeout_s)
        finally:
            client.close()

    def _processes(self) -> list[object]:
        return [self.scheduler, *self.nannies]

    def supervise_once(self, logs: Path) -> list[str]:
        """Restart (with back-off) the scheduler or a worker's nanny that died; their names."""
        restarted = []
        for i, (name, process) in enumerate(zip(self.names(), self._processes(), strict=True)):
            code = process.poll() if process is not None else None  # type: ignore[attr-defined]
            if process is None or code is None or not self.restarts[name].due(name, code):
                continue
            args = self._scheduler_args() if i == 0 else self._worker_args(i - 1)
            started = _launch(args, logs / f"{name}.log", env=self._env())
            if i == 0:
                self.scheduler = started
            else:
                self.nannies[i - 1] = started
            restarted.append(name)
        return restarted

    def stop(self) -> None:
        """Stop the workers, then the scheduler."""
        for process in self.nannies:
            _stop(process)  # type: ignore[arg-type]
        _stop(self.scheduler)  # type: ignore[arg-type]
