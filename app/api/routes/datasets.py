"""``/v1/datasets``: create (get an upload URL), inspect, list."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app import limits, submission
from app.api.deps import ServicesDep, TenantDep
from app.api.schemas import (
    DatasetCreate,
    DatasetCreated,
    DatasetPublic,
    DatasetsPublic,
    ErrorEnvelope,
    dataset_public,
)
from app.storage import dataset_key

router = APIRouter(
    prefix="/v1/datasets", tags=["datasets"], responses={401: {"model": ErrorEnvelope}, 404: {"model": ErrorEnvelope}}
)


@router.post("", status_code=201, summary="Create a dataset; upload its Parquet bytes with upload_form (or upload_url)")
def create_dataset(
    request: Request, svc: ServicesDep, tenant: TenantDep, body: DatasetCreate | None = None
) -> DatasetCreated:
    key_id = getattr(request.state, "api_key_id", None)
    record, url, expires_at = submission.create_dataset(svc, tenant, body.name if body else None, key_id=key_id)
    return DatasetCreated(
        **dataset_public(record).model_dump(),
        upload_url=url if svc.settings.upload_put_urls else None,
        upload_form=limits.upload_form(svc.store, dataset_key(tenant, record["id"]), svc.settings),
        upload_expires_at=expires_at,
    )


@router.get("/{dataset_id}", summary="A dataset: state, size, rows, columns and their types")
def get_dataset(dataset_id: str, svc: ServicesDep, tenant: TenantDep) -> DatasetPublic:
    return dataset_public(submission.dataset_view(svc, tenant, dataset_id))


@router.get("", summary="The tenant's datasets, newest first")
def list_datasets(
    svc: ServicesDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: float | None = Query(None, allow_inf_nan=False, description="next_cursor of the previous page"),
) -> DatasetsPublic:
    records = svc.state.list_datasets(tenant, limit=limit, before=cursor)
    next_cursor = str(records[-1]["created_at"]) if len(records) == limit else None
    return DatasetsPublic(items=[dataset_public(r) for r in records], next_cursor=next_cursor)
