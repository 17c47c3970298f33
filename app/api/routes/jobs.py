"""``/v1/jobs``: submit, read, list, follow, cancel, download."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Header, Query, Response

from app.api.deps import ServicesDep, TenantDep
from app.api.errors import error_responses
from app.api.presenters import job_public, queue_info
from app.api.schemas import DownloadPublic, EventsPublic, JobCreate, JobPublic, JobsPublic
from app.domain import JobKind, JobStatus
from app.errors import UserError
from app.usecases import jobs as job_actions
from app.usecases.submission import JobRequest, submit

log = logging.getLogger("tabjob.api")
router = APIRouter(
    prefix="/v1/jobs",
    tags=["jobs"],
    responses=error_responses(401, 404, 422, 503),
)


@router.post(
    "",
    status_code=202,
    summary="Submit a fit or predict job",
    responses=error_responses(400, 409, 413, 429),
)
def create_job(
    body: JobCreate,
    response: Response,
    svc: ServicesDep,
    tenant: TenantDep,
    idempotency_key: str | None = Header(
        None, max_length=200, description="Retries with the same key return the same job."
    ),
) -> JobPublic:
    if body.kind == "predict" and not body.model_id:
        raise UserError(
            "A predict job needs model_id (the id of a finished fit job).",
            code="job.missing_model",
            hint="Pass model_id.",
            status=422,
        )
    if body.kind == "fit" and body.model_id:
        raise UserError(
            "A fit job takes no model_id.", code="job.unexpected_model", hint="Leave model_id out.", status=422
        )
    params = body.params.chosen() if body.params else None
    request = JobRequest(body.kind, body.dataset_id, body.model_id, params, body.lane, model=body.model)
    done = submit(svc, tenant, request, idempotency_key=idempotency_key)
    if done.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    elif not done.deduplicated:
        fields = {"job_id": done.job.id, "lane": done.job.lane, "step": done.job.kind}
        log.info("%s job queued on the %s lane", done.job.kind, done.job.lane, extra=fields)
    job, waiting = svc.state.conn.run(svc.state.lanes.job_view(tenant, done.job.id))
    return job_public(job, queue=queue_info(svc.settings, job, waiting), deduplicated=done.deduplicated)


@router.get("", summary="The tenant's jobs, newest first")
def list_jobs(
    svc: ServicesDep,
    tenant: TenantDep,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: float | None = Query(None, allow_inf_nan=False, description="next_cursor of the previous page"),
) -> JobsPublic:
    jobs = svc.state.jobs.list(tenant, limit=limit, before=cursor, status=status, kind=kind)
    next_cursor = str(jobs[-1].created_at) if len(jobs) == limit else None
    return JobsPublic(items=[job_public(j) for j in jobs], next_cursor=next_cursor)


@router.get(
    "/{job_id}", response_model=JobPublic, summary="A job: status, phase, progress, error, result, and why it waits"
)
async def get_job(job_id: str, svc: ServicesDep, tenant: TenantDep) -> Response:
    # The route clients poll: awaited reads (no thread-pool hop), and the model is built once and
    # serialised once instead of FastAPI validating it again against response_model.
    job, waiting = await svc.state.conn.arun(svc.state.lanes.job_view(tenant, job_id))
    body = job_public(job, queue=queue_info(svc.settings, job, waiting)).model_dump_json()
    return Response(body, media_type="application/json")


@router.get("/{job_id}/events", summary="The job's timeline, from index `after` on")
def job_events(job_id: str, svc: ServicesDep, tenant: TenantDep, after: int = Query(0, ge=0)) -> EventsPublic:
    svc.state.jobs.check_owner(tenant, job_id)
    items = svc.state.events.since(job_id, after=after)
    return EventsPublic(items=items, next_after=items[-1]["seq"] + 1 if items else after)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    summary="Cancel a queued or running job",
    responses=error_responses(409),
)
def cancel_job(job_id: str, svc: ServicesDep, tenant: TenantDep) -> JobPublic:
    return job_public(job_actions.cancel(svc, tenant, job_id))


@router.get(
    "/{job_id}/result",
    summary="A presigned URL of a finished prediction's Parquet file",
    responses=error_responses(409),
)
def job_result(job_id: str, svc: ServicesDep, tenant: TenantDep) -> DownloadPublic:
    url, expires_at = job_actions.result_download(svc, tenant, job_id)
    return DownloadPublic(url=url, expires_at=expires_at)
