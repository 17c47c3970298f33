"""Bodies of ``/v1/schedules``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.examples import examples
from app.api.schemas import JobCreate, WebhookCreate

RUN = {
    "scheduled_for": "2026-12-07T05:00:00Z",
    "job_id": "job_5f0c2a9e1b7d4c3a8e21",
    "status": "finished",
    "outcome": "submitted",
    "reason": None,
    "missed_before": 0,
}
JOB = {
    "kind": "fit", "dataset_id": "sales@latest", "register_as": "churn", "evaluate_on": "holdout@latest",
    "promote": {"alias": "champion", "metric": "accuracy", "min_delta": 0.0},
}  # fmt: skip
SCHEDULE = {
    "id": "sch_3b8e1f6a9c2d5e8b1a4c", "cron": "0 6 * * 1", "timezone": "Europe/Paris", "job": JOB,
    "concurrency": "forbid", "catchup": "last", "paused": False, "created_at": "2026-12-01T09:12:00Z",
    "next_run_at": "2026-12-14T05:00:00Z", "last_job_id": "job_5f0c2a9e1b7d4c3a8e21", "runs": [RUN],
}  # fmt: skip


class ScheduleCreate(BaseModel):
    """Submit ``job`` on every tick of ``cron`` (five fields: minute hour day-of-month month
    day-of-week) in ``timezone``."""

    model_config = ConfigDict(extra="forbid", strict=True)  # a request: JSON false is no number
    cron: str = Field(min_length=9, max_length=200, examples=["0 6 * * 1"])
    timezone: str = Field("UTC", max_length=100, examples=["Europe/Paris"])
    job: JobCreate = Field(description="A fit or predict body, as POST /v1/jobs takes; references such as "
                           "sales@latest are resolved at each run.")  # fmt: skip
    concurrency: Literal["forbid", "allow"] = Field(
        "forbid", description="forbid: skip a tick while the previous run's job is queued or running."
    )
    catchup: Literal["none", "last"] = Field(
        "last",
        description="After an outage (a tick more than 60 s late): last runs the most recent missed tick, none "
        "runs none; ticks before the most recent never run. Default last, as a Kubernetes CronJob without a "
        "deadline: a worker restart at the tick must not lose the week's retraining.",
    )
    webhook: WebhookCreate | None = Field(None, description="Notified of failed runs and of alias moves its "
                                          "fits make (if webhooks are enabled).")  # fmt: skip


class ScheduleRunPublic(BaseModel):
    """One tick: when it was due, the job it submitted and that job's status, or why it did not run."""

    model_config = ConfigDict(extra="allow")
    scheduled_for: datetime
    job_id: str | None = None
    status: str = Field(description="The job's status, or: skipped (forbid), missed (catchup none), failed "
                        "(refused at submission), firing (being submitted).")  # fmt: skip
    outcome: str = Field(description="submitted, skipped, missed, failed or firing.")
    reason: str | None = None
    missed_before: int = Field(0, description="Ticks missed (never run) before this one, after an outage.")


class SchedulePublic(BaseModel):
    """A schedule, and its runs newest first when read alone."""

    model_config = ConfigDict(json_schema_extra=examples(SCHEDULE))

    id: str
    cron: str
    timezone: str
    job: dict[str, Any]
    concurrency: str
    catchup: str
    paused: bool
    created_at: datetime
    next_run_at: datetime | None = Field(description="The next tick (none while paused).")
    last_job_id: str | None = None
    webhook_url: str | None = None
    runs: list[ScheduleRunPublic] | None = None


class SchedulesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples({"items": [{**SCHEDULE, "runs": None}]}))
    items: list[SchedulePublic]
