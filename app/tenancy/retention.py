"""Retention of data in the object store: datasets, model files and predictions older than
``TABJOB_DATA_RETENTION_DAYS`` are deleted, with what refers to them, and so are jobs' log chunks;
datasets never uploaded are deleted ``TABJOB_DATASET_UPLOAD_GRACE_S`` after their upload URL
expired, whatever the retention (their records would otherwise stay in the broker and count
against the tenant).

One worker at a time sweeps (a lock in Valkey that also spaces sweeps ``SWEEP_EVERY_S`` apart),
so the rule holds on every stack and any S3 store, whatever lifecycle rules the bucket has. Job
manifests (the history) stay; job records expire on their own (``TABJOB_JOB_RETENTION_S``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.core.errors import NotFound
from app.core.settings import Settings
from app.core.storage import Store, dataset_key, dataset_part_key
from app.job_logs.chunks import is_log_chunk
from app.state import State
from app.tenancy.copies import delete_every_copy
from app.tenancy.quotas import forget_upload_url

log = logging.getLogger("tabjob.retention")
SWEEP_EVERY_S = 3600
DAY_S = 24 * 3600
LOCK = "retention-sweep"
# Datasets whose upload expired looked at per sweep (the rest wait for the next sweep).
EXPIRED_UPLOADS_PER_SWEEP = 10_000


@dataclass
class Swept:
    """What one sweep deleted."""

    datasets: int = 0
    models: int = 0
    results: int = 0
    checkpoints: int = 0
    never_uploaded: int = 0
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


def sweep_never_uploaded(state: State, store: Store, *, grace_s: float, now: float | None = None) -> int:
    """Delete the datasets whose upload URL expired more than ``grace_s`` seconds before ``now``
    with nothing (or, in parts, not every part) uploaded: the record, its name's version, its
    place in the tenant's count and any part that did arrive. Returns how many went."""
    cutoff, deleted = (time.time() if now is None else now) - grace_s, 0
    for tenant, dataset_id in state.datasets.upload_expired(cutoff, limit=EXPIRED_UPLOADS_PER_SWEEP):
        try:
            dataset = state.datasets.get(tenant, dataset_id)
        except NotFound:  # deleted by its owner meanwhile
            dataset = None
        parts = [dataset_part_key(tenant, dataset_id, i) for i in range(dataset.parts or 0)] if dataset else []
        if dataset is not None and any(store.stat(key) is None for key in parts or [dataset_key(tenant, dataset_id)]):
            for key in parts:
                store.remove(key)
            delete_every_copy(state, store, tenant, dataset_id)
            state.datasets.delete(tenant, dataset_id)
            forget_upload_url(state, tenant, dataset_id)
            deleted += 1
        state.datasets.forget_upload(tenant, dataset_id)
    return deleted


def sweep_if_due(settings: Settings, state: State, store: Store, worker_id: str) -> Swept | None:
    """Sweep when no worker swept within ``SWEEP_EVERY_S`` (None otherwise): datasets never
    uploaded always, data older than the retention when one is set."""
    if not state.conn.r.set(state.keys.claim(LOCK), worker_id, nx=True, ex=SWEEP_EVERY_S):
        return None
    swept = Swept()
    if settings.data_retention_days is not None:
        swept = sweep(state, store, older_than_s=settings.data_retention_days * DAY_S)
    swept.never_uploaded = sweep_never_uploaded(state, store, grace_s=settings.dataset_upload_grace_s)
    log.info("retention sweep: deleted %s", swept)
    return swept
