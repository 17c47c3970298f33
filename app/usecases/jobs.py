"""Acting on an existing job: cancel it, download its result."""

from __future__ import annotations

from datetime import datetime

from app.core.domain import Job, JobStatus
from app.core.errors import Conflict
from app.core.storage import result_key
from app.jobs.ending import end_job
from app.usecases.services import Services


def ensure_cancelable(job: Job) -> None:
    if job.status.terminal:
        raise Conflict(
            f"Job '{job.id}' has already ended ({job.status}).",
            code="job.already_ended",
            hint="Only queued or started jobs can be canceled.",
        )


def cancel(svc: Services, tenant: str, job_id: str) -> Job:
    """Cancel a job: a queued one never starts; a running one is stopped by its worker."""
    job = svc.state.jobs.get_for(tenant, job_id)
    ensure_cancelable(job)
    # The flag first, then the status read again: a worker that puts a started job back in a
    # queue for its next step looks at the flag after that move (app.jobs.stepping._requeue), so
    # whichever comes second sees the other and the job never waits queued with its cancel set.
    svc.state.jobs.request_cancel(job_id)
    job = svc.state.jobs.get_for(tenant, job_id)
    # Only a job still queued is ended here; one a worker took meanwhile is stopped by it.
    ended = job.status == JobStatus.QUEUED and end_job(
        svc.state,
        svc.store,
        job,
        JobStatus.CANCELED,
        "Canceled while queued; it will not start.",
        allowed=(JobStatus.QUEUED,),
        notifier=svc.notifier,
    )
    if not ended:
        svc.state.events.add(job_id, "cancel_requested", "Cancel requested; the worker stops the job.")
    return svc.state.jobs.get_for(tenant, job_id)


def result_download(svc: Services, tenant: str, job_id: str) -> tuple[str, datetime]:
    """The presigned URL of a finished prediction's Parquet file, and its expiry."""
    job = svc.state.jobs.get_for(tenant, job_id)
    if job.kind != "predict":
        raise Conflict(
            f"Job '{job_id}' is a fit job; it produces a model, not predictions.",
            code="job.no_result",
            hint="Submit a predict job with this model and download its result.",
        )
    if job.status != JobStatus.FINISHED:
        detail = f" ({job.error['message']})" if job.status == JobStatus.FAILED and job.error else ""
        raise Conflict(
            f"Job '{job_id}' has no result: its status is {job.status}{detail}.",
            code="job.not_finished",
            hint="Submit the prediction again."
            if job.status.terminal
            else "Poll the job's status and download once it is finished.",
        )
    return svc.store.presign_download(result_key(tenant, job_id), filename=f"{job_id}.parquet")
