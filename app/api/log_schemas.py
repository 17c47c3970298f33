"""The answers of ``GET /v1/jobs/{id}/logs``: a job's log lines, kept in the object store."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.api import examples as ex

LINE = {
    "time": "2026-12-07T06:40:02.267Z", "level": "info", "message": "training: Training on 3,000 rows x 20 features.",
    "attempt": 1, "step": "fit", "source": "job", "logger": "tabjob.job", "exc": None, "truncated": False,
    "cursor": "1.3",
}  # fmt: skip


class LogLinePublic(BaseModel):
    """One line of a job's log, from its worker or its job process (the model's own output included)."""

    model_config = ConfigDict(json_schema_extra=ex.examples(LINE))

    time: datetime | None = Field(description="When it was logged (UTC).")
    level: str = Field(description="debug, info, warning, error or critical.")
    message: str
    attempt: int = Field(description="The attempt it belongs to (1 for the first run; a retry counts up).")
    step: str | None = Field(None, description="fit, predict, or the step of a two-step job (prepare, model).")
    source: str = Field(description="`worker` (the worker running the job) or `job` (its job process).")
    logger: str | None = Field(None, description="The Python logger that wrote it.")
    exc: str | None = Field(None, description="The traceback, when the line reports an exception.")
    truncated: bool = Field(False, description="This line says the job's log reached its size cap.")
    cursor: str = Field(description="Pass as `since` to get the lines after this one.")


class LogsPublic(BaseModel):
    """A page of a job's log, oldest first."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"items": [LINE], "next_since": "1.3", "complete": True}))

    items: list[LogLinePublic]
    next_since: str | None = Field(description="Pass as `since` for the lines after this page (None: none yet).")
    complete: bool = Field(description="The job has ended and every line of it is here: no more will come.")
