"""Answers of the history routes (``/v1/history``): the dashboard's list of past and present jobs
and its page per job."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api import examples as ex
from app.api.schemas import EventPublic, JobPublic

HISTORY_ITEM = {**ex.JOB, "tenant": "acme"}
TIMINGS = {"waited_s": 1.0, "ran_s": 2.0, "phases": {"read_s": 0.1, "train_s": 1.8}}
LINKS = {"dataset": f"/v1/datasets/{ex.DATASET_ID}", "model": f"/v1/models/{ex.FIT_ID}"}


class HistoryItem(JobPublic):
    """A job as the history lists it: the job, and whose it is (an admin sees every tenant's)."""

    model_config = ConfigDict(json_schema_extra=ex.examples(HISTORY_ITEM))

    tenant: str


class HistoryPage(BaseModel):
    """Recent jobs, newest first; pass ``next_cursor`` as ``cursor`` for older ones."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.listing(HISTORY_ITEM)))

    items: list[HistoryItem]
    next_cursor: str | None = None


class JobRecord(BaseModel):
    """One job in full: the job (status, steps, parameters, result, error), its timings, its
    timeline and where its dataset and model are."""

    model_config = ConfigDict(
        json_schema_extra=ex.examples(
            {"job": HISTORY_ITEM, "timings": TIMINGS, "events": ex.EVENTS["items"], "links": LINKS}
        )
    )

    job: HistoryItem
    timings: dict[str, Any] = Field(description="waited_s, ran_s, and the worker's own phases (seconds).")
    events: list[EventPublic]
    links: dict[str, str] = Field(description="API paths of the job's dataset and (a finished fit's) model.")
