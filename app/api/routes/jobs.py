"""``/v1/jobs``: submit, read, list, follow, cancel, download."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Header, Query, Request, Response

from app.api.deps import DeclaredBearer, ServicesDep, TenantDep, services_of, tenant_of_request
from app.api.errors import error_responses
from app.api.job_requests import actor_of, job_request
from app.api.presenters import EndedJobBodies, job_public, queue_info
from app.api.schemas import DownloadPublic, EventsPublic, JobCreate, JobPublic, JobsPublic
from app.core.domain import JobKind, JobStatus
from app.engines.results import result_downloads
from app.state.lanes import decode_job_view
from app.usecases import expected_start
from app.usecases import jobs as job_actions
from app.usecases.submission import submit

log = logging.getLogger("tabjob.api")
# GET /v1/jobs/{id}'s bodies of ended jobs, kept by their raw record (see EndedJobBodies).
ENDED_BODIES = EndedJobBodies()
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
    http_request: Request,
    body: JobCreate,
    response: Response,
    svc: ServicesDep,
    tenant: TenantDep,
    idempotency_key: str | None = Header(
        None, max_length=200, description="Retries with the same key return the same job."
    ),
) -> JobPublic:
    """A fit trains a model on a dataset (`target`: its label column, `y` by default; `params`:
    the model's); a predict labels a dataset with a finished fit (`model_id`). The data is checked
    now, from the Parquet footer and the target column: bad data is a 4xx naming the problem, never
    a job that fails later. `dataset_id` may be `name@latest` or `name@3`, a predict's `model_id`
    `name@champion` or `name@2` (resolved now; the job keeps both). `register_as` makes a fit the
    next version of a registered model; with `evaluate_on` and `promote` it moves an alias if it
    beats the alias's version on the same data. The lane (`auto`) follows the dataset's size. An
    identical fit (same bytes, parameters and target; not a registered one) returns the earlier
    job (`deduplicated`); an `Idempotency-Key` makes retries return the same job. `webhook` asks
    for a signed POST when the job ends."""
    request = job_request(body, actor_of(http_request))
    done = submit(svc, tenant, request, idempotency_key=idempotency_key)
    if done.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    elif not done.deduplicated:
        fields = {"job_id": done.job.id, "lane": done.job.lane, "step": done.job.kind}
        log.info("%s job queued on the %s lane", done.job.kind, done.job.lane, extra=fields)
    job, waiting = svc.state.conn.run(svc.state.lanes.job_view(tenant, done.job.id))
    expected = expected_start.for_queued(svc.settings, job, waiting)
    queue = queue_info(svc.settings, job, waiting)
    return job_public(job, queue=queue, deduplicated=done.deduplicated, expected_start=expected)


@router.get("", summary="The tenant's jobs, newest first")
def list_jobs(
    svc: ServicesDep,
    tenant: TenantDep,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: float | None = Query(None, allow_inf_nan=False, description="next_cursor of the previous page"),
) -> JobsPublic:
    """Your jobs, newest first, optionally one `status` or `kind`; `limit` per page and
    `next_cursor` for the next page."""
    jobs = svc.state.jobs.list(tenant, limit=limit, before=cursor, status=status, kind=kind)
    next_cursor = str(jobs[-1].created_at) if len(jobs) == limit else None
    return JobsPublic(items=[job_public(j) for j in jobs], next_cursor=next_cursor)


@router.get(
    "/{job_id}", response_model=JobPublic, summary="A job: status, phase, progress, error, result, and why it waits"
)
async def get_job(job_id: str, request: Request, _declared: DeclaredBearer) -> Response:
    """Poll this while a job runs: status, phase and progress (a fraction when the phase has one),
    attempts, times, the error (`code`, `message`, `hint`, `retryable`) or the result (a fit's
    validation score, duration and model size), and for a queued job why it waits (`queue`) and
    when it should start (`expected_start`)."""
    # The route clients poll: awaited reads (no thread-pool hop), the tenant resolved by a call
    # rather than a dependency tree (same check, see tenant_of_request), and the model built once
    # and serialised once instead of FastAPI validating it again against response_model.
    svc = services_of(request)
    tenant = await tenant_of_request(request, svc)
    reply = await svc.state.conn.arun(svc.state.lanes.job_view_reply(tenant, job_id))
    cached = ENDED_BODIES.get(tenant, reply)
    if cached is not None:  # an ended job whose record has not changed since it was last shown
        return Response(cached, media_type="application/json")
    job, waiting = decode_job_view(tenant, job_id, reply)
    # A queued job's expected start, from the lane's load the same script read (no more round trips).
    expected = expected_start.for_queued(svc.settings, job, waiting)
    queue = queue_info(svc.settings, job, waiting)
    body = job_public(job, queue=queue, expected_start=expected).model_dump_json().encode()
    ENDED_BODIES.put(tenant, reply, job, body)
    return Response(body, media_type="application/json")


@router.get("/{job_id}/events", summary="The job's timeline, from index `after` on")
def job_events(job_id: str, svc: ServicesDep, tenant: TenantDep, after: int = Query(0, ge=0)) -> EventsPublic:
    """The job's timeline (queued, started, progress messages, retrying, webhook, and its end),
    from position `after` on: pass the previous page's `next_after` to get only new events."""
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
    """A queued job is canceled at once and never starts; a running one is stopped by its worker
    within seconds (`cancel_requested` until then). 409 `job.already_ended` for an ended job."""
    return job_public(job_actions.cancel(svc, tenant, job_id))


@router.get(
    "/{job_id}/result",
    summary="A presigned URL of a finished prediction's Parquet file",
    responses=error_responses(409),
)
def job_result(job_id: str, svc: ServicesDep, tenant: TenantDep) -> DownloadPublic:
    """Where to download a finished prediction (Parquet, one column `y`, a row per input row),
    straight from the object store, until `expires_at`. 409 while the job has not finished."""
    url, expires_at, urls = result_downloads(svc, tenant, job_id)
    return DownloadPublic(url=url, expires_at=expires_at, urls=urls)
