"""``tabjob worker --lane L``: Dramatiq consumers, one job at a time each, graceful on SIGTERM.

A pod runs one consumer (``TABJOB_WORKER_CONSUMERS=1``): one job per pod keeps KEDA's count of
messages equal to the pods needed, and gives the job all the cores the pod owns. The embedded
stack runs its small lane's consumers in one process (``app.jobs.consumers``): each has its own
job process, and they share one forkserver, so pandas and scikit-learn are loaded once. On
SIGTERM the worker stops taking messages and lets running jobs finish for up to the shutdown
timeout; past it they are stopped and retried elsewhere, never lost.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dramatiq

from app.core.domain import LANES, WORKER_STOP_MARGIN_S, Lane
from app.core.keys import lane_queue
from app.core.settings import Settings
from app.jobs.broker import enqueue
from app.jobs.consumers import Consumer, consumer_settings, core_pool, start_consumer
from app.jobs.context import WorkerContext
from app.jobs.scheduling import start_scheduler
from app.observability import exposition
from app.tenancy.retention import sweep_if_due

# How often a worker checks whether a retention sweep is due (one worker an hour sweeps).
RETENTION_CHECK_S = 60.0
log = logging.getLogger("tabjob.worker")
HEARTBEAT_INTERVAL_S = 5.0
# A one-shot worker (a KEDA ScaledJob pod) gives up if no message reaches it in this time.
ONE_SHOT_IDLE_EXIT_S = 60.0
DEREGISTER_TIMEOUT_S = 2.0


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


def run_worker(settings: Settings, *, lane: Lane, max_jobs: int | None = None) -> int:
    """Consume ``lane`` until SIGTERM/SIGINT (or ``max_jobs`` jobs); return the exit status."""
    every = consumer_settings(settings)
    if max_jobs is not None and len(every) > 1:
        raise ValueError("a one-shot worker (--max-jobs) runs one consumer: unset TABJOB_WORKER_*CONSUMERS")
    # The consumers share one core pool; each job runs on the cores it was granted (threadpoolctl
    # in the job process, app.jobs.child). OpenMP/BLAS never see more than the pool, set before
    # the forkserver starts so every job process inherits it.
    cores = core_pool(settings)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(cores.total)
    stop = threading.Event()
    alive = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before any consumer takes a job
        signal.signal(sig, lambda *_: stop.set())
    consumers = [start_consumer(s, lane=lane, cores=cores, max_jobs=max_jobs) for s in every]
    dramatiq.set_broker(consumers[0].broker)
    alive.set()
    health = _health_server(settings.worker_health_port, alive) if settings.worker_health_port else None
    for c in consumers:
        log.info("worker %s consuming lane %s; jobs take up to %d core(s)", c.ctx.worker_id, lane, cores.total)

    _start_background([c.ctx for c in consumers], stop)
    if max_jobs is None:  # schedules fire from long-lived workers (a one-shot pod may never see a tick)
        start_scheduler(consumers[0].ctx, consumers[0].broker, stop)
    exit_code = _serve(consumers, stop)
    stop.set()  # ends the heartbeats too (a one-shot worker leaves the loop without a signal)
    alive.clear()
    _stop(consumers)
    if health is not None:
        health.shutdown()
    # Deregistering is a courtesy (the entry expires with its heartbeat): never wait on a broker
    # that is down or hung for it.
    _bounded(lambda: [c.ctx.state.lanes.leave(lane, c.ctx.worker_id) for c in consumers], DEREGISTER_TIMEOUT_S)
    return exit_code


def _start_background(contexts: list[WorkerContext], stop: threading.Event) -> None:
    """Heartbeats (and reaping) of each consumer, and retention sweeps when retention is set,
    each in its own thread until ``stop``: a hung broker must not keep the serve loop (and so a
    SIGTERM) waiting on a socket, and a long store listing must never delay a heartbeat."""
    for ctx in contexts:
        threading.Thread(target=_heartbeats, args=(ctx, stop), daemon=True, name="heartbeat").start()
    if contexts[0].settings.data_retention_days is not None:
        threading.Thread(target=_retention_sweeps, args=(contexts[0], stop), daemon=True, name="retention").start()


def heartbeat_interval_s(settings: Settings) -> float:
    """How often a worker says it is alive: well within the time after which it counts as gone."""
    return min(HEARTBEAT_INTERVAL_S, settings.broker_heartbeat_timeout_s / 3)


def _heartbeats(ctx: WorkerContext, stop: threading.Event) -> None:
    """Beat, and reap when due, every heartbeat interval until ``stop``."""
    timeout_s = ctx.settings.broker_heartbeat_timeout_s
    broker_ok_since = time.monotonic()
    while not stop.wait(heartbeat_interval_s(ctx.settings)):
        try:
            ctx.state.lanes.heartbeat(ctx.lane, ctx.worker_id)
            # A worker silent for the broker's heartbeat timeout is gone (Dramatiq redelivers
            # its messages then): free the running slots it held. Not right after the broker
            # came back, when every worker looks silent until its next heartbeat.
            if time.monotonic() - broker_ok_since >= timeout_s:
                reaped = ctx.state.reaper.reap_if_due(stale_after_s=timeout_s, every_s=timeout_s)
                if reaped is not None:
                    _restore_tokens(ctx, reaped.requeued)
        except Exception:
            broker_ok_since = time.monotonic()
            log.warning("heartbeat or reaper failed", exc_info=True)


def _retention_sweeps(ctx: WorkerContext, stop: threading.Event) -> None:
    """Sweep old data when due (``app.tenancy.retention``), in its own thread: a long listing of the store
    must never delay a heartbeat."""
    while not stop.wait(RETENTION_CHECK_S):
        try:
            sweep_if_due(ctx.settings, ctx.state, ctx.store, ctx.worker_id)
        except Exception:  # the store may be down: the next due sweep tries again
            log.warning("retention sweep failed", exc_info=True)


def _serve(consumers: list[Consumer], stop: threading.Event) -> int:
    """Watch the worker threads until told to stop (or a one-shot worker is done); the exit status."""
    ctx = consumers[0].ctx
    max_jobs = ctx.max_jobs
    started_at = time.monotonic()
    while not stop.wait(HEARTBEAT_INTERVAL_S if max_jobs is None else 0.2):
        if not all(thread.is_alive() for c in consumers for thread in c.worker.workers):
            # Dramatiq does not restart a worker thread that died; without it this process would
            # keep fetching (and holding) messages it never runs. Exit so it is restarted.
            log.critical("the worker thread died; exiting so the worker is restarted")
            return 1
        if max_jobs is not None:
            if ctx.jobs_done >= max_jobs:
                return 0
            if ctx.jobs_done == 0 and time.monotonic() - started_at > ONE_SHOT_IDLE_EXIT_S:
                log.info("no job arrived in %.0f s; exiting", ONE_SHOT_IDLE_EXIT_S)
                return 0
    return 0


def _restore_tokens(ctx: WorkerContext, requeued: list[str]) -> None:
    """Every queued or running job needs a slot token on its lane (``app.state.scripts.PICK``):
    send one for each job the reaper sent back to queued, then top each lane up to as many
    tokens (pending, in progress or delayed messages) as it has queued and running jobs. That
    also repairs a token lost to a crash between a job's move and its enqueue (a two-step job
    changing lanes, a submission). A spare token costs one empty pick."""
    broker = dramatiq.get_broker()
    for job_id in requeued:
        job = ctx.state.jobs.get(job_id)
        if job is not None:
            enqueue(broker, job_id, job.lane)
    r, keys = ctx.state.conn.r, ctx.state.keys
    for lane in LANES:
        pipe = r.pipeline(transaction=False)
        queue = lane_queue(lane)
        pipe.hlen(f"{queue}.msgs")
        pipe.hlen(f"{queue}.DQ.msgs")
        pipe.zcard(keys.lane(lane, "queued"))
        pipe.scard(keys.lane(lane, "running"))
        pending, delayed, queued, running = pipe.execute()
        for _ in range(queued + running - pending - delayed):
            log.warning("the %s lane had fewer slot tokens than jobs; one more sent", lane)
            enqueue(broker, "", lane)


def _stop(consumers: list[Consumer]) -> None:
    """Let the running jobs finish for up to the shutdown timeout, then hand them back (their
    job processes are killed and the jobs retried); the whole takes at most that timeout plus
    WORKER_STOP_MARGIN_S, whether or not the broker answers (Dramatiq retries an ack on a lost
    broker for ever: that message is redelivered once its lease expires), plus at most
    ``webhook_timeout_s`` for a webhook delivery in flight when webhooks are on. Every consumer
    stops at once, so several take no longer than one."""
    settings = consumers[0].ctx.settings
    grace_s = settings.worker_shutdown_timeout_s
    log.info("stopping: waiting up to %.0f s for running jobs; long fits checkpoint and are requeued", grace_s)
    for c in consumers:  # a chunked fit saves at its chunk's end and hands the job back
        c.ctx.runner.request_checkpoint()
    stoppers = [
        threading.Thread(target=c.worker.stop, kwargs={"timeout": int((grace_s + 60) * 1000)}, daemon=True)
        for c in consumers
    ]
    for stopper in stoppers:
        stopper.start()
    deadline = time.monotonic() + grace_s
    for stopper in stoppers:
        stopper.join(max(0.0, deadline - time.monotonic()))
    if any(stopper.is_alive() for stopper in stoppers):
        for c, stopper in zip(consumers, stoppers, strict=True):
            if stopper.is_alive():
                c.ctx.runner.abort("The worker was shut down before the job finished; it is retried on another worker.")
        deadline = time.monotonic() + WORKER_STOP_MARGIN_S - DEREGISTER_TIMEOUT_S
        for stopper in stoppers:
            stopper.join(max(0.0, deadline - time.monotonic()))
        if any(stopper.is_alive() for stopper in stoppers):
            log.warning("the broker did not take a job back in time; it is redelivered when its lease expires")
    for c in consumers:
        c.ctx.runner.kill()
    for c in consumers:
        if c.ctx.notifier is not None:  # the process exits: webhook deliveries in flight get a moment
            c.ctx.notifier.drain(settings.webhook_timeout_s)


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
