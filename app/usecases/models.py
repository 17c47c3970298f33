"""Models (finished fits) and deletion: list, show, export and delete a model; delete a dataset.

A model is the fit job that made it: its id, its record (kept ``TABJOB_JOB_RETENTION_S`` after
the fit ends) and its file in the store. Deleting a model removes the file and marks the record,
so predicts are refused at submission (410 ``model.deleted``) and, if already queued, by the
worker. Deleting a dataset removes its bytes, the prepared matrices made from them and its
record; jobs still queued on it fail (``dataset.deleted``); models trained on it and finished predictions stay.
"""

from __future__ import annotations

import time
from datetime import datetime

from app.core.domain import Job, JobStatus
from app.core.storage import model_key
from app.tenancy.copies import delete_every_copy
from app.usecases.parts import remove_parts
from app.usecases.services import Services
from app.usecases.validation import usable_model

# How a model file is made: what a user needs to load an export.
MODEL_FORMAT = (
    "cloudpickle of tabjob's ml.bundle.ModelBundle (the estimator, its feature encoding, classes and target); "
    "load it with cloudpickle where the same tabjob and scikit-learn (or xgboost) versions are installed, "
    "and only from a source you trust: unpickling runs code"
)


def get_model(svc: Services, tenant: str, model_id: str) -> Job:
    """The model: a finished fit of this tenant whose file was not deleted; refused otherwise."""
    return usable_model(svc.state.jobs.get_for(tenant, model_id))


def list_models(svc: Services, tenant: str, *, limit: int, before: float | None) -> tuple[list[Job], float | None]:
    """The tenant's models, newest first, deleted ones left out; and the cursor of the next page."""
    found: list[Job] = []
    cursor = before
    while len(found) < limit:
        batch = svc.state.jobs.list(tenant, limit=limit, before=cursor, status=JobStatus.FINISHED, kind="fit")
        for job in batch:
            if job.model_deleted_at is None and len(found) < limit:
                found.append(job)
            cursor = job.created_at
        if len(batch) < limit:
            return found, None
    return found, cursor


def export_model(svc: Services, tenant: str, model_id: str) -> tuple[Job, str, datetime, str]:
    """The model, a presigned URL of its file, the URL's expiry, and the file's name."""
    model = get_model(svc, tenant, model_id)
    filename = f"{model_id}.pkl"
    url, expires_at = svc.store.presign_download(model_key(tenant, model_id), filename=filename)
    return model, url, expires_at, filename


def delete_model(svc: Services, tenant: str, model_id: str) -> None:
    """Delete the model's file and mark its fit; later predicts with it are refused."""
    get_model(svc, tenant, model_id)
    svc.state.jobs.update(model_id, model_deleted_at=time.time())
    svc.store.remove(model_key(tenant, model_id))


def delete_dataset(svc: Services, tenant: str, dataset_id: str) -> None:
    """Delete the dataset's record, its bytes (every part) and every prepared matrix made from them."""
    dataset = svc.state.datasets.get(tenant, dataset_id)  # 404 for unknown ids and other tenants' ids
    _, *matrices = delete_every_copy(svc.state, svc.store, tenant, dataset_id)
    remove_parts(svc, dataset)
    svc.state.datasets.delete(tenant, dataset_id)
    # A prepare step drops the matrix it wrote when the record is gone (app.jobs.stepping); one that
    # checked while the record was still there may have written after the pass above. Its write
    # came before the record went, so a second pass now leaves no copy (a CI run found one).
    for key in matrices:
        svc.store.remove(key)
