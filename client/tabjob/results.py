"""Typed results of the API: what each ``/v1`` answer means, as dataclasses.

The HTTP contract (docs/api.md) is the shared vocabulary: each class reads the JSON the API
sends and keeps it whole in ``raw`` (``to_dict()``), so a field added by a newer server is never
lost, only not yet typed here. Times are timezone-aware ``datetime`` objects (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from tabjob.job_parts import Estimate, ExpectedStart, Step, Webhook

T = TypeVar("T")

JOB_STATUSES = ("queued", "started", "finished", "failed", "canceled")
ENDED = ("finished", "failed", "canceled")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class ErrorInfo:
    """Why a job failed or a dataset is invalid: the same fields as the API's error envelope."""

    code: str
    message: str
    hint: str | None = None
    retryable: bool = False

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> ErrorInfo | None:
        if not data:
            return None
        return cls(data["code"], data.get("message", ""), data.get("hint"), bool(data.get("retryable")))


@dataclass(frozen=True)
class Column:
    """One column of a dataset: its name, Arrow type, and how the model reads it (``kind``)."""

    name: str
    type: str
    kind: str


@dataclass(frozen=True)
class Dataset:
    """An uploaded (or awaited) Parquet file.

    ``state`` is ``awaiting_upload``, ``uploaded`` (checked: ``rows`` and ``columns`` are known)
    or ``invalid`` (``problem`` says why). ``upload_form`` (a size-bounded POST: its ``url`` and
    ``fields``) and ``upload_url`` (a PUT, where the service allows one) are set only on a freshly
    created dataset.
    """

    id: str
    state: str
    created_at: datetime
    name: str | None = None
    size_bytes: int | None = None
    rows: int | None = None
    columns: list[Column] | None = None
    problem: ErrorInfo | None = None
    upload_url: str | None = None
    upload_form: dict[str, Any] | None = None
    upload_expires_at: datetime | None = None
    version: int | None = None
    parts: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Dataset:
        columns = data.get("columns")
        return cls(
            id=data["id"],
            state=data["state"],
            created_at=_time(data["created_at"]),  # type: ignore[arg-type]
            name=data.get("name"),
            version=data.get("version"),
            parts=data.get("parts"),
            size_bytes=data.get("size_bytes"),
            rows=data.get("rows"),
            columns=[Column(c["name"], c["type"], c["kind"]) for c in columns] if columns is not None else None,
            problem=ErrorInfo.from_api(data.get("problem")),
            upload_url=data.get("upload_url"),
            upload_form=data.get("upload_form"),
            upload_expires_at=_time(data.get("upload_expires_at")),
            raw=data,
        )

    def to_dict(self) -> dict[str, Any]:
        """The dataset as the API sent it (JSON-ready)."""
        return dict(self.raw)


@dataclass(frozen=True)
class QueueInfo:
    """Why a queued job waits: its place in its lane and the lane's load, said in ``reason``."""

    position: int | None
    lane: str
    reason: str
    lane_queued: int = 0
    lane_running: int = 0
    lane_workers: int = 0

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> QueueInfo | None:
        if not data:
            return None
        return cls(
            position=data.get("position"),
            lane=data["lane"],
            reason=data.get("reason", ""),
            lane_queued=data.get("lane_queued", 0),
            lane_running=data.get("lane_running", 0),
            lane_workers=data.get("lane_workers", 0),
        )


@dataclass(frozen=True)
class Job:
    """A fit or predict job. A finished fit's id is the model id a predict takes.

    ``status`` is one of ``queued``, ``started``, ``finished``, ``failed``, ``canceled``;
    ``progress`` is a fraction in [0, 1] when the current ``phase`` has one, else None.
    ``result`` is what the job produced (for a fit: classes, rows, iterations, features...).
    ``model`` is a fit's model family (``hgb``, ``xgboost``); ``steps`` the steps of a job that
    runs in steps (else empty); ``webhook`` where its end is notified. ``dataset_ref`` and
    ``model_ref`` are the references the job was submitted with (``sales@latest``,
    ``churn@champion``) where ``dataset_id``/``model_id`` are what they resolved to;
    ``registration`` is a registered fit's name, evaluation data and promotion rule.
    ``estimate`` is how long it should run; ``expected_start`` when a queued one should start.
    """

    id: str
    kind: str
    status: str
    lane: str
    dataset_id: str
    created_at: datetime
    model_id: str | None = None
    phase: str | None = None
    progress: float | None = None
    attempts: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    cancel_requested: bool = False
    error: ErrorInfo | None = None
    result: dict[str, Any] | None = None
    queue: QueueInfo | None = None
    deduplicated: bool = False
    model: str | None = None
    steps: list[Step] = field(default_factory=list)
    webhook: Webhook | None = None
    estimate: Estimate | None = None
    expected_start: ExpectedStart | None = None
    dataset_ref: str | None = None
    model_ref: str | None = None
    registration: dict[str, Any] | None = None
    task: str | None = None
    task_reason: str | None = None
    evaluate_on: str | None = None
    passthrough: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Job:
        return cls(
            id=data["id"],
            kind=data["kind"],
            status=data["status"],
            lane=data["lane"],
            dataset_id=data["dataset_id"],
            created_at=_time(data["created_at"]),  # type: ignore[arg-type]
            model_id=data.get("model_id"),
            phase=data.get("phase"),
            progress=data.get("progress"),
            attempts=int(data.get("attempts") or 0),
            params=data.get("params") or {},
            started_at=_time(data.get("started_at")),
            ended_at=_time(data.get("ended_at")),
            cancel_requested=bool(data.get("cancel_requested")),
            error=ErrorInfo.from_api(data.get("error")),
            result=data.get("result"),
            queue=QueueInfo.from_api(data.get("queue")),
            deduplicated=bool(data.get("deduplicated")),
            model=data.get("model"),
            steps=[Step.from_api(step) for step in data.get("steps") or []],
            webhook=Webhook.from_api(data.get("webhook")),
            estimate=Estimate.from_api(data.get("estimate")),
            expected_start=ExpectedStart.from_api(data.get("expected_start")),
            dataset_ref=data.get("dataset_ref"),
            model_ref=data.get("model_ref"),
            registration=data.get("registration"),
            task=data.get("task"),
            task_reason=data.get("task_reason"),
            evaluate_on=data.get("evaluate_on"),
            passthrough=list(data.get("passthrough") or []),
            raw=data,
        )

    @property
    def validation(self) -> Any:
        """A finished fit's scores (``tabjob.Validation``: every metric of its task on the held-out
        rows, and on its evaluation dataset); None for other jobs."""
        from tabjob.model_results import Validation

        return Validation.from_api((self.result or {}).get("validation")) if self.kind == "fit" else None

    @property
    def ended(self) -> bool:
        """True once the job is finished, failed or canceled (its status no longer changes)."""
        return self.status in ENDED

    def to_dict(self) -> dict[str, Any]:
        """The job as the API sent it (JSON-ready)."""
        return dict(self.raw)


@dataclass(frozen=True)
class JobEvent:
    """One entry of a job's timeline: ``type`` (queued, started, progress, retrying, finished...)."""

    seq: int
    at: datetime
    type: str
    message: str | None = None
    phase: str | None = None
    progress: float | None = None
    step: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> JobEvent:
        return cls(
            seq=data["seq"],
            at=_time(data["at"]),  # type: ignore[arg-type]
            type=data["type"],
            message=data.get("message"),
            phase=data.get("phase"),
            progress=data.get("progress"),
            step=data.get("step"),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class EventPage:
    """Events after a position; pass ``next_after`` as ``after`` to get only newer ones."""

    items: list[JobEvent]
    next_after: int

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
