"""One consumer of a worker process: its own broker connection, middleware, Dramatiq worker
thread, job process and worker id, registered with its lane.

Several consumers in one process (``TABJOB_WORKER_CONSUMERS``, ``TABJOB_WORKER_SMALL_WORK_CONSUMERS``)
are as independent as several processes, as far as the broker, the lane's order and the reaper
can tell: each has its own id and heartbeat and picks its own jobs. What they share is the
process, and so the multiprocessing forkserver their job processes are forked from (pandas and
scikit-learn loaded once, about 150 MiB, instead of once per consumer).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

import dramatiq

from app.core.domain import Lane
from app.core.settings import Settings
from app.core.storage import Store
from app.job_logs.middleware import JobLogs
from app.job_logs.sink import installed_sink
from app.jobs import dispatch
from app.jobs.broker import IDLE_TIMEOUT_MS, TabjobBroker, build_broker, redis_client
from app.jobs.context import WorkerContext
from app.jobs.cpu_pool import CorePool, LocalCorePool, SharedCorePool
from app.jobs.middleware import JobLifecycle
from app.jobs.runner import JobRunner
from app.observability.worker import JobObserver
from app.state import State
from app.webhooks.outbox import notifier_for


@dataclass
class Consumer:
    ctx: WorkerContext
    broker: TabjobBroker
    worker: dramatiq.Worker


def new_worker_id() -> str:
    """``<host>-<random>-<pid>``: unique even where host and pid repeat (containers are pid 1,
    pods on the host network share its name, consumers of one process share its pid). The pid
    stays last: the embedded stack matches its children by ``worker_id.rsplit("-", 1)[-1]``."""
    return f"{socket.gethostname()}-{secrets.token_hex(4)}-{os.getpid()}"


def consumer_settings(settings: Settings) -> list[Settings]:
    """The settings of each consumer of a worker process: ``worker_consumers`` as configured,
    then ``worker_small_work_consumers`` reserved for small work, on one thread each."""
    small = settings.model_copy(update={"worker_max_cells": settings.worker_small_work_max_cells, "worker_threads": 1})
    return [settings] * settings.worker_consumers + [small] * settings.worker_small_work_consumers


def core_pool(settings: Settings) -> CorePool:
    """The pool a worker process's consumers take their jobs' cores from: the process's own cores
    (a pod's quota), or with ``worker_core_pool=machine`` the machine's, held in Valkey for every
    worker on it."""
    total = settings.threads_for_worker()
    if settings.worker_core_pool == "process":
        return LocalCorePool(total)
    key = f"tabjob:cores:{socket.gethostname()}"
    return SharedCorePool(redis_client(settings, decode=True), key=key, total=total)


def start_consumer(settings: Settings, *, lane: Lane, cores: CorePool, max_jobs: int | None = None) -> Consumer:
    """Build a consumer of ``lane`` with ``settings`` (its job-size limit), taking its jobs'
    cores from ``cores``, announce it, and start its Dramatiq worker thread."""
    worker_id = new_worker_id()
    # The gpu lane runs model steps: its job process loads XGBoost and opens the device once.
    # Its threads follow each job's grant from the pool (up to the pool's size).
    runner = JobRunner(
        threads=cores.total,
        warm="model" if lane == "gpu" else "cpu",
        log_lines_per_s=settings.job_log_lines_per_s,
        max_growth_mib=settings.worker_job_process_max_growth_mib,
        keep_warm=settings.worker_warm_start,
    )
    if settings.worker_warm_start:
        runner.start()
    state = State(client=redis_client(settings, decode=True), retention_s=settings.job_retention_s)
    ctx = WorkerContext(
        settings=settings,
        state=state,
        store=Store.from_settings(settings),
        runner=runner,
        worker_id=worker_id,
        lane=lane,
        cores=cores,
        max_jobs=max_jobs,
        notifier=notifier_for(settings, state),
    )
    # JobObserver around JobLifecycle: it sees each job record before and after the lifecycle's
    # changes, and (start_hook) the start itself.
    # JobLogs outermost: the job's log is closed after everything else logged about the attempt.
    logs = JobLogs(installed_sink(ctx.store, settings), picked=lambda: ctx.current)
    observer = JobObserver(state=ctx.state, lane=lane, worker_id=worker_id, picked=lambda: ctx.current)
    broker = build_broker(
        settings,
        extra_middleware=[logs, observer, JobLifecycle(ctx), logs.start_hook, observer.start_hook],
        outage_wait_s=settings.broker_outage_wait_s,
    )
    dispatch.declare(broker, ctx)
    # Announce the consumer before it takes a job: the reaper frees the jobs of silent workers.
    ctx.state.lanes.heartbeat(lane, worker_id)
    worker = dramatiq.Worker(broker, queues={lane}, worker_threads=1, worker_timeout=IDLE_TIMEOUT_MS)
    worker.queue_prefetch = 1  # one job per consumer: the others stay in Valkey for other workers
    worker.start()
    if ctx.notifier is not None:  # delivers the outbox's notifications, this worker's and others'
        ctx.notifier.start()
    return Consumer(ctx=ctx, broker=broker, worker=worker)
