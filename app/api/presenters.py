"""How records are shown to API clients: the public models, and why a queued job waits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.api.schemas import DatasetPublic, JobPublic, QueueInfo, StepPublic
from app.domain import Dataset, Job
from app.settings import Settings
from app.state import Waiting
from app.steps import shown

# What a fit's result shows its owner (the model's digest and paths stay internal).
FIT_RESULT_FIELDS = ("classes", "rows", "iterations", "params", "notes", "features", "timings", "device")


def ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def job_public(job: Job, *, queue: QueueInfo | None = None, deduplicated: bool = False) -> JobPublic:
    result = job.result
    if result and job.kind == "fit":
        result = {k: result[k] for k in FIT_RESULT_FIELDS if k in result}
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
