"""``/v1/datasets``: create (get an upload URL), inspect, list."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from app.api.dataset_parts import parts_created
from app.api.deps import ServicesDep, TenantDep
from app.api.errors import error_responses
from app.api.presenters import dataset_public
from app.api.schemas import DatasetCreate, DatasetCreated, DatasetPublic, DatasetsPublic
from app.core.storage import dataset_key
from app.inspection import record_limits
from app.usecases.datasets import create_dataset as new_dataset
from app.usecases.datasets import dataset_view
from app.usecases.models import delete_dataset as remove_dataset

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=error_responses(401, 422, 503))


@router.post(
    "",
    status_code=201,
    summary="Create a dataset; upload its Parquet bytes with upload_form (or upload_url)",
    responses=error_responses(400, 413, 429),
)
def create_dataset(
    request: Request, svc: ServicesDep, tenant: TenantDep, body: DatasetCreate | None = None
) -> DatasetCreated:
    """Step one of an upload: a dataset record and where to send the Parquet bytes, straight to
    the object store before `upload_expires_at`: a POST of `upload_form` (the store enforces the
    size limit) or, where the deployment allows it, a PUT to `upload_url`. Then read the dataset
    back: the first read after the upload checks the file's footer."""
    key_id = getattr(request.state, "api_key_id", None)
    if body is not None and body.parts:
        return parts_created(svc, tenant, body.name, body.parts, key_id=key_id)
    dataset, url, expires_at, max_bytes = new_dataset(svc, tenant, body.name if body else None, key_id=key_id)
    return DatasetCreated(
        **dataset_public(dataset).model_dump(),
        upload_url=url if svc.settings.upload_put_urls else None,
        upload_form=record_limits.upload_form(svc.store, dataset_key(tenant, dataset.id), max_bytes),
        upload_expires_at=expires_at,
    )


@router.get(
    "/{dataset_id}",
    summary="A dataset: state, size, rows, columns and their types",
    responses=error_responses(404),
)
def get_dataset(dataset_id: str, svc: ServicesDep, tenant: TenantDep) -> DatasetPublic:
    """The dataset as the store holds it now: `awaiting_upload` until the bytes arrive, then
    `uploaded` with rows and typed columns, or `invalid` with the `problem` (not Parquet, no rows,
    unusable types...). A fit or predict on an invalid dataset is refused with the same problem."""
    return dataset_public(dataset_view(svc, tenant, dataset_id))


@router.delete(
    "/{dataset_id}", status_code=204, summary="Delete a dataset's bytes and record", responses=error_responses(404)
)
def delete_dataset(dataset_id: str, svc: ServicesDep, tenant: TenantDep) -> Response:
    """Deletes the dataset. Jobs still queued on it fail with `dataset.deleted` when a worker takes
    them; running jobs already hold the data; models trained on it and finished predictions stay."""
    remove_dataset(svc, tenant, dataset_id)
    return Response(status_code=204)


@router.get("", summary="The tenant's datasets, newest first")
def list_datasets(
    svc: ServicesDep,
    tenant: TenantDep,
    limit: int = Query(50, ge=1, le=500),
    cursor: float | None = Query(None, allow_inf_nan=False, description="next_cursor of the previous page"),
) -> DatasetsPublic:
    """Your datasets, newest first, `limit` per page; pass `next_cursor` as `cursor` for the next."""
    datasets = svc.state.datasets.list(tenant, limit=limit, before=cursor)
    next_cursor = str(datasets[-1].created_at) if len(datasets) == limit else None
    return DatasetsPublic(items=[dataset_public(d) for d in datasets], next_cursor=next_cursor)
