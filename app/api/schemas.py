"""Request and response bodies of the ``/v1`` API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.api import examples as ex
from app.api.estimate_schemas import EstimatePublic, ExpectedStartPublic
from app.api.param_schemas import PARAMS_BY_MODEL, FitParams, ModelName, XGBoostParams
from app.api.registry_schemas import JobReferences, RegistrationFields
from app.core.domain import JobKind, JobStatus
from ml.suggest import did_you_mean


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a message for people, and what to do about it."""

    code: str = Field(examples=["dataset.missing_target"])
    message: str
    hint: str | None = None
    retryable: bool = False


class ErrorEnvelope(BaseModel):
    """Every error response of every route."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.ERROR))

    error: ErrorBody


class DatasetCreate(BaseModel):
    """Optional metadata for a new dataset."""

    model_config = ConfigDict(extra="forbid", strict=True)  # a request: JSON false is no number
    name: str | None = Field(None, max_length=200)
    parts: int | None = Field(
        None, ge=1, description="Upload the dataset as this many Parquet files of one schema (`upload_forms`)."
    )


class ColumnPublic(BaseModel):
    name: str
    type: str
    kind: str


class DatasetPublic(BaseModel):
    """A dataset: where it is in its life (awaiting_upload, uploaded, invalid) and what it holds."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.DATASET))

    id: str
    name: str | None = None
    version: int | None = Field(
        None,
        description="Its version under its name (each upload under a name is the next); refer to it as "
        "name@version, or name@latest for the newest ready one.",
    )
    state: str
    created_at: datetime
    size_bytes: int | None = None
    rows: int | None = None
    columns: list[ColumnPublic] | None = None
    problem: ErrorBody | None = None
    parts: int | None = Field(None, description="A dataset in parts: how many (rows and size are their sums).")


class UploadForm(BaseModel):
    """A size-bounded upload: POST ``fields`` then the file (as the last field, ``file``) as
    multipart/form-data to ``url``; the store refuses a file over ``max_bytes``."""

    url: str
    fields: dict[str, str]
    max_bytes: int


class DatasetCreated(DatasetPublic):
    """A new dataset and where to upload its Parquet bytes: ``upload_form`` (size-bounded by the
    store) or ``upload_url`` (a PUT; null when the deployment hands out only bounded uploads)."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.DATASET_CREATED))

    upload_url: str | None
    upload_form: UploadForm | None = None
    upload_forms: list[UploadForm] | None = Field(None, description="A dataset in parts: one form per part, in order.")
    upload_expires_at: datetime


class DatasetsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.listing(ex.DATASET)))

    items: list[DatasetPublic]
    next_cursor: str | None = None


class WebhookCreate(BaseModel):
    """Where to POST when the job ends, and the secret its signature is made with (never shown)."""

    model_config = ConfigDict(extra="forbid", strict=True)  # a request: JSON false is no number
    url: str = Field(max_length=2000, examples=["https://example.com/hooks/tabjob"])
    secret: str = Field(
        min_length=16, max_length=200, description="Signs each notification (HMAC-SHA256); keep it to verify them."
    )


class JobCreate(RegistrationFields):
    """A fit (dataset with a target column) or a predict (dataset plus a finished fit job as the model)."""

    # strict, as every request body: JSON false is no number (lax mode takes it as 0)
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra=ex.examples(ex.FIT_REQUEST, ex.PREDICT_REQUEST)
    )
    kind: JobKind
    dataset_id: str = Field(min_length=1, max_length=260, description="A dataset id, or name@version / name@latest.")
    model_id: str | None = Field(None, min_length=1, max_length=260,
                                 description="A finished fit's job id, or name@version / name@latest / name@alias "
                                 "of a registered model.")  # fmt: skip
    model: ModelName | None = Field(
        None,
        description="The model family of a fit: hgb (default; one step on a CPU lane) or xgboost (prepare on a "
        "CPU lane, then the model on the gpu lane). A predict uses its model's family.",
    )
    params: FitParams | XGBoostParams | None = Field(None, description="The model family's parameters.")
    lane: Literal["auto", "small", "large", "gpu"] = "auto"
    target: str | None = Field(None, min_length=1, max_length=200, description="A fit's column to learn (default y).")
    task: Literal["classification", "regression"] | None = Field(
        None, description="A fit's task; inferred if left out (docs/models.md), reported as task_reason."
    )
    passthrough: list[str] | None = Field(None, max_length=1000, description="A predict: input columns copied next "
                                          "to the predictions, in input order.")  # fmt: skip
    webhook: WebhookCreate | None = Field(None, description="Notify this URL when the job ends (if enabled).")
    engine: Literal["dask"] | None = Field(
        None, description="Run on the distributed engine (xgboost only; docs/distributed.md). Unset: one worker, "
        "or Dask when the dataset is in parts or larger than one worker's memory budget.",
    )  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _params_of_the_family(cls, data: Any) -> Any:
        """Check ``params`` against the family's own parameters (unknown names refused)."""
        if isinstance(data, dict) and isinstance(data.get("params"), dict):
            model = data.get("model")  # any JSON value here: the field's own check refuses a bad one
            family = model if isinstance(model, str) and model in PARAMS_BY_MODEL else "hgb"
            known = PARAMS_BY_MODEL[family].model_fields
            for name in data["params"]:
                if name not in known:
                    raise ValueError(
                        f"params: '{name}' is not a parameter of model '{family}'.{did_you_mean(str(name), known)} "
                        f"Its parameters: {', '.join(known)} (`tabjob fit --help` shows their ranges)"
                    )
            data = {**data, "params": PARAMS_BY_MODEL[family].model_validate(data["params"])}
        return data

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


class WebhookPublic(BaseModel):
    """The job's webhook: where it is sent, and how the last delivery went (None until it ends)."""

    url: str
    outcome: str | None = None


class StepPublic(BaseModel):
    """One step of a two-step job (``prepare`` on a CPU lane, ``model`` on the gpu lane)."""

    name: str
    lane: str
    status: str = Field(description="pending, queued, started, finished, skipped (prepared matrix reused), failed, "
                        "canceled")  # fmt: skip
    device: str | None = Field(None, description="Where the step ran: cpu or cuda.")
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attempts: int = 0


class JobPublic(JobReferences):
    """A job as its owner sees it."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.JOB))

    id: str
    kind: str
    status: JobStatus
    model: str = Field("hgb", description="The model family.")
    steps: list[StepPublic] = Field([], description="A two-step job's steps, in order; empty for one-step jobs.")
    lane: str
    phase: str | None = None
    progress: float | None = None
    attempts: int = 0
    dataset_id: str
    model_id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
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
    webhook: WebhookPublic | None = None
    estimate: EstimatePublic | None = Field(
        None, description="Expected run time from finished jobs like it; None until one of its kind finished."
    )
    expected_start: ExpectedStartPublic | None = Field(
        None, description="A queued job's expected start, from the jobs ahead and their estimates; None otherwise."
    )
    task: str | None = Field(None, description="classification or regression (a predict: its model's).")
    task_reason: str | None = Field(None, description="`asked for`, or why the task was inferred from the target.")
    evaluate_on: str | None = None
    passthrough: list[str] = Field(default_factory=list)


class LegacyStatus(BaseModel):
    """``GET /status`` as the seed's clients read it: status words and Unix-second times."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.LEGACY_STATUS))

    id: str
    status: JobStatus
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
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.listing(ex.JOB)))

    items: list[JobPublic]
    next_cursor: str | None = None


class EventPublic(BaseModel):
    seq: int
    at: datetime
    type: str
    message: str | None = None
    phase: str | None = None
    progress: float | None = None
    step: str | None = Field(None, description="The step of a two-step job the event belongs to.")


class EventsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.EVENTS))

    items: list[EventPublic]
    next_after: int


class DownloadPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.DOWNLOAD))

    url: str
    expires_at: datetime
    urls: list[str] | None = Field(None, description="A prediction written in parts (Dask): every part, in order.")
