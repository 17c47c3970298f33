"""Why a queued job waits, in words: one answer for the job routes, the dashboard and ``tabjob top``
(here, not in the API layer, so ``app.observability`` needs nothing of ``app.api``)."""

from __future__ import annotations

from typing import Any

from app.core.domain import Job
from app.core.settings import Settings
from app.state import Waiting


def wait_reason(settings: Settings, job: Job, w: Waiting) -> str:
    """The first thing that holds ``job`` back: its tenant's running limit, no worker, or jobs ahead."""
    if w.tenant_running >= settings.tenant_max_running:
        return (
            f"Your account already runs {w.tenant_running} job(s), the most allowed at once "
            f"({settings.tenant_max_running}); it starts when one ends."
        )
    if w.workers == 0:
        return f"No worker is running on the {job.lane} lane yet; one is being started."
    if (w.position and w.position > 1) or w.running >= w.workers:
        return (
            f"{(w.position or 1) - 1} job(s) ahead of it; {w.running} of {w.workers} "
            f"worker(s) on the {job.lane} lane are busy."
        )
    return "Starting on a free worker."


def queue_view(settings: Settings, job: Job, waiting: Waiting | None) -> dict[str, Any] | None:
    """The fields of the API's ``QueueInfo`` for a waiting job (None when it does not wait)."""
    if waiting is None:
        return None
    return {
        "position": waiting.position,
        "lane": job.lane,
        "lane_queued": waiting.queued,
        "lane_running": waiting.running,
        "lane_workers": waiting.workers,
        "reason": wait_reason(settings, job, waiting),
    }
