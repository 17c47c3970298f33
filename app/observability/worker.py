"""A worker's view of its jobs: metrics, log context and the failures index, as Dramatiq middleware.

It reads the job record before and after each message rather than hooking into each place a
job can end (the actor, the lifecycle middleware's several exits, a skip): the record says what
really happened, once. It wraps the lifecycle middleware: listed before it, its ``before_*`` hook runs
first and its ``after_*`` hooks last (Dramatiq runs those in reverse), so it sees the record
before and after the lifecycle's changes; its ``start_hook`` is listed after it, to see a start
the moment it happens (the job then runs for minutes or hours). The job runs in a forked child
process, but every transition is recorded here, in the worker process, whose registry the
health port exports.
"""

from __future__ import annotations

import logging
from typing import Any

from dramatiq import Broker, MessageProxy
from dramatiq.middleware import Middleware

from app import logging_setup
from app.observability import metrics
from app.observability.failures import record_failure

log = logging.getLogger("tabjob.worker")
TERMINAL = ("finished", "failed", "canceled")


class JobObserver(Middleware):
    """Records job starts, ends and retries of one worker.

    Parameters:
      state: the worker's job store (``get_job`` and its redis client ``r``).
      lane, worker_id: this worker, for the log lines and the busy gauge.
    """

    def __init__(self, *, state: Any, lane: str, worker_id: str) -> None:
        self.state = state
        self.lane = lane
        self.worker_id = worker_id
        # message id -> the record as it was before the message was processed (one thread runs
        # messages here, but keep it per message, as Dramatiq's own Prometheus middleware does).
        self._before: dict[str, dict[str, Any]] = {}
        self.start_hook = _StartObserver(self)

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        job_id = message.args[0] if message.args else None
        job = self._read(job_id)
        if job is None:
            return
        self._before[message.message_id] = job
        logging_setup.bind(
            job_id=job["id"],
            tenant=job.get("tenant"),
            lane=job.get("lane"),
            step=job.get("step") or job.get("kind"),
            worker=self.worker_id,
        )
        metrics.WORKER_BUSY.labels(self.lane).set(1)

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        try:
            self._observe(message, exception)
        except Exception:  # never let bookkeeping end Dramatiq's worker thread
            log.warning("could not record metrics for message %s", message.message_id, exc_info=True)
        finally:
            metrics.WORKER_BUSY.labels(self.lane).set(0)
            logging_setup.clear()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)

    def _observe(self, message: MessageProxy, exception: BaseException | None) -> None:
        before = self._before.pop(message.message_id, None)
        if before is None or before["status"] in TERMINAL:
            return  # unknown job, or a redelivery of a job that had already ended
        after = self._read(before["id"])
        if after is None:
            return
        started = int(after.get("attempts") or 0) > int(before.get("attempts") or 0)
        if after["status"] in TERMINAL:
            metrics.record_ended(after)
            self._log_end(after)
            if after["status"] == "failed":
                record_failure(self.state.r, after)
        elif started and after["status"] == "queued" and exception is not None:
            # It ran, failed on a platform error, and the lifecycle handed it back for a retry.
            metrics.record_retry(after, _code_of(exception))
            log.warning("job attempt failed on a platform error and is retried: %s", exception)

    @staticmethod
    def _log_end(job: dict[str, Any]) -> None:
        ran = float(job.get("ended_at") or 0) - float(job.get("started_at") or job.get("ended_at") or 0)
        if job["status"] == "failed":
            error = job.get("error") or {}
            log.warning("job failed after %.2f s: %s: %s", ran, error.get("code"), error.get("message"))
        else:
            log.info("job %s after %.2f s", job["status"], ran)

    def _read(self, job_id: Any) -> dict[str, Any] | None:
        return self.state.get_job(job_id) if isinstance(job_id, str) else None


class _StartObserver(Middleware):
    """The half of JobObserver listed after the lifecycle middleware: its ``before`` hook runs
    only when the lifecycle let the message through, and sees the job just marked started."""

    def __init__(self, observer: JobObserver) -> None:
        self.observer = observer

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        before = self.observer._before.get(message.message_id)
        if before is None:
            return
        try:
            job = self.observer._read(before["id"])
            if job is None or int(job.get("attempts") or 0) <= int(before.get("attempts") or 0):
                return
            metrics.record_started(job)
            waited = float(job.get("started_at") or 0) - float(job.get("queued_at") or job["created_at"])
            log.info("job started (attempt %s) after %.2f s in the queue", job.get("attempts"), waited)
        except Exception:  # bookkeeping must never stop the job
            log.warning("could not record the start of message %s", message.message_id, exc_info=True)


def _code_of(exception: BaseException) -> str:
    """The error code of a failed attempt (Redis errors are the broker's, as the lifecycle says)."""
    import redis

    if isinstance(exception, redis.RedisError):
        return "platform.broker_unavailable"
    return getattr(exception, "code", None) or "job.internal_error"
