"""``tabjob worker --lane L``: one Dramatiq consumer, one job at a time, graceful on SIGTERM.

One job per worker process keeps KEDA's count of messages equal to the pods needed, and gives
the job all the cores the pod owns. On SIGTERM the worker stops taking messages and lets the
running job finish for up to the shutdown timeout; past it the job is stopped and retried
elsewhere, never lost.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dramatiq

from app.domain import Lane
from app.jobs import actors
from app.jobs.broker import IDLE_TIMEOUT_MS, build_broker, enqueue, redis_client
from app.jobs.context import WorkerContext
from app.jobs.middleware import JobLifecycle
from app.jobs.runner import JobRunner
from app.observability import exposition
from app.observability.worker import JobObserver
from app.settings import Settings
from app.state import State
from app.storage import Store

log = logging.getLogger("tabjob.worker")
HEARTBEAT_INTERVAL_S = 5.0
# A one-shot worker (a KEDA ScaledJob pod) gives up if no message reaches it in this time.
ONE_SHOT_IDLE_EXIT_S = 60.0


def _health_server(port: int, alive: threading.Event) -> ThreadingHTTPServer:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":  # this worker's job metrics, recorded in this process
                body, content_type = exposition.render()
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.end_headers()
                self.wfile.write(body)
                return
            ok = self.path == "/healthz" and alive.is_set()
            self.send_response(200 if ok else 503)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status":"ok"}' if ok else b'{"status":"stopping"}')

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("0.0.0.0", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server


def new_worker_id() -> str:
    """``<host>-<random>-<pid>``: unique even where host and pid repeat (containers are pid 1,
    pods on the host network share its name). The pid stays last: the embedded stack matches
    its children by ``worker_id.rsplit("-", 1)[-1]``."""
    return f"{socket.gethostname()}-{secrets.token_hex(4)}-{os.getpid()}"


def run_worker(settings: Settings, *, lane: Lane, max_jobs: int | None = None) -> int:
    """Consume ``lane`` until SIGTERM/SIGINT (or ``max_jobs`` jobs); return the exit status."""
    # Set before the forkserver starts so OpenMP (and BLAS) in every job process sees it: the
    # job owns these cores and must not spin on cores it does not own. The job process also
    # limits its pools with threadpoolctl per job (app.jobs.child).
    threads = settings.threads_for_worker()
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    worker_id = new_worker_id()
    runner = JobRunner(threads=threads)
    runner.start()
    ctx = WorkerContext(
        settings=settings,
        state=State(client=redis_client(settings, decode=True), retention_s=settings.job_retention_s),
        store=Store.from_settings(settings),
        runner=runner,
        worker_id=worker_id,
        lane=lane,
        max_jobs=max_jobs,
    )
    # JobObserver around JobLifecycle: it sees each job record before and after the lifecycle's
    # changes, and (start_hook) the start itself.
    observer = JobObserver(state=ctx.state, lane=lane, worker_id=worker_id, picked=lambda: ctx.current)
    broker = build_broker(settings, extra_middleware=[observer, JobLifecycle(ctx), observer.start_hook])
    dramatiq.set_broker(broker)
    actors.declare(broker, ctx)

    stop = threading.Event()
    alive = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    # Announce this worker before it takes a job: the reaper frees the jobs of silent workers.
    ctx.state.lanes.heartbeat(lane, worker_id)
    worker = dramatiq.Worker(broker, queues={lane}, worker_threads=1, worker_timeout=IDLE_TIMEOUT_MS)
    worker.queue_prefetch = 1  # one job per worker: the others stay in Valkey for other pods
    worker.start()
    alive.set()
    health = _health_server(settings.worker_health_port, alive) if settings.worker_health_port else None
    log.info("worker %s consuming lane %s with %d thread(s) per job", worker_id, lane, threads)

    exit_code = _serve(ctx, worker, stop)
    alive.clear()
    _stop(ctx, worker)
    if health is not None:
        health.shutdown()
    ctx.state.lanes.leave(lane, worker_id)
    return exit_code


def heartbeat_interval_s(settings: Settings) -> float:
    """How often a worker says it is alive: well within the time after which it counts as gone."""
    return min(HEARTBEAT_INTERVAL_S, settings.broker_heartbeat_timeout_s / 3)


def _serve(ctx: WorkerContext, worker: dramatiq.Worker, stop: threading.Event) -> int:
    """Heartbeat and reap until told to stop (or a one-shot worker is done); the exit status."""
    settings, max_jobs = ctx.settings, ctx.max_jobs
    started_at = broker_ok_since = time.monotonic()
    while not stop.wait(heartbeat_interval_s(settings) if max_jobs is None else 0.2):
        if not all(thread.is_alive() for thread in worker.workers):
            # Dramatiq does not restart a worker thread that died; without it this process would
            # keep fetching (and holding) messages it never runs. Exit so it is restarted.
            log.critical("the worker thread died; exiting so the worker is restarted")
            return 1
        try:
            ctx.state.lanes.heartbeat(ctx.lane, ctx.worker_id)
            # A worker silent for the broker's heartbeat timeout is gone (Dramatiq redelivers
            # its messages then): free the running slots it held. Not right after the broker
            # came back, when every worker looks silent until its next heartbeat.
            timeout_s = settings.broker_heartbeat_timeout_s
            if time.monotonic() - broker_ok_since >= timeout_s:
                reaped = ctx.state.reaper.reap_if_due(stale_after_s=timeout_s, every_s=timeout_s)
                _token_for_requeued(ctx, reaped.requeued if reaped else [])
        except Exception:
            broker_ok_since = time.monotonic()
            log.warning("heartbeat or reaper failed", exc_info=True)
        if max_jobs is not None:
            if ctx.jobs_done >= max_jobs:
                return 0
            if ctx.jobs_done == 0 and time.monotonic() - started_at > ONE_SHOT_IDLE_EXIT_S:
                log.info("no job arrived in %.0f s; exiting", ONE_SHOT_IDLE_EXIT_S)
                return 0
    return 0


def _token_for_requeued(ctx: WorkerContext, job_ids: list[str]) -> None:
    """A job the reaper sent back to queued needs a slot token on its lane to be picked (its
    dead worker's message may be redelivered too: a spare token is dropped when it finds
    nothing to run)."""
    for job_id in job_ids:
        job = ctx.state.jobs.get(job_id)
        if job is not None:
            enqueue(dramatiq.get_broker(), job_id, job.lane)


def _stop(ctx: WorkerContext, worker: dramatiq.Worker) -> None:
    """Stop taking messages; let the running job finish within the shutdown timeout, else
    abort it (it is retried elsewhere)."""
    timeout_s = ctx.settings.worker_shutdown_timeout_s
    log.info("stopping: waiting up to %.0f s for the running job", timeout_s)
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": int((timeout_s + 60) * 1000)}, daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    if stopper.is_alive():
        ctx.runner.abort("The worker was shut down before the job finished; it is retried on another worker.")
        stopper.join(30)
    ctx.runner.kill()
