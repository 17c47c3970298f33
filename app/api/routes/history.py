"""``GET /v1/history``: recent jobs of every status, filtered and paged, ``GET
/v1/history/{job_id}``: one job in full (a queued one with its expected start), and ``GET
/v1/history/{job_id}/logs``: its log lines, for the dashboard's history and its page per job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from app.api.deps import ServicesDep, ViewerDep
from app.api.errors import error_responses
from app.api.history_schemas import HistoryItem, HistoryPage, JobRecord
from app.api.log_schemas import LogLinePublic, LogsPublic
from app.api.presenters import job_public
from app.api.schemas import ModelName
from app.core import ids
from app.core.domain import Job, JobKind, JobStatus, Lane
from app.observability.history import HistoryFilter, history_page, timings, visible_job
from app.usecases import expected_start, job_logs
from app.usecases.services import Services

router = APIRouter(prefix="/v1/history", tags=["observability"], responses=error_responses(401, 404, 422, 503))


def _item(job: Job, expected: dict[str, Any] | None = None) -> HistoryItem:
    return HistoryItem(**job_public(job, expected_start=expected).model_dump(), tenant=job.tenant)


def _expected_start(svc: Services, job: Job) -> dict[str, Any] | None:
    """A queued job's expected start (``app.usecases.expected_start``); None for any other."""
    if job.status != JobStatus.QUEUED:
        return None
    _, waiting = svc.state.conn.run(svc.state.lanes.job_view(job.tenant, job.id))
    return expected_start.for_queued(svc.settings, job, waiting)


@router.get("", summary="Recent jobs of every status, filtered and paged")
async def history(
    svc: ServicesDep,
    viewer: ViewerDep,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    lane: Lane | None = None,
    model: ModelName | None = None,
    tenant: str | None = Query(None, max_length=200, description="One tenant's jobs (admin keys only)."),
    limit: int = Query(50, ge=1, le=200),
    cursor: float | None = Query(None, allow_inf_nan=False, description="next_cursor of the previous page"),
) -> HistoryPage:
    """Jobs newest first, finished, failed and canceled ones as well as queued and running ones,
    optionally one `status`, `kind`, `lane` or `model` family; an admin key sees every tenant's
    jobs, or one `tenant`'s. `next_cursor` pages to older jobs."""
    flt = HistoryFilter(status=status, kind=kind, lane=lane, model=model, tenant=tenant)
    jobs, next_cursor = await run_in_threadpool(history_page, svc.state, viewer, flt, limit=limit, before=cursor)
    return HistoryPage(items=[_item(j) for j in jobs], next_cursor=None if next_cursor is None else str(next_cursor))


@router.get("/{job_id}", summary="One job in full: status, steps, timings, parameters, result, events, links")
async def job_record(job_id: str, svc: ServicesDep, viewer: ViewerDep) -> JobRecord:
    """Everything the dashboard's page per job shows: the job (status, steps, parameters, result
    with its metrics, error with its hint), how long it waited and ran, its timeline, and the API
    paths of its dataset and model. An admin key may read any tenant's job."""
    ids.require("job", job_id)
    job = await run_in_threadpool(visible_job, svc.state, viewer, job_id)
    events = await run_in_threadpool(svc.state.events.since, job_id)
    expected = await run_in_threadpool(_expected_start, svc, job)
    links = {"dataset": f"/v1/datasets/{job.dataset_id}"}
    if job.kind == "fit" and job.status == JobStatus.FINISHED:
        links["model"] = f"/v1/models/{job.id}"
    elif job.model_id:
        links["model"] = f"/v1/models/{job.model_id}"
    return JobRecord(job=_item(job, expected), timings=timings(job), events=events, links=links)


@router.get("/{job_id}/logs", summary="One job's log lines, for the dashboard's page per job")
async def job_record_logs(
    job_id: str,
    svc: ServicesDep,
    viewer: ViewerDep,
    since: str | None = Query(None, max_length=40, description="`next_since` of the previous page."),
    limit: int = Query(500, ge=1, le=5000),
) -> LogsPublic:
    """What `GET /v1/jobs/{id}/logs` answers (without `follow`), for a job the caller may see: its
    own, or any tenant's with an admin key."""
    ids.require("job", job_id)
    job = await run_in_threadpool(visible_job, svc.state, viewer, job_id)
    read, complete = await run_in_threadpool(job_logs.page, svc, job.tenant, job_id, since, limit)
    items = [LogLinePublic(**job_logs.shown(line)) for line in read.lines]
    return LogsPublic(items=items, next_since=str(read.next_since) if read.next_since else since, complete=complete)
