"""The one way a job ends: finished, failed or canceled, wherever that is decided.

The status change and the counters (one atomic script), the event, and the manifest in the
object store (so history outlives the broker) always go together; the actor, the middleware and
the API all end jobs through ``end_job``.
"""

from __future__ import annotations

import logging
from typing import Any

from app.core.domain import ACTIVE_STATUSES, ErrorInfo, Job, JobStatus
from app.core.errors import InfraError
from app.core.storage import Store, manifest_key
from app.observability.endings import record_end
from app.state import State
from app.usecases.steps import closed
from app.webhooks.outbox import Notifier

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
    notifier: Notifier | None = None,
    **fields: Any,
) -> bool:
    """End ``job`` with ``status`` if its status is one of ``allowed``; record the event
    (``text``), write its manifest, and notify its webhook: the end puts the notification in the
    outbox (app/state/outbox.py) and ``notifier``, when given, delivers it at once. False when it
    had ended or moved on meanwhile. A two-step job's steps end with it
    (``app.usecases.steps.closed``) unless ``fields`` sets them."""
    if job.steps and "steps" not in fields:
        fields["steps"] = closed(job.steps, status)
    if not state.jobs.end(job, status, allowed=allowed, error=error, **fields):
        return False
    extra = {"error": error} if error else {}
    state.events.add(job.id, status.value, text, **extra)
    record_end(state, job.id)  # metrics, the failures index, a log line
    ended = write_manifest(state, store, job.id)
    if notifier is not None and ended is not None and ended.webhook_url:
        notifier.wake()
    return True


def write_manifest(state: State, store: Store, job_id: str) -> Job | None:
    """Write the ended job's record and events to the store, so history outlives the broker;
    returns the job as ended (None when its record is gone)."""
    job = state.jobs.get(job_id)
    if job is None:
        return None
    try:
        record = {**job.to_fields(), "webhook_secret": None}  # the manifest never holds the secret
        store.put_json(manifest_key(job.tenant, job_id), {"job": record, "events": state.events.since(job_id)})
    except InfraError:
        log.warning("could not write the manifest of job %s", job_id, exc_info=True)
    return job
