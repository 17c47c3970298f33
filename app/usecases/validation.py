"""Refusing, at submission, a job that cannot run: from the Parquet footer and (for fits) the
``y`` column alone, never the whole file."""

from __future__ import annotations

from app.domain import Job, JobStatus
from app.errors import Conflict, ModelDeleted, UserError
from app.inspection import data_error
from app.limits import inspection_slot, open_bounded, scan_target
from app.services import Services
from app.storage import ObjectInfo, dataset_key
from app.usecases.datasets import uploaded
from ml.errors import DataProblem
from ml.schema import TARGET, check_predict_schema, check_training_schema


def validate_fit(svc: Services, tenant: str, dataset_id: str, target: str = TARGET) -> tuple[ObjectInfo, int, int]:
    """Refuse a training set that cannot train on ``target``; return its object info, rows and columns."""
    info = uploaded(svc, tenant, dataset_id)
    with inspection_slot(svc.settings):
        source = open_bounded(svc.store, dataset_key(tenant, dataset_id), info, svc.settings)
        try:
            check_training_schema(source.schema_arrow, source.metadata.num_rows, target)
        except DataProblem as problem:
            raise data_error(problem) from problem
        scan_target(source, svc.settings.target_scan_rows, target)  # a bounded sample, never the whole column
    return info, source.metadata.num_rows, source.metadata.num_columns


def validate_predict(svc: Services, tenant: str, dataset_id: str, model_id: str) -> tuple[ObjectInfo, int, int]:
    """Refuse prediction data that does not fit the model; return its object info, rows and columns."""
    model = usable_model(svc.state.jobs.get_for(tenant, model_id))
    info = uploaded(svc, tenant, dataset_id)
    with inspection_slot(svc.settings):
        source = open_bounded(svc.store, dataset_key(tenant, dataset_id), info, svc.settings)
    try:
        assert model.result is not None
        features = model.result["features"]["columns"]
        check_predict_schema(source.schema_arrow, source.metadata.num_rows, features, model.target)
    except DataProblem as problem:
        raise data_error(problem) from problem
    return info, source.metadata.num_rows, source.metadata.num_columns


def usable_model(model: Job) -> Job:
    """``model`` when it is a finished fit whose file was not deleted; refused otherwise, saying what to do."""
    if model.kind != "fit":
        raise UserError(
            f"Job '{model.id}' is a {model.kind} job, not a model.",
            code="model.not_a_model",
            hint="Pass the id of a fit job as the model.",
        )
    if model.status != JobStatus.FINISHED:
        waiting = model.status.active
        raise Conflict(
            f"Model '{model.id}' is {'still being trained' if waiting else 'not usable'} (status {model.status}).",
            code="model.not_ready" if waiting else "model.not_usable",
            hint=f"Wait for it to finish (tabjob wait {model.id}), then submit again."
            if waiting
            else "Train a new model.",
        )
    if model.model_deleted_at is not None:
        raise ModelDeleted(model.id)
    if not (model.result or {}).get("model_sha256"):
        raise Conflict(
            f"Model '{model.id}' has no recorded digest, so it cannot be verified and is never loaded.",
            code="model.tampered",
            hint="Train the model again.",
        )
    return model
