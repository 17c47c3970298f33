"""How records are shown to API clients: the public models, and why a queued job waits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.api.model_schemas import FeaturePublic, ModelPublic, ValidationPublic
from app.api.schemas import DatasetPublic, JobPublic, QueueInfo, StepPublic, WebhookPublic
from app.domain import Dataset, Job
from app.settings import Settings
from app.state import Waiting
from app.steps import shown

# What a fit's result shows its owner (the model's digest and paths stay internal).
FIT_RESULT_FIELDS = (
    "classes", "rows", "iterations", "params", "notes", "features", "timings", "target", "family", "device",
    "engine", "parts", "worker_peak_rss_bytes",
)  # fmt: skip
NO_HELD_OUT_ROWS = (
    "early stopping was off (it is on by default above 10,000 rows): no rows were held out; "
    "fit with early_stopping=true to hold out 10% and get a score"
)


def ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def validation(result: dict[str, Any]) -> ValidationPublic:
    """The validation score of a fit's result, saying which rows it was measured on."""
    score = result.get("validation_score")
    if score is None:
        return ValidationPublic(score=None, split="none", note=NO_HELD_OUT_ROWS)
    return ValidationPublic(score=score, split="early_stopping", rows=result.get("validation_rows") or 0)


def duration_s(job: Job) -> float | None:
    """How long the job ran (its last attempt), in seconds."""
    return round(job.ended_at - job.started_at, 3) if job.ended_at and job.started_at else None


def fit_result(job: Job) -> dict[str, Any]:
    """A finished fit's result as its owner sees it: the facts, the validation score, duration, size."""
    result = job.result or {}
    shown = {k: result[k] for k in FIT_RESULT_FIELDS if k in result}
    shown.setdefault("target", job.target)
    shown.update(
        validation=validation(result).model_dump(), duration_s=duration_s(job), model_bytes=result.get("model_bytes")
    )
    if job.model_deleted_at is not None:
        shown["model_deleted_at"] = ts(job.model_deleted_at)
    return shown


def job_public(job: Job, *, queue: QueueInfo | None = None, deduplicated: bool = False) -> JobPublic:
    result = job.result
    if result and job.kind == "fit":
        result = fit_result(job)
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
    )


def features(job: Job) -> list[FeaturePublic]:
    """A model's feature columns in training order, with the categories of categorical ones."""
    spec = (job.result or {}).get("features") or {}
    categories = spec.get("categories") or {}
    return [
        FeaturePublic(name=name, kind=kind, categories=categories.get(name))
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
        validation=validation(result),
        duration_s=duration_s(job),
        size_bytes=result.get("model_bytes"),
        params=result.get("params") or job.params,
    )


def step_public(step: dict[str, Any]) -> StepPublic:
    times = {"started_at": ts(step.get("started_at")), "ended_at": ts(step.get("ended_at"))}
    return StepPublic(**{**step, **times})


def dataset_public(dataset: Dataset) -> DatasetPublic:
    return DatasetPublic(
        id=dataset.id,
        name=dataset.name,
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
    if waiting is None:
        return None
    w = waiting
    if w.tenant_running >= settings.tenant_max_running:
        reason = (
            f"Your account already runs {w.tenant_running} job(s), the most allowed at once "
            f"({settings.tenant_max_running}); it starts when one ends."
        )
    elif w.workers == 0:
        reason = f"No worker is running on the {job.lane} lane yet; one is being started."
    elif (w.position and w.position > 1) or w.running >= w.workers:
        reason = (
            f"{(w.position or 1) - 1} job(s) ahead of it; {w.running} of {w.workers} "
            f"worker(s) on the {job.lane} lane are busy."
        )
    else:
        reason = "Starting on a free worker."
    return QueueInfo(
        position=w.position,
        lane=job.lane,
        lane_queued=w.queued,
        lane_running=w.running,
        lane_workers=w.workers,
        reason=reason,
    )
