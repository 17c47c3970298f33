"""The answer to ``POST /v1/datasets {"parts": K}``: the dataset and one upload form per part."""

from __future__ import annotations

from app.api.presenters import dataset_public
from app.api.schemas import DatasetCreated, UploadForm
from app.usecases.parts import create_parts_dataset
from app.usecases.services import Services


def parts_created(svc: Services, tenant: str, name: str | None, parts: int, *, key_id: str | None) -> DatasetCreated:
    """A new dataset in ``parts`` parts with its size-bounded upload forms (no PUT URLs: each part
    is bounded by the store like a single file)."""
    dataset, forms, expires_at = create_parts_dataset(svc, tenant, name, parts, key_id=key_id)
    return DatasetCreated(
        **dataset_public(dataset).model_dump(),
        upload_url=None,
        upload_forms=[UploadForm(**form) for form in forms],  # type: ignore[arg-type]
        upload_expires_at=expires_at,  # type: ignore[arg-type]
    )
