"""What a submission reads of its data before a job exists: the dataset (one file or every
part), the task a fit learns, its evaluation dataset, a predict's model. Every check here is a
4xx naming the problem (the "fail early" rule of docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.domain import Job
from app.core.errors import UserError
from app.core.storage import ObjectInfo
from app.engines import routing
from app.usecases.families import ModelFamily, choose_family
from app.usecases.services import Services
from app.usecases.tasks import TaskChoice
from app.usecases.validation import check_evaluation, check_fit, validate_predict
from ml.tasks import CLASSIFICATION, REGRESSION

if TYPE_CHECKING:
    from app.usecases.job_request import JobRequest


@dataclass(frozen=True)
class CheckedData:
    """A submission's data, checked: its family, the dataset's object info (parts: summed, one
    combined ETag), shape, whether it is in parts, a fit's task and evaluation dataset, a
    predict's model and the features it was trained on."""

    family: ModelFamily
    info: ObjectInfo
    rows: int
    columns: int
    in_parts: bool
    task: TaskChoice | None = None
    evaluation: ObjectInfo | None = None
    model: Job | None = None
    features: dict[str, Any] | None = None


def check_data(svc: Services, tenant: str, request: JobRequest) -> CheckedData:
    """Check what ``request`` will read (see the module docstring)."""
    in_parts = bool(svc.state.datasets.get(tenant, request.dataset_id).parts)
    if request.kind == "fit":
        return _check_fit_data(svc, tenant, request, in_parts)
    assert request.model_id is not None
    model = svc.state.jobs.get_for(tenant, request.model_id)
    family = choose_family("predict", request.model, model.model)
    features = (model.result or {}).get("features")
    if in_parts:
        info, rows, columns, _ = routing.validate(svc, tenant, request)
    else:
        info, rows, columns = validate_predict(
            svc, tenant, request.dataset_id, request.model_id, request.passthrough,
            probabilities=request.probabilities,
        )  # fmt: skip
    return CheckedData(family, info, rows, columns, in_parts, model=model, features=features)


def _check_fit_data(svc: Services, tenant: str, request: JobRequest, in_parts: bool) -> CheckedData:
    family = choose_family("fit", request.model)
    if in_parts:
        # The Dask engine infers no task (a classification unless asked) and scores no evaluation dataset.
        if request.evaluate_on:
            raise UserError(
                "A dataset in parts is scored on the rows the Dask engine holds out, not on an evaluation dataset.",
                code="engine.task_unsupported",
                hint="Leave evaluate_on out (the fit reports metrics on held-out rows), or upload one file.",
                status=422,
            )
        info, rows, columns, _ = routing.validate(svc, tenant, request)
        task = (
            TaskChoice(REGRESSION, "asked for")
            if request.task == REGRESSION
            else TaskChoice(CLASSIFICATION, "a dataset in parts: the Dask engine trains a classification unless asked")
        )
        return CheckedData(family, info, rows, columns, True, task=task)
    checked = check_fit(svc, tenant, request.dataset_id, request.target, request.task)
    evaluation = None
    if request.evaluate_on:
        evaluation = check_evaluation(
            svc, tenant, request.evaluate_on, checked.schema, request.target, checked.task.task
        )
    return CheckedData(family, checked.info, checked.rows, checked.columns, False, checked.task, evaluation)
