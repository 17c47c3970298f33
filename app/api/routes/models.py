"""``/v1/models``: the tenant's models (finished fits): list, show, export, delete."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from app.api.deps import ServicesDep, TenantDep
from app.api.errors import error_responses
from app.api.model_schemas import ModelExportPublic, ModelPublic, ModelSchemaPublic, ModelsPublic
from app.api.presenters import features, model_public
from app.usecases import models

router = APIRouter(prefix="/v1/models", tags=["models"], responses=error_responses(401, 422, 503))
# A model id that is another tenant's or unknown (404), a predict job (400), a fit not finished
# (409), or a model deleted (410).
MODEL_ERRORS = error_responses(400, 404, 409, 410)


@router.get("", summary="The tenant's models, newest first")
def list_models(
    svc: ServicesDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: float | None = Query(None, allow_inf_nan=False, description="next_cursor of the previous page"),
) -> ModelsPublic:
    """Finished fits whose model file was not deleted, newest first: each model's target, features,
    classes, validation score, training time and file size. A model stays usable as long as its
    fit job's record (`TABJOB_JOB_RETENTION_S` after the fit ends)."""
    found, next_cursor = models.list_models(svc, tenant, limit=limit, before=cursor)
    return ModelsPublic(
        items=[model_public(m) for m in found], next_cursor=str(next_cursor) if next_cursor is not None else None
    )


@router.get("/{model_id}", summary="A model: target, features, classes, validation score, size", responses=MODEL_ERRORS)
def get_model(model_id: str, svc: ServicesDep, tenant: TenantDep) -> ModelPublic:
    """One model, named by the id of the fit job that trained it."""
    return model_public(models.get_model(svc, tenant, model_id))


@router.get(
    "/{model_id}/export", summary="A presigned URL of the model's file, with its feature schema", responses=MODEL_ERRORS
)
def export_model(model_id: str, svc: ServicesDep, tenant: TenantDep) -> ModelExportPublic:
    """The model file as the workers use it, downloadable for `presign_expiry_s`, with what it needs
    as input (features in order, with categories), what it predicts (target, classes), and how to
    load it (`format`)."""
    model, url, expires_at, filename = models.export_model(svc, tenant, model_id)
    schema = ModelSchemaPublic(
        target=model_public(model).target, classes=(model.result or {}).get("classes") or [], features=features(model)
    )
    return ModelExportPublic(
        model_id=model.id, url=url, expires_at=expires_at, filename=filename, format=models.MODEL_FORMAT, schema=schema
    )


@router.delete("/{model_id}", status_code=204, summary="Delete a model's file", responses=MODEL_ERRORS)
def delete_model(model_id: str, svc: ServicesDep, tenant: TenantDep) -> Response:
    """Deletes the model file. The fit job stays in the history (its result says
    `model_deleted_at`); new predicts with the model are refused with 410 `model.deleted`, and
    predicts already queued with it fail with the same code."""
    models.delete_model(svc, tenant, model_id)
    return Response(status_code=204)
