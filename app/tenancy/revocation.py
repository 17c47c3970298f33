"""Revoking an API key also revokes what its upload URLs may still write.

Presigned URLs cannot be withdrawn: a URL signed before a key was revoked stays valid until it
expires. Each dataset records the key that asked for its upload URL and when that URL expires;
a dataset whose URL outlived its key's revocation is refused at submission (409
``dataset.key_revoked``), since whoever held the revoked key may have written it.
"""

from __future__ import annotations

from app.core.domain import Dataset
from app.core.errors import Conflict
from app.usecases.services import Services


def refuse_revoked_upload(svc: Services, dataset: Dataset) -> None:
    """Refuse a dataset whose upload URL was still valid when the key that asked for it was
    revoked: whoever held the revoked key may have written it."""
    revoked_at = svc.keys.revoked_at(dataset.key_id) if dataset.key_id else None
    if revoked_at is not None and revoked_at < (dataset.upload_expires_at or 0):
        raise Conflict(
            f"Dataset '{dataset.id}' was created with an API key that has since been revoked, while "
            "its upload URL was still valid; its contents cannot be trusted.",
            code="dataset.key_revoked",
            hint="Create a new dataset with a current key and upload the data again.",
        )
