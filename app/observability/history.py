"""Every job, past and present, as the dashboard's history shows it: recent jobs of every status,
filtered and paged, and one job in full. A tenant sees its own jobs; an admin sees every
tenant's (and may pick one). Jobs are kept as long as their retention (``TABJOB_JOB_RETENTION_S``)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from app.core.domain import Job, JobKind, JobStatus
from app.core.errors import NotFound
from app.observability.overview import Viewer
from app.state import State


@dataclass(frozen=True)
class HistoryFilter:
    """Which jobs to list; None means any."""

    status: JobStatus | None = None
    kind: JobKind | None = None
    lane: str | None = None
    model: str | None = None
    tenant: str | None = None

    def accepts(self, job: Job) -> bool:
        return (self.lane is None or job.lane == self.lane) and (
            self.model is None or (job.kind == "fit" and job.model == self.model)
        )


def tenants_in_view(state: State, viewer: Viewer, wanted: str | None) -> list[str]:
    """The tenants whose jobs ``viewer`` may list: its own, or (an admin) one or all of them."""
    if not viewer.admin:
        return [viewer.tenant]
    if wanted:
        return [wanted]
    return sorted(state.conn.r.smembers(state.keys.tenants()))


def history_page(
    state: State, viewer: Viewer, flt: HistoryFilter, *, limit: int, before: float | None
) -> tuple[list[Job], float | None]:
    """Up to ``limit`` jobs created before ``before``, newest first, and the next page's cursor
    (the last job's creation time; None on the last page). Each tenant's index is read in time
    order, so merging their pages keeps the order across tenants."""
    per_tenant = [
        state.jobs.list(tenant, limit=limit, before=before, status=flt.status, kind=flt.kind, match=flt.accepts)
        for tenant in tenants_in_view(state, viewer, flt.tenant)
    ]
    merged = list(heapq.merge(*per_tenant, key=lambda job: -job.created_at))[:limit]
    return merged, (merged[-1].created_at if len(merged) == limit else None)


def visible_job(state: State, viewer: Viewer, job_id: str) -> Job:
    """The job, if ``viewer`` may see it (its own, or any for an admin); NotFound otherwise."""
    if not viewer.admin:
        return state.jobs.get_for(viewer.tenant, job_id)
    job = state.jobs.get(job_id)
    if job is None:
        raise NotFound(f"No job with id '{job_id}'.", code="job.not_found")
    return job


def timings(job: Job) -> dict[str, Any]:
    """Seconds the job waited and ran, and the worker's own timings of its phases (when it reported them)."""
    waited = (job.started_at - job.created_at) if job.started_at else None
    ran = (job.ended_at - job.started_at) if job.started_at and job.ended_at else None
    return {"waited_s": waited, "ran_s": ran, "phases": (job.result or {}).get("timings")}
