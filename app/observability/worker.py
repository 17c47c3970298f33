"""A worker's view of its jobs, as Dramatiq middleware: the log context of each job, the busy
gauge, and the metrics of starts and retries (ends are recorded by ``end_job`` itself, see
``app.observability.endings``).

A message is only a slot token of its lane: the lifecycle middleware picks the job it starts
(``WorkerContext.current``), so this reads the job record right after that start and again after
the attempt, rather than hooking into the lifecycle's branches: the record says what really
happened. It wraps the lifecycle middleware: listed before it, its ``after_*`` hooks run last
(Dramatiq runs those in reverse); its ``start_hook`` is listed after it, to see a start the
moment it happens (the job then runs for minutes or hours). The job runs in a forked child process, but all of this is
recorded here, in the worker process, whose registry the health port exports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from dramatiq import Broker, MessageProxy
from dramatiq.middleware import Middleware

from app.core import logging_setup
from app.core.domain import Job, JobStatus
from app.observability import metrics
from app.state import State

log = logging.getLogger("tabjob.worker")


class JobObserver(Middleware):
    """Log context, busy gauge, starts and retries of one worker's jobs.

    Parameters:
      state: the worker's state store.
      lane, worker_id: this worker, for the log lines and the busy gauge.
      picked: the job the lifecycle middleware started for the message in progress, if any.
    """

    def __init__(self, *, state: State, lane: str, worker_id: str, picked: Callable[[], Job | None]) -> None:
        self.state = state
        self.lane = lane
        self.worker_id = worker_id
        self.picked = picked
        # message id -> the record as it was when its job started (one thread runs messages
        # here, but keep it per message, as Dramatiq's own Prometheus middleware does).
        self.started: dict[str, Job] = {}
        self.start_hook = _StartObserver(self)

    def read(self, job_id: Any) -> Job | None:
        return self.state.jobs.get(job_id) if isinstance(job_id, str) else None

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        started = self.started.pop(message.message_id, None)
        try:
            if started is not None and exception is not None:
                self._observe_retry(started, exception)
        except Exception:  # never let bookkeeping end Dramatiq's worker thread
            log.warning("could not record metrics for message %s", message.message_id, exc_info=True)
        finally:
            if started is not None:  # the consumers of one process share the gauge: count them
                metrics.WORKER_BUSY.labels(self.lane).dec()
            logging_setup.clear()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)

    def _observe_retry(self, started: Job, exception: BaseException) -> None:
        """The attempt ran and failed on a platform error, and the lifecycle queued it again."""
        after = self.read(started.id)
        if after is not None and after.status == JobStatus.QUEUED and after.attempts == started.attempts:
            metrics.record_retry(after, _code_of(exception))
            log.warning("job attempt failed on a platform error and is retried: %s", exception)


class _StartObserver(Middleware):
    """The half of JobObserver listed after the lifecycle middleware: its ``before`` hook runs
    only when the lifecycle let the message through, and sees the job just marked started."""

    def __init__(self, observer: JobObserver) -> None:
        self.observer = observer

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        observer = self.observer
        job = observer.picked()
        if job is None:
            return
        observer.started[message.message_id] = job
        step = getattr(job, "step", None) or job.kind
        logging_setup.bind(job_id=job.id, tenant=job.tenant, lane=job.lane, step=step, worker=observer.worker_id)
        metrics.WORKER_BUSY.labels(observer.lane).inc()
        try:
            metrics.record_started(job)
            waited = (job.started_at or 0.0) - job.enqueued_at
            log.info("job started (attempt %s) after %.2f s in the queue", job.attempts, waited)
        except Exception:  # bookkeeping must never stop the job
            log.warning("could not record the start of message %s", message.message_id, exc_info=True)


def _code_of(exception: BaseException) -> str:
    """The error code of a failed attempt (Redis errors are the broker's, as the lifecycle says)."""
    if isinstance(exception, redis.RedisError):
        return "platform.broker_unavailable"
    return getattr(exception, "code", None) or "job.internal_error"
