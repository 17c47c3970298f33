"""How records are shown to API clients: the public models, and why a queued job waits."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from app.api.model_schemas import EvaluationPublic, FeaturePublic, ModelPublic, ValidationPublic
from app.api.schemas import DatasetPublic, JobPublic, QueueInfo, StepPublic, WebhookPublic
from app.core.domain import Dataset, Job, is_terminal
from app.core.settings import Settings
from app.state import Waiting
from app.usecases.queueing import queue_view
from app.usecases.steps import shown

# What a fit's result shows its owner (the model's digest and paths stay internal).
FIT_RESULT_FIELDS = (
    "classes", "rows", "iterations", "params", "notes", "features", "timings", "target", "family", "device",
    "task", "task_reason", "target_range", "feature_types", "estimator_params",
    "engine", "parts", "worker_peak_rss_bytes",
)  # fmt: skip
# What the worker keeps for itself: the load the job ran under (cores wait, run-queue wait), which
# the duration estimates learn from (app.usecases.estimates).
INTERNAL_RESULT_FIELDS = ("load",)
NO_HELD_OUT_ROWS = (
    "early stopping was off (it is on by default above 10,000 rows): no rows were held out; "
    "fit with early_stopping=true to hold out 10% and get a score"
)


def ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def validation(result: dict[str, Any], evaluate_on: str | None = None) -> ValidationPublic:
    """The validation scores of a fit's result (every metric of its task as a key), saying which
    rows they were measured on, with the evaluation dataset's beside them."""
    metric = "r2" if result.get("task") == "regression" else "accuracy"
    evaluation = result.get("evaluation")
    extra: dict[str, Any] = {}
    if evaluation:
        extra["evaluation"] = EvaluationPublic(
            dataset_id=evaluate_on or "", rows=evaluation["rows"], notes=evaluation.get("notes") or [],
            **(evaluation.get("metrics") or {}),
        )  # fmt: skip
    score = result.get("validation_score")
    if score is None:
        return ValidationPublic(score=None, metric=metric, split="none", note=NO_HELD_OUT_ROWS, **extra)
    return ValidationPublic(
        score=score, metric=metric, split="early_stopping", rows=result.get("validation_rows") or 0,
        **(result.get("validation_metrics") or {}), **extra,
    )  # fmt: skip


def shown_validation(scores: ValidationPublic) -> dict[str, Any]:
    """The validation as a job's result shows it: every metric key (None where undefined on the
    rows), without an empty note or evaluation."""
    shown = scores.model_dump()
    for key in ("note", "evaluation"):
        if shown.get(key) is None:
            shown.pop(key, None)
    return shown


def duration_s(job: Job) -> float | None:
    """How long the job ran (its last attempt), in seconds."""
    return round(job.ended_at - job.started_at, 3) if job.ended_at and job.started_at else None


def fit_result(job: Job) -> dict[str, Any]:
    """A finished fit's result as its owner sees it: the facts, the validation score, duration, size."""
    result = job.result or {}
    shown = {k: result[k] for k in FIT_RESULT_FIELDS if k in result}
    shown.setdefault("target", job.target)
    shown.update(
        validation=shown_validation(validation(result, job.evaluate_on)),
        duration_s=duration_s(job),
        model_bytes=result.get("model_bytes"),
    )
    if job.model_deleted_at is not None:
        shown["model_deleted_at"] = ts(job.model_deleted_at)
    if "registry" in result:  # a registered fit: its version and the promotion decided in the job
        shown["registry"] = result["registry"]
    return shown


def job_public(
    job: Job,
    *,
    queue: QueueInfo | None = None,
    deduplicated: bool = False,
    expected_start: dict[str, Any] | None = None,
) -> JobPublic:
    result = job.result
    if result and job.kind == "fit":
        result = fit_result(job)
    elif result:
        result = {k: v for k, v in result.items() if k not in INTERNAL_RESULT_FIELDS}
    webhook = WebhookPublic(url=job.webhook_url, outcome=job.webhook_outcome) if job.webhook_url else None
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=job.status,
        model=job.model,
        steps=[step_public(step) for step in shown(job)],
        lane=job.lane,
        phase=job.phase,
        progress=job.progress,
        attempts=job.attempts,
        dataset_id=job.dataset_id,
        model_id=job.model_id,
        params=job.params,
        created_at=ts(job.created_at),  # type: ignore[arg-type]
        started_at=ts(job.started_at),
        ended_at=ts(job.ended_at),
        cancel_requested=job.cancel_requested,
        error=job.error,  # type: ignore[arg-type]
        result=result,
        queue=queue,
        deduplicated=deduplicated,
        webhook=webhook,
        estimate=job.estimate,  # type: ignore[arg-type]
        expected_start=expected_start,  # type: ignore[arg-type]
        dataset_ref=job.dataset_ref,
        model_ref=job.model_ref,
        registration=registration_public(job),
        task=job.task,
        task_reason=job.task_reason,
        evaluate_on=job.evaluate_on,
        passthrough=job.passthrough,
    )


def registration_public(job: Job) -> dict[str, Any] | None:
    """What a registered fit asked of the registry (its pinned evaluation version stays inside)."""
    if job.register is None:
        return None
    keep = ("name", "evaluate_on", "evaluate_on_ref", "promote", "by")
    return {k: job.register.get(k) for k in keep}


def features(job: Job) -> list[FeaturePublic]:
    """A model's feature columns in training order, with the categories of categorical ones."""
    spec = (job.result or {}).get("features") or {}
    categories = spec.get("categories") or {}
    types = (job.result or {}).get("feature_types") or {}
    return [
        FeaturePublic(name=name, kind=kind, type=types.get(name), categories=categories.get(name))
        for name, kind in (spec.get("columns") or {}).items()
    ]


def model_public(job: Job) -> ModelPublic:
    result = job.result or {}
    return ModelPublic(
        id=job.id,
        dataset_id=job.dataset_id,
        created_at=ts(job.created_at),  # type: ignore[arg-type]
        trained_at=ts(job.ended_at),
        target=result.get("target") or job.target,
        classes=result.get("classes") or [],
        features=features(job),
        rows=result.get("rows"),
        iterations=result.get("iterations"),
        family=result.get("family"),
        validation=validation(result, job.evaluate_on),
        duration_s=duration_s(job),
        size_bytes=result.get("model_bytes"),
        params=result.get("params") or job.params,
        task=result.get("task") or job.task,
        task_reason=result.get("task_reason") or job.task_reason,
        target_range=result.get("target_range"),
        params_used=result.get("estimator_params") or {},
        evaluate_on=job.evaluate_on,
    )


def step_public(step: dict[str, Any]) -> StepPublic:
    times = {"started_at": ts(step.get("started_at")), "ended_at": ts(step.get("ended_at"))}
    return StepPublic(**{**step, **times})


def dataset_public(dataset: Dataset) -> DatasetPublic:
    return DatasetPublic(
        id=dataset.id,
        name=dataset.name,
        version=dataset.version,
        state=dataset.state,
        created_at=ts(dataset.created_at),  # type: ignore[arg-type]
        size_bytes=dataset.size_bytes,
        rows=dataset.rows,
        columns=dataset.columns,  # type: ignore[arg-type]
        problem=dataset.problem,  # type: ignore[arg-type]
        parts=dataset.parts,
    )


def legacy_status(job: Job) -> dict[str, Any]:
    """``GET /status`` as the seed's clients read it: plain JSON values, Unix-second times."""
    return {
        "id": job.id,
        "status": job.status.value,
        "enqueued_at": job.enqueued_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "kind": job.kind,
        "lane": job.lane,
        "phase": job.phase,
        "progress": job.progress,
        "attempts": job.attempts,
        "error": job.error,
    }


def queue_info(settings: Settings, job: Job, waiting: Waiting | None) -> QueueInfo | None:
    """Why a queued job waits, in words, from its waiting context (``state.lanes.job_view``)."""
    view = queue_view(settings, job, waiting)
    return None if view is None else QueueInfo(**view)


class EndedJobBodies:
    """The serialised GET /v1/jobs/{id} body of ended jobs, by tenant and raw job record.

    An ended job's body is a function of its record alone (no queue, no expected start), and
    clients keep polling jobs that ended (a status page, ``wait``): building the typed models and
    decoding ~50 JSON fields again on every poll was about a third of the route's app-side time.
    The key is the record exactly as read (every field, so a later change such as the webhook's
    outcome or the model's deletion is a miss) with the tenant that passed the owner check for
    it, so a hit answers nothing another read would not. Least recently used entries go first.
    Used from the event loop only (the async route), so it needs no lock.

    Bounded in bytes as well as entries: a job's result may be up to
    ``TABJOB_MAX_RESULT_RECORD_BYTES`` (1 MiB), so 1,024 entries of a tenant's largest results
    would hold gigabytes. An entry (record and body) above ``max_entry_bytes`` is never kept, and
    the whole stays under ``max_bytes``: a tenant polling many large jobs costs the API at most that.
    """

    def __init__(
        self, max_entries: int = 1024, max_bytes: int = 16 * 1024**2, max_entry_bytes: int = 64 * 1024
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._bytes = 0
        self._bodies: OrderedDict[tuple[str, tuple[str, ...]], tuple[bytes, int]] = OrderedDict()  # body, size

    def get(self, tenant: str, reply: list) -> bytes | None:
        """The body for a ``job_view`` reply, if an identical one was answered for this tenant."""
        if len(reply) != 1 or not reply[0]:  # queued (waits on live load), or no such job
            return None
        key = (tenant, tuple(reply[0]))
        kept = self._bodies.get(key)
        if kept is None:
            return None
        self._bodies.move_to_end(key)
        return kept[0]

    def put(self, tenant: str, reply: list, job: Job, body: bytes) -> None:
        """Keep ``body``, made for ``reply`` (``job`` is its decoded record), if the job ended."""
        if len(reply) != 1 or not is_terminal(job.status):
            return
        key = (tenant, tuple(reply[0]))
        size = len(body) + sum(len(field) for field in key[1] if isinstance(field, str | bytes))
        if size > self.max_entry_bytes or key in self._bodies:
            return
        self._bodies[key] = (body, size)
        self._bytes += size
        while len(self._bodies) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, dropped) = self._bodies.popitem(last=False)
            self._bytes -= dropped

    @property
    def held_bytes(self) -> int:
        """What the kept entries hold (records and bodies), in bytes."""
        return self._bytes
