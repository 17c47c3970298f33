"""Job state kept by Dramatiq middleware: started, retried, failed, canceled, with events.

The actor only does the work and records success; every other transition happens here, in
one place, whatever raised. Jobs end through ``WorkerContext.end`` (``app.jobs.ending``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import redis
from dramatiq import Broker, MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from app.core.domain import Job, JobStatus
from app.core.errors import CanceledWhileRunning, InfraError, TabjobError, UserError
from app.core.waiting import PollTimeout, wait_until
from app.jobs.context import WorkerContext
from app.usecases.steps import current, requeued
from app.usecases.steps import started as started_step

log = logging.getLogger("tabjob.worker")
# How long a job whose tenant is at its running limit waits before it is looked at again.
TENANT_DEFER_S = 2.0
# How long a worker reserved for small work, finding none, waits for some before it takes
# another token (it has handed the one it had back).
SMALL_WORK_WAIT_S = 1.0


class JobLifecycle(Middleware):
    """Moves job records through queued → started → finished | failed | canceled.

    Parameters:
      ctx: the worker's context (its state, store, settings and counters).
    """

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        # The job each message in progress started, by message id: kept here, not in the
        # message's options, which Dramatiq re-enqueues with every retry.
        self._running: dict[str, Job] = {}

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        """A message is a slot token for its lane: start the job the lane's order says is next
        (short jobs first, aged), whichever job the message was sent for."""
        ctx = self.ctx
        if ctx.max_jobs is not None and ctx.jobs_started >= ctx.max_jobs:
            # This pod has had its job; the token goes back for the pod KEDA starts for it.
            broker.enqueue(message.copy())
            raise SkipMessage()
        limit, max_cells = ctx.settings.tenant_max_running, ctx.settings.worker_max_cells
        picked = ctx.state.jobs.pick(
            ctx.lane,
            ctx.worker_id,
            running_limit=limit,
            waiting_message=tenant_waiting_message(limit),
            max_cells=max_cells,
        )
        for job_id in picked.noted:
            ctx.state.events.add(job_id, "waiting", tenant_waiting_message(limit))
        if picked.job is None:
            if picked.passed and max_cells is not None:
                # Reserved for small work and none waits: hand the token straight back for the
                # other workers, and wait a moment for small work before taking another.
                broker.enqueue(message.copy())
                self._await_small_work(max_cells)
            elif picked.held:  # jobs wait for their tenant's limit or a back-off: keep the token
                self._defer(broker, message, picked.retry_at)
            raise SkipMessage()  # no job waits: a spare token (its job was canceled or started)
        job = picked.job
        if not self._may_run(job):
            raise SkipMessage()
        ctx.jobs_started += 1
        step = current(job.steps)
        if step:  # a two-step job: the step it is in starts too (so a failure closes it)
            job.steps = started_step(job.steps, step["name"])
            ctx.state.jobs.update(job.id, steps=job.steps)
        waited = time.time() - job.enqueued_at
        what = f"Step {step['name']} started" if step else "Started"
        ctx.state.events.add(
            job.id,
            "started",
            f"{what} on worker {ctx.worker_id} (attempt {job.attempts}) after {waited:.2f} s in the queue.",
            attempt=job.attempts,
            **({"step": step["name"]} if step else {}),
        )
        self._running[message.message_id] = job
        ctx.current = job
        pause_after_start(job.id)

    def _may_run(self, job: Job) -> bool:
        """False (after ending it) for a picked job that must not run."""
        if job.cancel_requested:
            self.ctx.end(job, JobStatus.CANCELED, "Canceled before it started.")
            return False
        if job.attempts - 1 > self.ctx.settings.max_retries:
            # Started again and again and never ended: its worker died each time (a job that kills
            # its worker, say by exhausting the pod's memory). Stop instead of looping forever.
            error = InfraError(
                f"The job's worker was lost {job.attempts - 1} times while running it. This was the "
                "platform's fault or the job needs more memory than a worker has; it will not be "
                "retried again.",
                code="platform.worker_lost",
                hint="Try a smaller dataset or the large lane, or contact the operators.",
            )
            self._fail(job, error)
            return False
        return True

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        # An exception escaping here would end Dramatiq's only worker thread and leave the
        # worker fetching messages nobody runs: log it, and let the worker's watchdog decide.
        job = self._running.pop(message.message_id, None)
        self.ctx.current = None
        if job is None or exception is None:
            return
        try:
            self._record_failure(message, job, exception)
        except Exception:
            log.exception("could not record the outcome of message %s", message.message_id)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._running.pop(message.message_id, None)
        self.ctx.current = None

    def _record_failure(self, message: MessageProxy, job: Job, exception: BaseException) -> None:
        if isinstance(exception, redis.RedisError):  # retried by Retries, like any platform error
            exception = InfraError(
                f"The broker failed ({type(exception).__name__}).", code="platform.broker_unavailable"
            )
        if isinstance(exception, CanceledWhileRunning):
            message.fail()
            self.ctx.end(job, JobStatus.CANCELED, "Canceled while running; its worker was freed.")
        elif isinstance(exception, UserError):
            message.fail()
            self._fail(job, exception)
        elif isinstance(exception, InfraError) and not message.failed:
            self._requeue(message, job, exception)
        else:
            if not isinstance(exception, TabjobError):
                log.error("job %s failed with an unexpected error", job.id, exc_info=exception)
                exception = InfraError(
                    f"Internal error: {type(exception).__name__}: {exception}", code="job.internal_error"
                )
            attempts = message.options.get("retries", 1)  # Retries has counted this attempt
            assert isinstance(exception, TabjobError)
            error = InfraError(
                f"{exception.message} This was the platform's fault, not your data's; "
                f"it failed {attempts} time(s) and will not be retried again.",
                code=exception.code,
                hint="Submit the job again later; if it keeps failing, contact the operators.",
            )
            self._fail(job, error)

    def _requeue(self, message: MessageProxy, job: Job, exception: InfraError) -> None:
        """Back to queued for the retry Dramatiq's Retries middleware has scheduled."""
        ctx = self.ctx
        retries = message.options.get("retries", 1)
        # Not picked before the shortest back-off Retries may have chosen for this retry's token
        # (jitter makes it 1x to 2x min_backoff * 2**(retries - 1), or half the maximum at least).
        backoff_s = min(ctx.settings.retry_min_backoff_s * 2 ** (retries - 1), ctx.settings.retry_max_backoff_s / 2)
        step = current(job.steps)
        fields = {"steps": requeued(job.steps, step["name"])} if step else {}
        ctx.state.jobs.requeue(
            job, f"Retrying after a platform error: {exception.message}", not_before=time.time() + backoff_s, **fields
        )
        ctx.state.events.add(
            job.id,
            "retrying",
            f"Platform error ({exception.code}): {exception.message} "
            f"Retry {retries} of {ctx.settings.max_retries} follows with back-off.",
        )

    def _await_small_work(self, max_cells: int) -> None:
        """Until a job of at most ``max_cells`` waits in this lane (or a while has passed)."""
        ctx = self.ctx
        with contextlib.suppress(PollTimeout):
            wait_until(
                lambda: ctx.state.jobs.small_work_waits(ctx.lane, max_cells),
                what="small work",
                timeout_s=SMALL_WORK_WAIT_S,
                interval_s=0.05,
            )

    def _defer(self, broker: Broker, message: MessageProxy, retry_at: float | None) -> None:
        """Put the token back for a while: every waiting job is held back by its tenant's running
        limit or a retry's back-off (until ``retry_at``)."""
        delay_s = TENANT_DEFER_S if retry_at is None else min(TENANT_DEFER_S, max(0.05, retry_at - time.time()))
        broker.enqueue(message.copy(), delay=int(delay_s * 1000))

    def _fail(self, job: Job, error: TabjobError) -> None:
        self.ctx.end(job, JobStatus.FAILED, f"{error.code}: {error.message}", error=error.to_dict())


def tenant_waiting_message(limit: int) -> str:
    """Why a job of a tenant at its running limit waits (its record's message, once an event)."""
    return f"Waiting: your account already runs {limit} job(s), the most allowed at once."


def pause_after_start(job_id: str) -> None:
    """A test hook: with ``TABJOB_TEST_PAUSE_AFTER_START`` set to a directory, announce the
    start there (``<job_id>.started``) and hold until ``<job_id>.go`` appears, so a test can
    kill the worker at the worst moment, right after the start and before the job runs."""
    import os
    from pathlib import Path

    from app.core.waiting import wait_until

    folder = os.environ.get("TABJOB_TEST_PAUSE_AFTER_START")
    if not folder:
        return
    (Path(folder) / f"{job_id}.started").touch()
    wait_until(lambda: (Path(folder) / f"{job_id}.go").exists(), what="the test to release the job", timeout_s=600)
