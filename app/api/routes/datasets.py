"""``/v1/datasets``: create (get an upload URL), inspect, list."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app import submission
from app.api.deps import ServicesDep, TenantDep
from app.api.errors import error_responses
from app.api.schemas import (
    DatasetCreate,
    DatasetCreated,
    DatasetPublic,
    DatasetsPublic,
    dataset_public,
)

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=error_responses(401, 422, 503))


@router.post(
    "",
    status_code=201,
    summary="Create a dataset; PUT its Parquet bytes to upload_url",
    responses=error_responses(400),
)
def create_dataset(svc: ServicesDep, tenant: TenantDep, body: DatasetCreate | None = None) -> DatasetCreated:
    record, url, expires_at = submission.create_dataset(svc, tenant, body.name if body else None)
    return DatasetCreated(**dataset_public(record).model_dump(), upload_url=url, upload_expires_at=expires_at)


@router.get(
    "/{dataset_id}",
    summary="A dataset: state, size, rows, columns and their types",
    responses=error_responses(404),
)
def get_dataset(dataset_id: str, svc: ServicesDep, tenant: TenantDep) -> DatasetPublic:
    return dataset_public(submission.dataset_view(svc, tenant, dataset_id))


@router.get("", summary="The tenant's datasets, newest first")
def list_datasets(
    svc: ServicesDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: float | None = Query(None, description="next_cursor of the previous page"),
) -> DatasetsPublic:
    records = svc.state.list_datasets(tenant, limit=limit, before=cursor)
    next_cursor = str(records[-1]["created_at"]) if len(records) == limit else None
    return DatasetsPublic(items=[dataset_public(r) for r in records], next_cursor=next_cursor)
