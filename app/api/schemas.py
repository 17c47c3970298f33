"""Request and response bodies of the ``/v1`` API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ml.params import TUNABLE_PARAMS


def ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a message for people, and what to do about it."""

    code: str = Field(examples=["dataset.missing_target"])
    message: str
    hint: str | None = None
    retryable: bool = False


class ErrorEnvelope(BaseModel):
    """Every error response of every route."""

    error: ErrorBody


class DatasetCreate(BaseModel):
    """Optional metadata for a new dataset."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)


class ColumnPublic(BaseModel):
    name: str
    type: str
    kind: str


class DatasetPublic(BaseModel):
    """A dataset: where it is in its life (awaiting_upload, uploaded, invalid) and what it holds."""

    id: str
    name: str | None = None
    state: str
    created_at: datetime
    size_bytes: int | None = None
    rows: int | None = None
    columns: list[ColumnPublic] | None = None
    problem: ErrorBody | None = None


class DatasetCreated(DatasetPublic):
    """A new dataset and the URL to PUT its Parquet bytes to."""

    upload_url: str
    upload_expires_at: datetime


class DatasetsPublic(BaseModel):
    items: list[DatasetPublic]
    next_cursor: str | None = None


class FitParams(BaseModel):
    """HistGradientBoostingClassifier parameters a fit may set; all optional."""

    model_config = ConfigDict(extra="forbid")
    learning_rate: float | None = Field(None, gt=0, le=10)
    max_iter: int | None = Field(None, ge=1, le=10_000)
    max_leaf_nodes: int | None = Field(None, ge=2, le=65_536)
    max_depth: int | None = Field(None, ge=1, le=1_000)
    min_samples_leaf: int | None = Field(None, ge=1)
    l2_regularization: float | None = Field(None, ge=0)
    max_bins: int | None = Field(None, ge=2, le=255)
    early_stopping: bool | None = None
    random_state: int | None = Field(None, ge=0, le=2**32 - 1)

    def chosen(self) -> dict[str, Any]:
        values = self.model_dump(exclude_none=True)
        assert set(values) <= set(TUNABLE_PARAMS)
        return values


class JobCreate(BaseModel):
    """A fit (dataset with ``y``) or a predict (dataset plus a finished fit job as the model)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["fit", "predict"]
    dataset_id: str = Field(min_length=1, max_length=100)
    model_id: str | None = Field(None, min_length=1, max_length=100)
    params: FitParams | None = None
    lane: Literal["auto", "small", "large", "gpu"] = "auto"

    @field_validator("model_id")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        return v.strip() if v else v


class QueueInfo(BaseModel):
    """Why a queued job is waiting."""

    position: int | None
    lane: str
    lane_queued: int
    lane_running: int
    lane_workers: int
    reason: str


class JobPublic(BaseModel):
    """A job as its owner sees it."""

    id: str
    kind: str
    status: Literal["queued", "started", "finished", "failed", "canceled"]
    lane: str
    phase: str | None = None
    progress: float | None = None
    attempts: int = 0
    dataset_id: str
    model_id: str | None = None
    params: dict[str, Any] = {}
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    cancel_requested: bool = False
    error: ErrorBody | None = None
    result: dict[str, Any] | None = None
    queue: QueueInfo | None = None
    deduplicated: bool = Field(
        False, description="True when an identical earlier fit was returned instead of training again."
    )


class LegacyStatus(BaseModel):
    """``GET /status`` as the seed's clients read it: status words and Unix-second times."""

    id: str
    status: Literal["queued", "started", "finished", "failed", "canceled"]
    enqueued_at: float
    started_at: float | None = None
    ended_at: float | None = None
    kind: str
    lane: str
    phase: str | None = None
    progress: float | None = None
    attempts: int = 0
    error: ErrorBody | None = None


class JobsPublic(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None = None


class EventPublic(BaseModel):
    seq: int
    at: datetime
    type: str
    message: str | None = None
    phase: str | None = None
    progress: float | None = None


class EventsPublic(BaseModel):
    items: list[EventPublic]
    next_after: int


class DownloadPublic(BaseModel):
    url: str
    expires_at: datetime


def job_public(job: dict[str, Any], *, queue: dict[str, Any] | None = None, deduplicated: bool = False) -> JobPublic:
    result = job.get("result")
    if result and job["kind"] == "fit":
        result = {
            k: result[k]
            for k in ("classes", "rows", "iterations", "params", "notes", "features", "timings")
            if k in result
        }
    return JobPublic(
        id=job["id"],
        kind=job["kind"],
        status=job["status"],
        lane=job["lane"],
        phase=job.get("phase"),
        progress=job.get("progress"),
        attempts=int(job.get("attempts") or 0),
        dataset_id=job["dataset_id"],
        model_id=job.get("model_id"),
        params=job.get("params") or {},
        created_at=ts(job["created_at"]),  # type: ignore[arg-type]
        started_at=ts(job.get("started_at")),
        ended_at=ts(job.get("ended_at")),
        cancel_requested=bool(job.get("cancel_requested")),
        error=job.get("error"),
        result=result,
        queue=queue,
        deduplicated=deduplicated,
    )


def dataset_public(record: dict[str, Any]) -> DatasetPublic:
    return DatasetPublic(
        id=record["id"],
        name=record.get("name"),
        state=record["state"],
        created_at=ts(record["created_at"]),  # type: ignore[arg-type]
        size_bytes=record.get("size_bytes"),
        rows=record.get("rows"),
        columns=record.get("columns"),
        problem=record.get("problem"),
    )
