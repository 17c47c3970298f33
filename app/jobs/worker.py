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
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dramatiq

from app.jobs import actors
from app.jobs.broker import IDLE_TIMEOUT_MS, build_broker, redis_client
from app.jobs.context import WorkerContext, set_context
from app.jobs.middleware import JobLifecycle
from app.jobs.runner import JobRunner
from app.settings import WORKER_STOP_MARGIN_S, Settings
from app.state import StateStore
from app.storage import Store

log = logging.getLogger("tabjob.worker")
HEARTBEAT_INTERVAL_S = 5.0
# A one-shot worker (a KEDA ScaledJob pod) gives up if no message reaches it in this time.
ONE_SHOT_IDLE_EXIT_S = 60.0
DEREGISTER_TIMEOUT_S = 2.0


def _health_server(port: int, alive: threading.Event) -> ThreadingHTTPServer:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
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
    if settings.worker_warm_start:
        runner.start()
    state = StateStore(client=redis_client(settings, decode=True), retention_s=settings.job_retention_s)
    store = Store.from_settings(settings)
    context = WorkerContext(
        settings=settings, state=state, store=store, runner=runner, worker_id=worker_id, lane=lane, max_jobs=max_jobs
    )
    set_context(context)
    broker = build_broker(settings, extra_middleware=[JobLifecycle()], outage_wait_s=settings.broker_outage_wait_s)
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

    # Heartbeats beat in their own thread: a hung broker must not keep the loop below (and so a
    # SIGTERM) waiting on a socket.
    threading.Thread(target=_heartbeats, args=(stop, state, lane, worker_id), daemon=True, name="heartbeat").start()
    started_at = time.monotonic()
    exit_code = 0
    while not stop.wait(HEARTBEAT_INTERVAL_S if max_jobs is None else 0.2):
        if not all(thread.is_alive() for thread in worker.workers):
            # Dramatiq does not restart a worker thread that died; without it this process would
            # keep fetching (and holding) messages it never runs. Exit so it is restarted.
            log.critical("the worker thread died; exiting so the worker is restarted")
            exit_code = 1
            break
        if max_jobs is not None:
            if context.jobs_done >= max_jobs:
                break
            if context.jobs_done == 0 and time.monotonic() - started_at > ONE_SHOT_IDLE_EXIT_S:
                log.info("no job arrived in %.0f s; exiting", ONE_SHOT_IDLE_EXIT_S)
                break

    stop.set()  # ends the heartbeats too (a one-shot worker leaves the loop without a signal)
    alive.clear()
    _stop_consuming(worker, runner, settings.worker_shutdown_timeout_s)
    if health is not None:
        health.shutdown()
    # Deregistering is a courtesy (the entry expires with its heartbeat): never wait on a broker
    # that is down or hung for it.
    _bounded(lambda: state.r.zrem(state.lane_key(lane, "workers"), worker_id), DEREGISTER_TIMEOUT_S)
    return exit_code


def _heartbeats(stop: threading.Event, state: StateStore, lane: str, worker_id: str) -> None:
    """Register at once, then every HEARTBEAT_INTERVAL_S until ``stop``."""
    while True:
        try:
            state.worker_heartbeat(lane, worker_id)
        except Exception as exc:
            log.warning("heartbeat failed: %s", exc)
        if stop.wait(HEARTBEAT_INTERVAL_S):
            return


def _stop_consuming(worker: dramatiq.Worker, runner: JobRunner, grace_s: float) -> None:
    """Let the running job finish for up to ``grace_s`` seconds, then hand it back (the job
    process is killed and the job retried); the whole takes at most ``grace_s`` plus
    WORKER_STOP_MARGIN_S, whether or not the broker answers (Dramatiq retries an ack on a lost
    broker for ever: that message is redelivered once its lease expires)."""
    log.info("stopping: waiting up to %.0f s for the running job", grace_s)
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": int((grace_s + 60) * 1000)}, daemon=True)
    stopper.start()
    stopper.join(grace_s)
    if stopper.is_alive():
        runner.abort("The worker was shut down before the job finished; it is retried on another worker.")
        stopper.join(WORKER_STOP_MARGIN_S - DEREGISTER_TIMEOUT_S)
        if stopper.is_alive():
            log.warning("the broker did not take the job back in time; it is redelivered when its lease expires")
    runner.kill()


def _bounded(call: Callable[[], object], timeout_s: float) -> None:
    """Run ``call`` for at most ``timeout_s`` seconds (in a daemon thread), logging its failure."""

    def run() -> None:
        try:
            call()
        except Exception as exc:
            log.warning("could not deregister from the broker: %s", exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
