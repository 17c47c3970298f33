"""Datasets: create one (with its upload URL) and see what the store holds for it now."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.core.domain import Dataset
from app.core.errors import Conflict, TabjobError
from app.core.storage import ObjectInfo, dataset_key
from app.inspection.pool import InspectRequest, inspect
from app.inspection.record_limits import check_size
from app.tenancy import quotas
from app.tenancy.revocation import refuse_revoked_upload
from app.usecases.parts import parts_view
from app.usecases.services import Services


def create_dataset(
    svc: Services, tenant: str, name: str | None = None, *, key_id: str | None = None
) -> tuple[Dataset, str, datetime, int]:
    """A new dataset record, the presigned URL to PUT its bytes to (with its expiry), and the most
    bytes its upload may hold (the size limit, or what is left of the tenant's stored-bytes quota).

    ``key_id`` is the API key asking: if it is revoked while the URL lives, the data is refused.
    Refused (429/413 ``quota.*``) when a dataset quota is spent (app/tenancy/quotas.py)."""
    max_bytes = quotas.admit_dataset(svc, tenant)
    upload_expires_at = time.time() + svc.store.presign_expiry_s
    dataset = svc.state.datasets.create(tenant, name=name, key_id=key_id, upload_expires_at=upload_expires_at)
    quotas.record_upload_url(svc, tenant, dataset.id, upload_expires_at)
    url, expires_at = svc.store.presign_upload(dataset_key(tenant, dataset.id))
    return dataset, url, expires_at, max_bytes


def dataset_view(svc: Services, tenant: str, dataset_id: str) -> Dataset:
    """The dataset with what the store says of it now: state, size, rows and columns."""
    dataset = svc.state.datasets.get(tenant, dataset_id)
    if dataset.parts:
        return parts_view(svc, dataset)
    info = svc.store.stat(dataset_key(tenant, dataset_id))
    if info is None:
        return replace(dataset, state="awaiting_upload")
    if dataset.etag != info.etag:
        fields: dict[str, Any] = {"state": "uploaded", "size_bytes": info.size, "etag": info.etag}
        try:
            request = InspectRequest("describe", dataset_key(tenant, dataset_id), info)
            fields.update(inspect(svc.settings, request)["described"])
            fields["problem"] = None
        except TabjobError as exc:
            if exc.retryable:
                raise
            fields.update(state="invalid", problem=exc.to_dict(), rows=None, columns=None)
        svc.state.datasets.update(dataset_id, **fields)
        dataset = replace(dataset, **fields)
    return dataset


def uploaded(svc: Services, tenant: str, dataset_id: str) -> ObjectInfo:
    """The uploaded dataset's object info; refused when missing, not uploaded or too large."""
    dataset = svc.state.datasets.get(tenant, dataset_id)  # 404 for unknown ids and other tenants' ids
    refuse_revoked_upload(svc, dataset)  # a revoked key's upload URLs may have written it
    info = svc.store.stat(dataset_key(tenant, dataset_id))
    if info is None:
        raise Conflict(
            f"Dataset '{dataset_id}' has not been uploaded yet.",
            code="dataset.not_uploaded",
            hint="PUT the Parquet bytes to the upload URL first, then submit the job.",
        )
    check_size(info, svc.settings.max_dataset_bytes)
    return info
