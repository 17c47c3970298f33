"""``tabjob worker --lane L``: one Dramatiq consumer, one job at a time, graceful on SIGTERM.

One job per worker process keeps KEDA's count of messages equal to the pods needed, and gives
the job all the cores the pod owns. On SIGTERM the worker stops taking messages and lets the
running job finish for up to the shutdown timeout; past it the job is stopped and retried
elsewhere, never lost.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dramatiq

from app.jobs import actors
from app.jobs.broker import IDLE_TIMEOUT_MS, build_broker, redis_client
from app.jobs.context import WorkerContext, set_context
from app.jobs.middleware import JobLifecycle
from app.jobs.runner import JobRunner
from app.observability import exposition
from app.observability.worker import JobObserver
from app.settings import Settings
from app.state import StateStore
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


def run_worker(settings: Settings, *, lane: str, max_jobs: int | None = None) -> int:
    """Consume ``lane`` until SIGTERM/SIGINT (or ``max_jobs`` jobs); return the exit status."""
    # Set before the forkserver starts so OpenMP in every job process sees it: the job owns
    # these cores and must not spin on cores it does not own.
    threads = settings.threads_for_worker()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    worker_id = f"{socket.gethostname()}-{os.getpid()}"
    runner = JobRunner(threads=threads)
    runner.start()
    state = StateStore(client=redis_client(settings, decode=True), retention_s=settings.job_retention_s)
    store = Store.from_settings(settings)
    context = WorkerContext(
        settings=settings, state=state, store=store, runner=runner, worker_id=worker_id, lane=lane, max_jobs=max_jobs
    )
    set_context(context)
    # JobObserver around JobLifecycle: it sees each job record before and after the lifecycle's
    # changes, and (start_hook) the start itself.
    observer = JobObserver(state=state, lane=lane, worker_id=worker_id)
    broker = build_broker(settings, extra_middleware=[observer, JobLifecycle(), observer.start_hook])
    dramatiq.set_broker(broker)
    actors.declare(broker)

    stop = threading.Event()
    alive = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    worker = dramatiq.Worker(broker, queues={lane}, worker_threads=1, worker_timeout=IDLE_TIMEOUT_MS)
    worker.queue_prefetch = 1  # one job per worker: the others stay in Valkey for other pods
    worker.start()
    alive.set()
    health = _health_server(settings.worker_health_port, alive) if settings.worker_health_port else None
    log.info("worker %s consuming lane %s with %d thread(s) per job", worker_id, lane, threads)

    started_at = time.monotonic()
    exit_code = 0
    while not stop.wait(HEARTBEAT_INTERVAL_S if max_jobs is None else 0.2):
        if not all(thread.is_alive() for thread in worker.workers):
            # Dramatiq does not restart a worker thread that died; without it this process would
            # keep fetching (and holding) messages it never runs. Exit so it is restarted.
            log.critical("the worker thread died; exiting so the worker is restarted")
            exit_code = 1
            break
        try:
            state.worker_heartbeat(lane, worker_id)
        except Exception:
            log.warning("heartbeat failed", exc_info=True)
        if max_jobs is not None:
            if context.jobs_done >= max_jobs:
                break
            if context.jobs_done == 0 and time.monotonic() - started_at > ONE_SHOT_IDLE_EXIT_S:
                log.info("no job arrived in %.0f s; exiting", ONE_SHOT_IDLE_EXIT_S)
                break

    alive.clear()
    log.info("stopping: waiting up to %.0f s for the running job", settings.worker_shutdown_timeout_s)
    stop_ms = int((settings.worker_shutdown_timeout_s + 60) * 1000)
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": stop_ms}, daemon=True)
    stopper.start()
    stopper.join(settings.worker_shutdown_timeout_s)
    if stopper.is_alive():
        runner.abort("The worker was shut down before the job finished; it is retried on another worker.")
        stopper.join(30)
    runner.kill()
    if health is not None:
        health.shutdown()
    state.r.zrem(state.lane_key(lane, "workers"), worker_id)
    return exit_code
