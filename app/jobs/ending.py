"""The one way a job ends: finished, failed or canceled, wherever that is decided.

The status change and the counters (one atomic script), the event, and the manifest in the
object store (so history outlives the broker) always go together; the actor, the middleware and
the API all end jobs through ``end_job``.
"""

from __future__ import annotations

import logging
from typing import Any

from app.domain import ACTIVE_STATUSES, ErrorInfo, Job, JobStatus
from app.errors import InfraError
from app.observability.endings import record_end
from app.state import State
from app.steps import closed
from app.storage import Store, manifest_key

log = logging.getLogger("tabjob.jobs")


def end_job(
    state: State,
    store: Store,
    job: Job,
    status: JobStatus,
    text: str,
    *,
    allowed: tuple[JobStatus, ...] = ACTIVE_STATUSES,
    error: ErrorInfo | None = None,
    **fields: Any,
) -> bool:
    """End ``job`` with ``status`` if its status is one of ``allowed``; record the event
    (``text``) and write its manifest. False when it had ended or moved on meanwhile.
    A two-step job's steps end with it (``app.steps.closed``) unless ``fields`` sets them."""
    if job.steps and "steps" not in fields:
        fields["steps"] = closed(job.steps, status)
    if not state.jobs.end(job, status, allowed=allowed, error=error, **fields):
        return False
    extra = {"error": error} if error else {}
    state.events.add(job.id, status.value, text, **extra)
    record_end(state, job.id)  # metrics, the failures index, a log line
    write_manifest(state, store, job.id)
    return True


def write_manifest(state: State, store: Store, job_id: str) -> None:
    """Write the ended job's record and events to the store, so history outlives the broker."""
    job = state.jobs.get(job_id)
    if job is None:
        return
    try:
        store.put_json(manifest_key(job.tenant, job_id), {"job": job.to_fields(), "events": state.events.since(job_id)})
    except InfraError:
        log.warning("could not write the manifest of job %s", job_id, exc_info=True)
