"""What happens for observability when a job ends: counted, indexed if it failed, logged.

Called by ``app.jobs.ending.end_job``, the one way a job ends, so whichever process ended the
job (the worker that ran it, or the API for a job canceled while queued) counts it, once.
"""

from __future__ import annotations

import logging

from app.core.domain import JobStatus
from app.observability import metrics
from app.observability.failures import record_failure
from app.state import State
from app.usecases import estimates

log = logging.getLogger("tabjob.jobs")


def record_end(state: State, job_id: str) -> None:
    """Count, index and log the job that just ended. Never raises: the job has ended anyway,
    and bookkeeping must not turn that into an error."""
    try:
        job = state.jobs.get(job_id)
        if job is None:
            return
        metrics.record_ended(job)
        estimates.record(state.conn.r, state.keys, job)  # a finished job's run time teaches the estimates
        fields = {"job_id": job.id, "tenant": job.tenant, "lane": job.lane, "step": job.kind}
        ran = (job.ended_at or 0.0) - (job.started_at or job.ended_at or 0.0)
        if job.status == JobStatus.FAILED:
            record_failure(state.conn.r, job, keys=state.keys)
            error = job.error or {}
            log.warning("job failed after %.2f s: %s: %s", ran, error.get("code"), error.get("message"), extra=fields)
        else:
            log.info("job %s after %.2f s", job.status.value, ran, extra=fields)
    except Exception:
        log.warning("could not record the end of job %s", job_id, exc_info=True)
