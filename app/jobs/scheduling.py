"""The schedules' loop in a worker process (``app.usecases.schedules``): every long-lived worker runs one,
and the lease in Valkey lets one at a time fire, so schedules need no CronJob and no server of
their own, on the embedded stack as on kind or GKE."""

from __future__ import annotations

import threading

import dramatiq

from app.core.auth import ApiKeys
from app.jobs.context import WorkerContext
from app.usecases.schedules import Scheduler
from app.usecases.services import Services


def start_scheduler(ctx: WorkerContext, broker: dramatiq.Broker, stop: threading.Event) -> Scheduler:
    """Start firing due schedules from this worker (a daemon thread, until ``stop``), submitting
    their jobs through ``broker`` as the API would."""
    svc = Services(
        settings=ctx.settings, state=ctx.state, store=ctx.store, broker=broker,
        keys=ApiKeys(client=ctx.state.conn.r), notifier=ctx.notifier,
    )  # fmt: skip
    scheduler = Scheduler(svc, token=ctx.worker_id)
    threading.Thread(target=scheduler.run_forever, args=(stop,), daemon=True, name="scheduler").start()
    return scheduler
