"""A fit's checkpoint in the store (``tenants/<t>/checkpoints/<job>.ckpt``), seen from the worker.

The job process trains in chunks and saves there (``ml.checkpoint``); the worker hands it the
checkpoint's URLs and its pin (the dataset version checked at submission, the family, parameters
and target: a checkpoint of anything else is not resumed), and deletes it when the job ends.
The retention sweep removes any left behind (a job ended by the API while queued, a crash).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from app.core.domain import Job
from app.core.settings import Settings
from app.core.storage import Store

log = logging.getLogger("tabjob.worker")


def checkpoint_key(tenant: str, job_id: str) -> str:
    """Where the checkpoint of fit ``job_id`` lives."""
    return f"tenants/{tenant}/checkpoints/{job_id}.ckpt"


def checkpointed(job: Job, settings: Settings) -> bool:
    """Whether ``job``'s process is handed a checkpoint (``checkpoint_spec``): fits above small work."""
    return job.kind == "fit" and (job.cost_cells or 0) > settings.worker_small_work_max_cells


def checkpoint_spec(store: Store, job: Job, settings: Settings, expires_s: int) -> dict[str, Any] | None:
    """What the job process needs to save and resume a fit's checkpoint (``ml.checkpoint.Checkpoint``);
    None for small work (at most ``worker_small_work_max_cells`` cells), which trains in one go."""
    if not checkpointed(job, settings):
        return None
    key = checkpoint_key(job.tenant, job.id)
    # The pin is opaque to the job process, which compares it only; computed here so the worker
    # never imports ml.checkpoint (scikit-learn: memory every idle worker would pay).
    facts = {"dataset": job.dataset_id, "etag": job.dataset_etag, "bytes": job.dataset_bytes, "family": job.model,
             "params": job.params, "target": job.target, "prepared": job.prepared_key}  # fmt: skip
    pin = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
    return {
        "get_url": store.internal_get_url(key, expires_s),
        "put_url": store.internal_put_url(key, expires_s),
        "pin": pin,
        "interval_s": settings.checkpoint_interval_s,
    }


def delete_checkpoint(store: Store, job: Job, settings: Settings) -> None:
    """Remove a fit's checkpoint once the job has ended (best effort: retention sweeps the rest).
    Small work never gets one: no delete request then (a toy fit's store round trip saved; with
    a few others, the store's CPU was a fifth of a toy fit's cost on 2 cores)."""
    if not checkpointed(job, settings):
        return
    try:
        store.remove(checkpoint_key(job.tenant, job.id))
    except Exception:
        log.warning("could not delete the checkpoint of %s; the retention sweep will", job.id, exc_info=True)
