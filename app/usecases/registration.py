"""A submission's references and registration: what ``_submit`` resolves before it checks data.

``dataset_id``, ``evaluate_on`` and a predict's ``model_id`` may be references (``sales@latest``,
``churn@champion``); they are resolved here, once, and the job keeps both the ids and the
references. A fit with ``register_as`` carries its registration (``Job.register``) to the worker,
which registers the version and decides its promotion (``app.jobs.registration``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from app.core import references
from app.core.domain import Job
from app.core.errors import UserError
from app.usecases.datasets import dataset_view
from app.usecases.registry import Promotion, check_promotion, resolve_dataset, resolve_model
from app.usecases.services import Services
from app.usecases.validation import validate_fit


@dataclass(frozen=True)
class Registered:
    """What a submission resolved: the references it named and a fit's registration (or None)."""

    dataset_ref: str | None = None
    model_ref: str | None = None
    register: dict[str, Any] | None = None


def resolve_references(svc: Services, tenant: str, request: Any) -> tuple[Any, Registered]:
    """``request`` (a ``JobRequest``) with its references resolved to ids, and what they were."""
    if request.kind != "fit" and request.register_as:
        raise UserError("A predict job cannot be registered.", code="registry.not_a_fit",
                        hint="Leave register_as out of a predict.", status=422)  # fmt: skip
    if not request.register_as and request.promote:
        raise UserError(
            "promote belongs to a registered fit: it moves an alias of the model it registers.",
            code="registry.register_as_required",
            hint="Add register_as (the model's name), or leave promote out.",
            status=422,
        )
    dataset_id, dataset_ref = resolve_dataset(svc, tenant, request.dataset_id)
    model_id, model_ref = (request.model_id, None)
    if request.model_id:
        model_id, model_ref = resolve_model(svc, tenant, request.model_id)
    # evaluate_on is resolved for every fit: the fit itself may score on it (the fit report).
    eval_id, eval_ref = resolve_dataset(svc, tenant, request.evaluate_on) if request.evaluate_on else (None, None)
    register = _registration(request, eval_id, eval_ref) if request.register_as else None
    resolved = replace(request, dataset_id=dataset_id, model_id=model_id, evaluate_on=eval_id)
    return resolved, Registered(dataset_ref=dataset_ref, model_ref=model_ref, register=register)


def _registration(request: Any, eval_id: str | None, eval_ref: str | None) -> dict[str, Any]:
    name = references.check_name(request.register_as, "model name")
    promotion = Promotion(**request.promote) if request.promote else None
    if promotion is not None:
        check_promotion(promotion, getattr(request, "task", None))
        if not request.evaluate_on:
            raise UserError(
                "A promotion compares versions on the same evaluation data: name it with evaluate_on.",
                code="registry.evaluate_on_required",
                hint="Add evaluate_on: a labelled dataset id or name@version (e.g. holdout@latest).",
                status=422,
            )
    return {
        "name": name, "evaluate_on": eval_id, "evaluate_on_ref": eval_ref,
        "promote": promotion.to_dict() if promotion else None, "by": request.actor,
    }  # fmt: skip


def pin_evaluation(svc: Services, tenant: str, job: Job) -> None:
    """Refuse an evaluation dataset the new model could not be scored on (no target, too few
    classes, a training column missing), and pin the version checked (its ETag and size), as the
    training set is pinned: the worker reads exactly these bytes."""
    assert job.register is not None
    eval_id = job.register.get("evaluate_on")
    if not eval_id:
        return
    info, _, _ = validate_fit(svc, tenant, eval_id, job.target)
    training = {c["name"] for c in dataset_view(svc, tenant, job.dataset_id).columns or []} - {job.target}
    evaluation = {c["name"] for c in dataset_view(svc, tenant, eval_id).columns or []}
    missing = sorted(training - evaluation)
    if missing:
        raise UserError(
            f"The evaluation dataset '{eval_id}' lacks training columns: {', '.join(missing[:10])}.",
            code="registry.evaluation_columns",
            hint="Evaluate on data with the same columns as the training set, target included.",
            status=422,
        )
    job.register = {**job.register, "evaluate_on_etag": info.etag, "evaluate_on_bytes": info.size}
