"""A ``JobCreate`` body as the submission use case takes it: ``POST /v1/jobs`` and a schedule's
``job`` speak the same body and get the same checks."""

from __future__ import annotations

from fastapi import Request

from app.api.schemas import JobCreate
from app.core.errors import UserError
from app.usecases.submission import JobRequest
from ml.names import TARGET


def actor_of(request: Request) -> str:
    """Who asks, as the registry's history records it: ``key:<api key id>``, or ``local`` when
    auth is off."""
    key_id = getattr(request.state, "api_key_id", None)
    return f"key:{key_id}" if key_id else "local"


# What a predict's body may not carry (the body alone shows it): the field, its code, the message.
PREDICT_TAKES_NO = (
    ("target", "job.unexpected_target", "A predict job takes no target: it predicts the column its model learned."),
    ("task", "job.unexpected_task", "A predict job takes no task: it predicts what its model learned."),
)


def job_request(body: JobCreate, actor: str | None) -> JobRequest:
    """The submission request of ``body``, refusing what only the body shows (a predict without a
    model, a target or a task given to a predict: the request fills in their defaults);
    ``app.usecases.submission`` refuses the other options a kind does not take, for every way in."""
    if body.kind == "predict" and not body.model_id:
        raise UserError(
            "A predict job needs model_id (the id of a finished fit job, or name@alias of a registered model).",
            code="job.missing_model",
            hint="Pass model_id.",
            status=422,
        )
    for field, code, message in PREDICT_TAKES_NO:
        if body.kind == "predict" and getattr(body, field):
            raise UserError(message, code=code, hint=f"Leave {field} out.", status=422)
    webhook = body.webhook
    return JobRequest(
        body.kind, body.dataset_id, body.model_id, body.params.chosen() if body.params else None, body.lane,
        model=body.model, target=body.target or TARGET, task=body.task,
        passthrough=tuple(body.passthrough or ()), probabilities=True,
        webhook_url=webhook.url if webhook else None, webhook_secret=webhook.secret if webhook else None,
        register_as=body.register_as, evaluate_on=body.evaluate_on,
        promote=body.promote.model_dump() if body.promote else None, actor=actor, engine=body.engine,
    )  # fmt: skip
