"""Retention of data in the object store: datasets, model files and predictions older than
``TABJOB_DATA_RETENTION_DAYS`` are deleted, with what refers to them, and so are jobs' log chunks.

One worker at a time sweeps (a lock in Valkey that also spaces sweeps ``SWEEP_EVERY_S`` apart),
so the rule holds on every stack and any S3 store, whatever lifecycle rules the bucket has. Job
manifests (the history) stay; job records expire on their own (``TABJOB_JOB_RETENTION_S``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.copies import delete_every_copy
from app.job_logs.chunks import is_log_chunk
from app.settings import Settings
from app.state import State
from app.storage import Store

log = logging.getLogger("tabjob.retention")
SWEEP_EVERY_S = 3600
DAY_S = 24 * 3600
LOCK = "retention-sweep"


@dataclass
class Swept:
    """What one sweep deleted."""

    datasets: int = 0
    models: int = 0
    results: int = 0
    checkpoints: int = 0
    log_chunks: int = 0


def sweep(
    state: State, store: Store, *, older_than_s: float, now: float | None = None, prefix: str = "tenants/"
) -> Swept:
    """Delete datasets, model files, predictions and job log chunks under ``prefix`` written more than
    ``older_than_s`` seconds before ``now``: a dataset's record goes with its bytes; a model's fit
    is marked deleted, so predicts with it are refused with ``model.deleted``."""
    swept = Swept()
    cutoff = (time.time() if now is None else now) - older_than_s
    for key in store.written_before(prefix, cutoff):
        if is_log_chunk(key):  # a job's log lines (tenants/<t>/jobs/<job>/logs/<chunk>), like its results
            store.remove(key)
            swept.log_chunks += 1
            continue
        parts = key.split("/")  # tenants/<tenant>/<what>/<id>.<ext>
        if len(parts) != 4:
            continue
        tenant, what, name = parts[1], parts[2], parts[3].rsplit(".", 1)[0]
        if what == "datasets":
            delete_every_copy(state, store, tenant, name)  # its prepared matrices too
            state.datasets.delete(tenant, name)
            swept.datasets += 1
        elif what == "prepared":  # a matrix older than the rule, whatever dataset made it
            store.remove(key)
        elif what == "models":
            if state.jobs.get(name) is not None:
                state.jobs.update(name, model_deleted_at=time.time())
            store.remove(key)
            swept.models += 1
        elif what == "results":
            store.remove(key)
            swept.results += 1
        elif what == "checkpoints":  # a fit's, left behind (its job ended without its worker)
            store.remove(key)
            swept.checkpoints += 1
    return swept


def sweep_if_due(settings: Settings, state: State, store: Store, worker_id: str) -> Swept | None:
    """Sweep when retention is set and no worker swept within ``SWEEP_EVERY_S``; None otherwise."""
    if settings.data_retention_days is None:
        return None
    if not state.conn.r.set(state.keys.claim(LOCK), worker_id, nx=True, ex=SWEEP_EVERY_S):
        return None
    swept = sweep(state, store, older_than_s=settings.data_retention_days * DAY_S)
    log.info("retention sweep: deleted %s", swept)
    return swept
