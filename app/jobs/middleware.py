"""Job state kept by Dramatiq middleware: started, retried, failed, canceled, with events.

The actor only does the work and records success; every other transition happens here, in
one place, whatever raised.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from dramatiq import Broker, MessageProxy
from dramatiq.middleware import Middleware, SkipMessage

from app.errors import InfraError, JobCanceled, TabjobError, UserError
from app.jobs.context import get_context

log = logging.getLogger("tabjob.worker")
# How long a job whose tenant is at its running limit waits before it is looked at again.
TENANT_DEFER_S = 2.0


class JobLifecycle(Middleware):
    """Moves job records through queued → started → finished | failed | canceled."""

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        ctx = get_context()
        job_id = message.args[0]
        job = ctx.state.get_job(job_id)
        if job is None:
            log.warning("message %s names unknown or expired job %s; dropped", message.message_id, job_id)
            raise SkipMessage()
        if job["status"] in ("finished", "failed", "canceled"):
            # A redelivery after the job already ended (its worker died after finishing).
            raise SkipMessage()
        if job.get("cancel_requested"):
            self._finish_canceled(ctx, job, "Canceled before it started.")
            raise SkipMessage()
        lost = int(job.get("attempts") or 0)
        if job["status"] == "started" and lost > ctx.settings.max_retries:
            # Redelivered after its worker died, again and again (a job that kills its worker, say
            # by exhausting the pod's memory): stop instead of looping forever.
            error = InfraError(
                f"The job's worker was lost {lost} times while running it. This was the platform's "
                "fault or the job needs more memory than a worker has; it will not be retried again.",
                code="platform.worker_lost",
                hint="Try a smaller dataset or the large lane, or contact the operators.",
            )
            self._finish_failed(ctx, job, error)
            raise SkipMessage()
        # A redelivered job (status still started) holds its running slot already.
        if (
            job["status"] == "queued"
            and ctx.state.tenant_load(job["tenant"])["running"] >= ctx.settings.tenant_max_running
        ):
            self._defer(broker, message, ctx, job)
            raise SkipMessage()
        if ctx.max_jobs is not None and ctx.jobs_started >= ctx.max_jobs:
            # This pod has had its job; the message goes back for the pod KEDA starts for it.
            broker.enqueue(message.copy())
            raise SkipMessage()
        if not ctx.state.mark_started(job, ctx.worker_id):
            raise SkipMessage()
        ctx.jobs_started += 1
        attempts = int(job.get("attempts", 0)) + 1
        waited = time.time() - float(job.get("queued_at") or job["created_at"])
        ctx.state.add_event(
            job_id,
            "started",
            f"Started on worker {ctx.worker_id} (attempt {attempts}) after {waited:.2f} s in the queue.",
            attempt=attempts,
        )
        message.options["tabjob_job"] = job

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
        try:
            self._record_outcome(message, exception)
        except Exception:
            log.exception("could not record the outcome of message %s", message.message_id)

    def _record_outcome(self, message: MessageProxy, exception: BaseException | None) -> None:
        job = message.options.pop("tabjob_job", None)
        if job is None or exception is None:
            return
        if isinstance(exception, redis.RedisError):  # retried by Retries, like any platform error
            exception = InfraError(
                f"The broker failed ({type(exception).__name__}).", code="platform.broker_unavailable"
            )
        ctx = get_context()
        if isinstance(exception, JobCanceled):
            message.fail()
            self._finish_canceled(ctx, job, "Canceled while running; its worker was freed.")
        elif isinstance(exception, UserError):
            message.fail()
            self._finish_failed(ctx, job, exception)
        elif isinstance(exception, InfraError) and not message.failed:
            retries = message.options.get("retries", 1)
            ctx.state.requeue(job, f"Retrying after a platform error: {exception.message}")
            ctx.state.add_event(
                job["id"],
                "retrying",
                f"Platform error ({exception.code}): {exception.message} "
                f"Retry {retries} of {ctx.settings.max_retries} follows with back-off.",
            )
        else:
            if not isinstance(exception, TabjobError):
                log.error("job %s failed with an unexpected error", job["id"], exc_info=exception)
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
            self._finish_failed(ctx, job, error)

    @staticmethod
    def _defer(broker: Broker, message: MessageProxy, ctx: Any, job: dict[str, Any]) -> None:
        """Put the job back for a while: its tenant already runs as many jobs as allowed."""
        limit = ctx.settings.tenant_max_running
        broker.enqueue(message.copy(), delay=int(TENANT_DEFER_S * 1000))
        reason = f"Waiting: your account already runs {limit} job(s), the most allowed at once."
        if job.get("message") != reason:  # one event, not one per retry of the check
            ctx.state.update_job(job["id"], message=reason)
            ctx.state.add_event(job["id"], "waiting", reason)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        message.options.pop("tabjob_job", None)

    @staticmethod
    def _finish_failed(ctx: Any, job: dict[str, Any], error: TabjobError) -> None:
        if ctx.state.finish(job, "failed", error=error.to_dict()):
            ctx.state.add_event(job["id"], "failed", f"{error.code}: {error.message}", error=error.to_dict())
            write_manifest(ctx, job["id"])
        ctx.jobs_done += 1

    @staticmethod
    def _finish_canceled(ctx: Any, job: dict[str, Any], text: str) -> None:
        if ctx.state.finish(job, "canceled"):
            ctx.state.add_event(job["id"], "canceled", text)
            write_manifest(ctx, job["id"])
        ctx.jobs_done += 1


def write_manifest(ctx: Any, job_id: str) -> None:
    """Write the finished job's record and events to the store, so history outlives the broker."""
    job = ctx.state.get_job(job_id)
    if job is None:
        return
    from app.storage import manifest_key

    try:
        ctx.store.put_json(manifest_key(job["tenant"], job_id), {"job": job, "events": ctx.state.events(job_id)})
    except InfraError:
        log.warning("could not write the manifest of job %s", job_id, exc_info=True)
