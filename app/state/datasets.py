"""Dataset records: created with an upload URL, refreshed from what the store holds."""

from __future__ import annotations

import time
from typing import Any

from app.core import ids
from app.core.domain import Dataset, decode_fields, encode_fields, new_id
from app.core.errors import NotFound
from app.core.keys import Keys
from app.state.connection import Conn
from app.state.dataset_versions import DatasetVersions


class Datasets:
    def __init__(self, conn: Conn, keys: Keys) -> None:
        self.conn, self.keys = conn, keys

    def create(
        self, tenant: str, name: str | None = None, *, key_id: str | None = None, upload_expires_at: float | None = None
    ) -> Dataset:
        # Each upload under a name is that name's next version (app/state/dataset_versions.py).
        version = DatasetVersions(self.conn, self.keys).next_version(tenant, name) if name else None
        dataset = Dataset(
            id=new_id("ds"), tenant=tenant, state="awaiting_upload", created_at=time.time(), name=name,
            key_id=key_id, upload_expires_at=upload_expires_at, version=version,
        )  # fmt: skip
        pipe = self.conn.r.pipeline()
        pipe.hset(self.keys.dataset(dataset.id), mapping=encode_fields(dataset.to_fields()))
        pipe.zadd(self.keys.tenant(tenant, "datasets"), {dataset.id: dataset.created_at})
        if upload_expires_at is not None:  # swept if never uploaded (app/tenancy/retention.py)
            pipe.zadd(self.keys.awaiting_upload(), {f"{tenant}/{dataset.id}": upload_expires_at})
        if name and version is not None:
            DatasetVersions(self.conn, self.keys).add(pipe, tenant, name, version, dataset.id)
        pipe.execute()
        return dataset

    def get(self, tenant: str, dataset_id: str) -> Dataset:
        """The dataset, or NotFound when it does not exist or belongs to another tenant."""
        ids.require("ds", dataset_id)  # a malformed id never reaches a key
        found = self._get(dataset_id)
        if found is None or found.tenant != tenant:
            raise NotFound(f"No dataset with id '{dataset_id}'.", code="dataset.not_found")
        return found

    def update(self, dataset_id: str, **fields: Any) -> None:
        self.conn.r.hset(self.keys.dataset(dataset_id), mapping=encode_fields(fields))

    def delete(self, tenant: str, dataset_id: str) -> None:
        """Forget the dataset: its record and its place in the tenant's list (and its name's versions)."""
        found = self._get(dataset_id)
        pipe = self.conn.r.pipeline()
        if found is not None and found.name:
            DatasetVersions(self.conn, self.keys).remove(pipe, tenant, found.name, dataset_id)
        pipe.delete(self.keys.dataset(dataset_id))
        pipe.zrem(self.keys.tenant(tenant, "datasets"), dataset_id)
        pipe.zrem(self.keys.awaiting_upload(), f"{tenant}/{dataset_id}")
        pipe.execute()

    def upload_expired(self, before: float, *, limit: int) -> list[tuple[str, str]]:
        """(tenant, dataset id) of datasets whose upload URL expired before ``before`` (Unix
        seconds), uploaded or not, oldest first; ``forget_upload`` takes each off the list."""
        found = self.conn.r.zrangebyscore(self.keys.awaiting_upload(), "-inf", before, start=0, num=limit)
        return [tuple(member.split("/", 1)) for member in found]  # type: ignore[misc]

    def forget_upload(self, tenant: str, dataset_id: str) -> None:
        self.conn.r.zrem(self.keys.awaiting_upload(), f"{tenant}/{dataset_id}")

    def exists(self, dataset_id: str) -> bool:
        return bool(self.conn.r.exists(self.keys.dataset(dataset_id)))

    def list(self, tenant: str, *, limit: int, before: float | None) -> list[Dataset]:
        """The tenant's datasets, newest first, created strictly before ``before`` (Unix time)."""
        ids = self.conn.r.zrevrangebyscore(
            self.keys.tenant(tenant, "datasets"), f"({before}" if before else "+inf", "-inf", start=0, num=limit
        )
        return [d for d in (self._get(i) for i in ids) if d is not None]

    def _get(self, dataset_id: str) -> Dataset | None:
        raw = self.conn.r.hgetall(self.keys.dataset(dataset_id))
        return Dataset.from_fields(decode_fields(raw)) if raw else None
