"""Every copy of a dataset's bytes: the upload itself and the prepared matrices made from it.

A prepared matrix (``tenants/<t>/prepared/<key>.arrow``, the whole feature matrix) is named by
the dataset's content, so it cannot be found from the dataset's id; submission records each one
it plans under the dataset (``remember_prepared``), and deleting the dataset, by its owner or by
the retention sweep, removes them all with it. The fit's matrix is also found from the content
digest alone, so a lost index still cannot leave the largest copy behind.
"""

from __future__ import annotations

from app.core.storage import ObjectInfo, Store, dataset_key, prepared_key
from app.state import State
from app.tenancy.quotas import forget_stored_bytes
from app.usecases.prepared import cache_key, content_digest


def _index(state: State, dataset_id: str) -> str:
    return f"tabjob:prepared-of:{dataset_id}"


def remember_prepared(state: State, dataset_id: str, key: str, ttl_s: int) -> None:
    """Note that the prepared matrix at ``key`` was made (or will be) from ``dataset_id``."""
    name = _index(state, dataset_id)
    pipe = state.conn.r.pipeline()
    pipe.sadd(name, key)
    pipe.expire(name, ttl_s)
    pipe.execute()


def delete_every_copy(state: State, store: Store, tenant: str, dataset_id: str) -> list[str]:
    """Remove the dataset's bytes and every prepared matrix made from them; return the keys removed."""
    key = dataset_key(tenant, dataset_id)
    info: ObjectInfo | None = store.stat(key)
    copies = set(state.conn.r.smembers(_index(state, dataset_id)) or ())
    if info is not None:
        copies.add(prepared_key(tenant, cache_key(content_digest(info), kind="fit")))
    removed = []
    for copy in sorted(copies):
        if copy.startswith(f"tenants/{tenant}/prepared/"):  # never another tenant's key, whatever the index says
            store.remove(copy)
            removed.append(copy)
    store.remove(key)
    state.conn.r.delete(_index(state, dataset_id))
    forget_stored_bytes(state, tenant)
    return [key, *removed]
