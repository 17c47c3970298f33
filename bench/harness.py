"""The stack under test and the helpers every section shares: upload, job times, waiting,
presigned store URLs for direct ``ml`` calls, and the worker processes of each lane."""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

import tabjob
from app.core.auth import LOCAL_TENANT
from app.core.domain import is_terminal
from app.core.settings import Settings
from app.core.storage import Store, dataset_key
from app.core.waiting import wait_until
from app.local.on_demand import OnDemandWorkers
from app.local.servers import free_port
from app.local.stack import EmbeddedStack

POLL_S = 0.02
# Sections submit more jobs at once than a tenant may queue by default (100), and more in a
# minute than its default quota (120 jobs per minute, app/tenancy/quotas.py).
STACK_ENV = {"TABJOB_TENANT_MAX_QUEUED": "5000", "TABJOB_QUOTA_JOBS_PER_MINUTE": "100000"}


@dataclass
class Harness:
    """A running embedded stack, a client for it and a Store for direct calls.

    quick: the --quick mode (fewer repeats, smaller data).
    """

    stack: EmbeddedStack
    client: tabjob.Client
    store: Store
    settings: Settings
    workdir: Path
    quick: bool
    shared: dict[str, Any] = field(default_factory=dict)

    # ---- data
    def upload(self, path: Path) -> str:
        """Upload a Parquet file; return its dataset id."""
        return self.client.upload(path).id

    def write_toy(self, name: str, *, rows: int = 200, features: int = 5, seed: int = 0) -> Path:
        """A small classification problem as Parquet (``col_i`` features and ``y``)."""
        return write_frame(self.workdir / f"{name}.parquet", random_frame(rows, features, seed))

    # ---- store URLs for direct calls (signed for the internal endpoint, as workers get them)
    def dataset_url(self, dataset_id: str) -> str:
        return self.store.internal_get_url(dataset_key(LOCAL_TENANT, dataset_id))

    def scratch_key(self, what: str) -> str:
        return f"tenants/bench/{what}/{uuid.uuid4().hex}"

    def put_url(self, key: str) -> str:
        return self.store.internal_put_url(key)

    def get_url(self, key: str) -> str:
        return self.store.internal_get_url(key)

    # ---- jobs
    def times(self, job_id: str) -> dict[str, Any]:
        """The job's status and its Unix-second times (the legacy /status route returns raw floats)."""
        response = self.client.http.get("/status", params={"id": job_id})
        response.raise_for_status()
        return response.json()

    def wait(self, job_id: str, *, timeout_s: float = 900.0, poll_s: float = POLL_S) -> dict[str, Any]:
        """Poll until ``job_id`` ends; return its times. Raises when it did not finish."""
        return self.wait_all([job_id], timeout_s=timeout_s, poll_s=poll_s)[job_id]

    def wait_all(
        self, job_ids: list[str], *, timeout_s: float = 900.0, poll_s: float = POLL_S, allow_failed: bool = False
    ) -> dict[str, dict[str, Any]]:
        done: dict[str, dict[str, Any]] = {}
        pending = list(job_ids)

        def all_ended() -> bool:
            # Poll the oldest pending job until it ends, then the next: one request per poll.
            while pending:
                record = self.times(pending[0])
                if not is_terminal(record["status"]):
                    return False
                if record["status"] != "finished" and not allow_failed:
                    raise RuntimeError(f"job {pending[0]} {record['status']}: {record.get('error')}")
                done[pending.pop(0)] = record
            return True

        wait_until(all_ended, what=f"{len(job_ids)} job(s) to end", timeout_s=timeout_s, interval_s=poll_s)
        return done

    # ---- processes
    def worker(self, lane: str) -> psutil.Process:
        """The first worker process of ``lane`` (the large lane has exactly one). An on-demand
        lane's worker is started first, by a toy fit on the lane."""
        for child in self.stack.children:
            if child.lane == lane and child.process is not None and child.process.poll() is None:
                return psutil.Process(child.process.pid)
        if self.stack.on_demand.starts_with_the_stack(lane):
            raise RuntimeError(f"no worker for lane {lane}")
        toy = self.upload(self.write_toy(f"wake-{lane}"))
        self.wait(self.client.fit(toy, lane=lane, params={"max_iter": 2}).id)
        return self.worker(lane)

    def workers(self) -> list[psutil.Process]:
        return [psutil.Process(c.process.pid) for c in self.stack.children if c.lane and c.process is not None]

    @contextmanager
    def workers_paused(self) -> Iterator[None]:
        """SIGSTOP every worker (and its job processes) so they take no CPU, SIGCONT after."""
        procs = [p for w in self.workers() for p in (w, *w.children(recursive=True))]
        for p in procs:
            p.suspend()
        try:
            yield
        finally:
            for p in procs:
                p.resume()


def job_process(worker: psutil.Process) -> psutil.Process | None:
    """The worker's warm job process: the forkserver's child (the forkserver is the worker's)."""
    for proc in worker.children(recursive=True):
        try:
            parent = proc.parent()
            if parent is not None and parent.pid != worker.pid and "forkserver" in " ".join(parent.cmdline()):
                return proc
        except psutil.Error:
            continue
    return None


def random_frame(rows: int, features: int, seed: int) -> pd.DataFrame:
    """Float features and a binary ``y`` that depends on a few of them (cheap at any size)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features))
    informative = min(5, features)
    noise = rng.standard_normal(rows)
    frame = pd.DataFrame(x, columns=[f"col_{i}" for i in range(features)])
    frame["y"] = (x[:, :informative].sum(axis=1) + noise > 0).astype(np.int64)
    return frame


def write_frame(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_parquet(path, index=False)
    return path


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def settings_from_env_file(path: Path) -> Settings:
    """Settings from the stack's ``tabjob.env`` (KEY=VALUE lines of TABJOB_* variables)."""
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("TABJOB_"):
            values[key.removeprefix("TABJOB_").lower()] = value
    return Settings(**values)


@contextmanager
def running_stack(*, quick: bool, timings: dict[str, float]) -> Iterator[Harness]:
    """An embedded stack in a temporary directory, and a Harness on it; stopped on exit.
    Puts how long the stack took to start and to stop (seconds) in ``timings``."""
    with tempfile.TemporaryDirectory(prefix="tabjob-bench-") as tmp:
        root = Path(tmp)
        # The large lane's worker starts with its first job, as on `tabjob stack`
        # (app.local.on_demand); the gpu lane's runs from the start, for the GPU sections.
        stack = EmbeddedStack(
            data_dir=root / "stack", port=free_port(), env=dict(STACK_ENV), on_demand=OnDemandWorkers(lanes=("large",))
        )
        try:
            t0 = time.perf_counter()
            stack.start()
            timings["stack_ready_s"] = time.perf_counter() - t0
            # start() returns at readiness; the sections measure warm workers.
            stack.wait_for_workers()
            timings["stack_start_s"] = time.perf_counter() - t0
            # Supervised as `tabjob stack` is: dead workers restarted, on-demand lanes scaled.
            supervisor = threading.Thread(target=stack.supervise, daemon=True, name="supervisor")
            supervisor.start()
            settings = settings_from_env_file(stack.data_dir / "tabjob.env").model_copy(
                update={"scratch_dir": str(stack.data_dir / "scratch")}
            )
            workdir = root / "data"
            workdir.mkdir()
            with tabjob.Client(stack.url) as client:
                yield Harness(
                    stack=stack,
                    client=client,
                    store=Store.from_settings(settings),
                    settings=settings,
                    workdir=workdir,
                    quick=quick,
                )
        finally:
            t0 = time.perf_counter()
            stack.stopping.set()  # the supervisor thread ends at its next tick
            # SeaweedFS does not exit on SIGTERM (it keeps retrying its filer subscription), so
            # stack.stop() waits its full 15 s for it. Its data is thrown away with the temporary
            # directory here: stop everything else the stack's way, then kill it.
            s3, stack.s3 = stack.s3, None
            stack.stop()
            if s3 is not None and s3.process is not None:
                s3.process.kill()
                s3.process.wait(10)
            timings["stack_stop_s"] = time.perf_counter() - t0


def cpu_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg": os.getloadavg(),
    }
