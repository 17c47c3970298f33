"""The words every layer speaks: a job, its status, its lane, a dataset and an error.

One definition each, from the route to the worker: the API, the state store, the worker, the
CLI, the client and the benchmarks import them from here. This module imports nothing heavy (no
pydantic, no ML), so the client and the API can both use it.
"""

from __future__ import annotations

import dataclasses
import json
import json.scanner
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypedDict

Lane = Literal["small", "large", "gpu"]
LANES: tuple[Lane, ...] = ("small", "large", "gpu")

# A stopping worker's time after its job's grace period (worker_shutdown_timeout_s) to hand the
# job back and exit, broker or not; the pod's terminationGracePeriodSeconds must cover both.
WORKER_STOP_MARGIN_S = 10.0
JobKind = Literal["fit", "predict"]
DatasetState = Literal["awaiting_upload", "uploaded", "invalid"]


class JobStatus(StrEnum):
    """Where a job is in its life: ``queued → started → finished | failed | canceled``.

    The values are the seed's status words, which the legacy routes report unchanged."""

    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        """The job has ended and will never change again."""
        return self in TERMINAL_STATUSES

    @property
    def active(self) -> bool:
        """The job holds a queued or running slot."""
        return self in ACTIVE_STATUSES


TERMINAL_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED})
ACTIVE_STATUSES: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.STARTED)


def is_terminal(status: str) -> bool:
    """True for a status word of an ended job (for callers holding JSON, like the client)."""
    return JobStatus(status).terminal


class ErrorInfo(TypedDict):
    """Why a job failed or a dataset is invalid: a stable code, a message, what to do, and
    whether trying again can help. The same shape as the API's error envelope."""

    code: str
    message: str
    hint: str | None
    retryable: bool


StepName = Literal["prepare", "model"]


class Step(TypedDict):
    """One step of a two-step job, as kept in its record (``app.usecases.steps`` changes them).

    ``status``: pending (an earlier step runs first), queued, started, finished, skipped (the
    prepared matrix was already in the store), failed, canceled. Times are Unix seconds."""

    name: StepName
    lane: Lane
    status: str
    device: str | None
    started_at: float | None
    ended_at: float | None
    attempts: int


def new_id(prefix: str) -> str:
    """A short random id with a readable prefix (``ds_…``, ``job_…``)."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass(slots=True)
class Job:
    """A job record as kept in the broker (one hash field per attribute, JSON-encoded).

    Times are Unix seconds. ``result`` is the ML summary of a finished job (for a fit: rows,
    classes, features, the model's digest...). ``version`` counts status changes.
    """

    id: str
    tenant: str
    kind: JobKind
    lane: Lane
    status: JobStatus
    dataset_id: str = ""
    model_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    queued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    phase: str | None = None
    progress: float | None = None
    attempts: int = 0
    version: int = 0
    worker: str | None = None
    message: str | None = None
    error: ErrorInfo | None = None
    result: dict[str, Any] | None = None
    cancel_requested: bool = False
    dataset_bytes: int | None = None
    dataset_rows: int | None = None
    dataset_etag: str | None = None
    time_limit_s: float | None = None
    dedup_key: str | None = None
    # The model family (``hgb``, ``xgboost``); a predict's is its model's.
    model: str = "hgb"
    # A two-step job's steps (``app.usecases.steps``), in order; empty for a one-call job.
    steps: list[Step] = field(default_factory=list)
    # Where a two-step job's prepared matrix lives in the store (its cache key, under the tenant).
    prepared_key: str | None = None
    # Short jobs first: the seconds its estimated cost (rows x features) adds to its queue time
    # when its lane orders waiting work (``queue_score``); 0 for the cheapest.
    queue_handicap_s: float = 0.0
    # Its estimated cost: rows x columns of its dataset, read from the Parquet footer.
    cost_cells: int | None = None
    # How long it should run, from finished jobs like it (app.usecases.estimates); None at first.
    estimate: dict[str, Any] | None = None
    # A job waiting out a retry's back-off is not picked before this Unix time.
    not_before: float | None = None
    # The column a fit learns (the legacy routes always use ``y``).
    target: str = "y"
    # What a fit learns, ``classification`` or ``regression`` (``ml.tasks``), decided at submission,
    # and why: ``asked for``, or the inference rule's words; a predict's is its model's.
    task: str = "classification"
    task_reason: str | None = None
    # A fit's evaluation dataset (scored after training) and the version of it checked at submission.
    evaluate_on: str | None = None
    evaluate_etag: str | None = None
    evaluate_bytes: int | None = None
    # A predict's input columns copied next to the predictions, and whether it writes the classes'
    # probabilities (the legacy routes' predictions are the label column only).
    passthrough: list[str] = field(default_factory=list)
    probabilities: bool = False
    # When the fit's model file was deleted (the record stays, for the history); None: it exists.
    model_deleted_at: float | None = None
    # The cores the running attempt took from its worker's pool (app.jobs.cpu_pool).
    threads: int | None = None
    # Where to POST when the job ends, signed with the secret (never shown); see app/webhooks/delivery.py.
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_outcome: str | None = None
    # The references a job was submitted with (``sales@latest``, ``churn@champion``); its
    # ``dataset_id`` and ``model_id`` are what they resolved to then.
    dataset_ref: str | None = None
    model_ref: str | None = None
    # A registered fit's request (app/usecases/registration.py): name, evaluation dataset (id,
    # reference, pinned version), promotion rule, and who asked.
    register: dict[str, Any] | None = None
    # The engine that runs the job: None (one job process) or "dask" (app/engines/).
    engine: str | None = None

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Job:
        """A job from decoded record fields; fields this version does not know are ignored."""
        known = {k: v for k, v in fields.items() if k in _JOB_FIELDS and v is not None}
        known["status"] = JobStatus(known["status"])
        return cls(**known)

    def to_fields(self) -> dict[str, Any]:
        """The record's fields as plain JSON values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def step(self) -> str | None:
        """The step a two-step job is in (logs and metrics tag with it); None for a one-call job."""
        return next((s["name"] for s in self.steps if s["status"] not in ("finished", "skipped")), None)

    @property
    def enqueued_at(self) -> float:
        """When the job was (last) put in its queue; the legacy routes' ``enqueued_at``."""
        return self.queued_at or self.created_at

    @property
    def queue_score(self) -> float:
        """Its order in its lane's queue, lowest first: queue time plus cost handicap (the
        ``place`` function of ``app.state.scripts`` computes the same)."""
        return self.enqueued_at + self.queue_handicap_s


@dataclass(slots=True)
class Dataset:
    """A dataset record: what the store held when it was last looked at."""

    id: str
    tenant: str
    state: DatasetState
    created_at: float
    name: str | None = None
    size_bytes: int | None = None
    etag: str | None = None
    rows: int | None = None
    columns: list[dict[str, str]] | None = None
    has_target: bool | None = None
    problem: ErrorInfo | None = None
    # The API key that got the upload URL, and when that URL expires (app/tenancy/revocation.py).
    key_id: str | None = None
    upload_expires_at: float | None = None
    # Its version under its name (1, 2, …: each upload under a name is the next); None when unnamed.
    version: int | None = None
    # A dataset in parts (app/usecases/parts.py): how many, and each part's ETag and size when checked.
    parts: int | None = None
    part_etags: list[str] | None = None
    part_sizes: list[int] | None = None

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Dataset:
        return cls(**{k: v for k, v in fields.items() if k in _DATASET_FIELDS})

    def to_fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


_JOB_FIELDS = frozenset(f.name for f in dataclasses.fields(Job))
_DATASET_FIELDS = frozenset(f.name for f in dataclasses.fields(Dataset))


def encode_fields(fields: dict[str, Any]) -> dict[str, str]:
    """Record fields as the broker stores them: one JSON document per hash field."""
    return {k: json.dumps(v, default=str) for k, v in fields.items()}


# The C scanner behind ``json.loads``, called directly: a job record is ~50 short JSON documents,
# and ``json.loads``'s per-call wrapper (type checks, two whitespace regex matches) cost about 3x
# the parse itself; decoding records was the largest app-side cost of GET /v1/jobs/{id}.
_scan_once = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    """``json.loads(text)``, the same values, without its per-call overhead in the common case."""
    if type(text) is not str:  # bytes from a client without decode_responses: json decodes them
        return json.loads(text)
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:  # not a JSON value at 0 (leading whitespace, or malformed): json's answer
        return json.loads(text)
    # Anything after the value (whitespace, or junk json.loads refuses): json's answer too.
    return value if end == len(text) else json.loads(text)


def decode_fields(raw: dict[str, str | None]) -> dict[str, Any]:
    """The inverse of ``encode_fields``; fields read but absent (None) are left out."""
    return {k: _loads(v) for k, v in raw.items() if v is not None}
