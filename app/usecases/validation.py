"""Refusing, at submission, a job that cannot run: from the Parquet footer and (for fits) a bounded
sample of the target column alone, never the whole file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from app.core.domain import Job, JobStatus
from app.core.errors import Conflict, ModelDeleted, UserError
from app.core.storage import ObjectInfo, dataset_key
from app.inspection.pool import InspectRequest, inspect
from app.usecases.datasets import uploaded
from app.usecases.services import Services
from app.usecases.tasks import TaskChoice, check_predict_passthrough
from ml.errors import DataProblem
from ml.schema import TARGET, check_predict_schema, feature_schema
from ml.tasks import CLASSIFICATION, check_task


@dataclass(frozen=True)
class CheckedFit:
    """A training set that can train: its object info, shape, schema, and the task the fit learns."""

    info: ObjectInfo
    rows: int
    columns: int
    schema: pa.Schema
    task: TaskChoice


def check_fit(
    svc: Services, tenant: str, dataset_id: str, target: str = TARGET, task: str | None = CLASSIFICATION
) -> CheckedFit:
    """Refuse a training set that cannot train on ``target`` as ``task`` (None: inferred from a
    bounded sample of the target, ``app.usecases.tasks``)."""
    info = uploaded(svc, tenant, dataset_id)
    # In a child process under a memory limit (app/inspection/pool.py): the footer bounded in
    # bytes, the schema, the task from a bounded sample, a classification's labels bounded in rows
    # and bytes; never the whole column.
    key = dataset_key(tenant, dataset_id)
    found = inspect(svc.settings, InspectRequest("fit", key, info, target=target, task=task))
    choice = TaskChoice(found["task"], found["task_reason"])
    return CheckedFit(info, found["rows"], found["columns"], found["schema"], choice)


def validate_fit(svc: Services, tenant: str, dataset_id: str, target: str = TARGET) -> tuple[ObjectInfo, int, int]:
    """Refuse a training set that cannot train a classification of ``target``; return its object
    info, rows and columns."""
    checked = check_fit(svc, tenant, dataset_id, target, CLASSIFICATION)
    return checked.info, checked.rows, checked.columns


def validate_predict(
    svc: Services,
    tenant: str,
    dataset_id: str,
    model_id: str,
    passthrough: Sequence[str] = (),
    *,
    probabilities: bool = False,
) -> tuple[ObjectInfo, int, int]:
    """Refuse prediction data that does not fit the model, or lacks a ``passthrough`` column;
    return its object info, rows and columns."""
    model = usable_model(svc.state.jobs.get_for(tenant, model_id))
    info = uploaded(svc, tenant, dataset_id)
    assert model.result is not None
    features = model.result["features"]["columns"]
    request = InspectRequest(
        "predict", dataset_key(tenant, dataset_id), info, target=model.target, features=features,
        passthrough=tuple(passthrough),
    )  # fmt: skip
    found = inspect(svc.settings, request)  # in a memory-limited child, as a fit's
    if passthrough:  # a missing passthrough column is named as such
        check_predict_passthrough(found["schema"], model, passthrough, probabilities)
    return info, found["rows"], found["columns"]


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


def check_evaluation(
    svc: Services, tenant: str, dataset_id: str, training: pa.Schema, target: str, task: str
) -> ObjectInfo:
    """Refuse an evaluation dataset the fit cannot be scored on; return its object info.

    It must be uploaded, have the target column (numeric for a regression) and the training
    data's feature columns with compatible types.
    """
    info = uploaded(svc, tenant, dataset_id)
    # The footer, bounded, in a memory-limited child (app/inspection/pool.py): a tenant's file.
    found = inspect(svc.settings, InspectRequest("schema", dataset_key(tenant, dataset_id), info))
    schema = found["schema"]
    if target not in schema.names:
        raise UserError(
            f"The evaluation dataset '{dataset_id}' has no column '{target}', the fit's target.",
            code="job.evaluate_on_missing_target",
            hint=f"Evaluate on a dataset that has the true '{target}' of each row, or leave evaluate_on out.",
            status=422,
        )
    try:
        check_task(task, schema.field(target).type, target)
        check_predict_schema(schema, found["rows"], feature_schema(training, target), target)
    except DataProblem as problem:
        raise UserError(
            f"The evaluation dataset '{dataset_id}' cannot score this fit: {problem.message}",
            code=problem.code,
            hint=problem.hint,
            status=422,
        ) from problem
    return info
