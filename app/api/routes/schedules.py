"""``/v1/schedules``: create, list, read (with runs), pause, resume, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from app.api.deps import ServicesDep, TenantDep
from app.api.errors import error_responses
from app.api.job_requests import actor_of, job_request
from app.api.schedule_schemas import ScheduleCreate, SchedulePublic, SchedulesPublic
from app.usecases import schedules as usecase
from app.usecases.submission import check_webhook

router = APIRouter(prefix="/v1/schedules", tags=["schedules"], responses=error_responses(401, 404, 422, 503))

# What a schedule shows of its job's body (the webhook's secret never leaves the service).
HIDDEN_JOB_FIELDS = ("webhook_secret", "actor")


def schedule_public(record: dict[str, Any], runs: list[dict[str, Any]] | None = None) -> SchedulePublic:
    job = {k: v for k, v in record["job"].items() if k not in HIDDEN_JOB_FIELDS and v is not None}
    next_run_at = None if record.get("paused") else datetime.fromtimestamp(record["next_run_at"], UTC)
    return SchedulePublic.model_validate({
        **{k: v for k, v in record.items() if k in SchedulePublic.model_fields},
        "job": job, "paused": bool(record.get("paused")), "next_run_at": next_run_at, "runs": runs,
    })  # fmt: skip


@router.post("", status_code=201, summary="Create a schedule", responses=error_responses(400, 409, 429))
def create_schedule(body: ScheduleCreate, request: Request, svc: ServicesDep, tenant: TenantDep) -> SchedulePublic:
    """Submits `job` on every tick of `cron` in `timezone`, from the workers (no CronJob, no extra
    server): exactly once per tick whatever the replicas. `concurrency: forbid` skips a tick
    while the previous run's job is active; `catchup: last` runs the most recent tick missed
    during an outage. Runs are ordinary jobs of yours: same checks, quotas and rights."""
    if body.webhook:
        check_webhook(svc.settings, body.webhook.url)
    job = job_request(body.job, None)
    record = usecase.create_schedule(
        svc, tenant, cron=body.cron, timezone=body.timezone, request=job, concurrency=body.concurrency,
        catchup=body.catchup, webhook=(body.webhook.url, body.webhook.secret) if body.webhook else None,
        by=actor_of(request),
    )  # fmt: skip
    return schedule_public(record, runs=[])


@router.get("", summary="Your schedules")
def list_schedules(svc: ServicesDep, tenant: TenantDep) -> SchedulesPublic:
    """Every schedule of yours with its next tick (runs: read one schedule)."""
    return SchedulesPublic(items=[schedule_public(r) for r in svc.state.schedules.list(tenant)])


@router.get("/{schedule_id}", summary="A schedule and its runs, newest first")
def get_schedule(schedule_id: str, svc: ServicesDep, tenant: TenantDep) -> SchedulePublic:
    """Each run: the tick it was for, the job it submitted and that job's status, or why it did
    not run (skipped under forbid, missed under catchup none, failed at submission)."""
    record = usecase.get_schedule(svc, tenant, schedule_id)
    return schedule_public(record, runs=usecase.runs_view(svc, schedule_id))


@router.post(
    "/{schedule_id}/pause", responses=error_responses(400), summary="Pause a schedule (no tick fires until resumed)"
)
def pause_schedule(schedule_id: str, svc: ServicesDep, tenant: TenantDep) -> SchedulePublic:
    """No tick fires while paused; jobs it already submitted go on."""
    return schedule_public(usecase.pause(svc, tenant, schedule_id))


@router.post("/{schedule_id}/resume", responses=error_responses(400), summary="Resume a schedule from its next tick")
def resume_schedule(schedule_id: str, svc: ServicesDep, tenant: TenantDep) -> SchedulePublic:
    """The ticks that passed while it was paused are not caught up."""
    return schedule_public(usecase.resume(svc, tenant, schedule_id))


@router.delete("/{schedule_id}", status_code=204, summary="Delete a schedule and its runs")
def delete_schedule(schedule_id: str, svc: ServicesDep, tenant: TenantDep) -> Response:
    """Jobs it already submitted are not touched."""
    usecase.delete(svc, tenant, schedule_id)
    return Response(status_code=204)
