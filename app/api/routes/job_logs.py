"""``GET /v1/jobs/{id}/logs``: a job's log lines, kept in the object store by its workers, as a
page or followed (newline-delimited JSON) while the job runs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import ServicesDep, TenantDep
from app.api.errors import error_responses
from app.api.log_schemas import LogLinePublic, LogsPublic
from app.usecases import job_logs

NDJSON = "application/x-ndjson"
SINCE_DOC = "`next_since` of a previous page, or a line's `cursor`: only the lines after it."
FOLLOW_DOC = (
    "Stream the lines as newline-delimited JSON while the job runs; the stream ends when the job has ended "
    "and its last line is sent."
)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=error_responses(401, 404, 422, 503))


@router.get(
    "/{job_id}/logs",
    response_model=LogsPublic,
    summary="The job's log lines (worker and job process), as a page or followed while it runs",
    responses={200: {"content": {NDJSON: {"schema": {"$ref": "#/components/schemas/LogLinePublic"}}}}},
)
async def job_log(
    job_id: str,
    request: Request,
    svc: ServicesDep,
    tenant: TenantDep,
    since: str | None = Query(None, max_length=40, description=SINCE_DOC),
    follow: bool = Query(False, description=FOLLOW_DOC),
    limit: int = Query(1000, ge=1, le=5000, description="Most lines in a page (not with `follow`)."),
) -> LogsPublic | StreamingResponse:
    """The lines its workers and its job process logged about the job, every attempt and step,
    oldest first: time, level, message, attempt, step, and whether the worker or the job process
    (the model's own output included) wrote it. Workers write them to the object store every few
    seconds and when an attempt ends, so they outlive the worker's pod. A page answers at once
    (`complete` once no line is still to come); with `follow=true` the answer is `application/x-ndjson`,
    one `LogLinePublic` a line (an empty line now and then keeps the connection open), and it ends
    when the job has ended."""
    if not follow:
        read, complete = await run_in_threadpool(job_logs.page, svc, tenant, job_id, since, limit)
        items = [LogLinePublic(**job_logs.shown(line)) for line in read.lines]
        return LogsPublic(items=items, next_since=str(read.next_since) if read.next_since else since, complete=complete)
    await run_in_threadpool(job_logs.job_state, svc, tenant, job_id)  # 404 before the stream starts
    if since:
        job_logs.Cursor.parse(since)  # 422 before the stream starts

    async def lines() -> AsyncIterator[bytes]:
        async for line in job_logs.follow(svc, tenant, job_id, since, request.is_disconnected):
            if line is None:
                yield b"\n"
            else:
                yield (json.dumps(LogLinePublic(**job_logs.shown(line)).model_dump(mode="json")) + "\n").encode()

    return StreamingResponse(lines(), media_type=NDJSON, headers={"cache-control": "no-store"})
