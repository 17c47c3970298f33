"""Per-tenant quotas and entitlements: what one tenant may hold and do, set per tenant by an admin.

Quotas: datasets held, bytes of datasets stored, jobs submitted per minute, uploads waiting at
once. Each refusal names its quota in the code (``quota.<name>``), says the limit and when it
frees (``Retry-After`` where time frees it). Defaults come from the settings; ``tabjob admin
tenant-policy`` stores a tenant's own values in Valkey (``tabjob:tenant-policy:<tenant>``).

Entitlement: the gpu lane (its nodes cost money and its time limit is hours) is granted per
tenant. With auth off (a laptop's single tenant) it is granted by default.

A submission checks the stored bytes of a listing at most ``STORED_BYTES_FRESH_S`` old, taken
after the tenant last created or deleted a dataset (both drop the kept total); creating a dataset
and ``GET /v1/usage`` list afresh. So an upload, then a submission, is counted at once; bytes that
land while another submission lists are counted within ``STORED_BYTES_FRESH_S``.

Datasets never uploaded are forgotten once their upload URL has been expired for
``dataset_upload_grace_s``: they no longer count, and their records go.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import Any

from app.core.errors import Conflict, TooLarge, TooManyJobs
from app.core.settings import Settings
from app.core.storage import Store, dataset_key
from app.state import State
from app.usecases.services import Services

GPU = "gpu"
# How long a listing's total of stored bytes answers the submissions that follow: a burst of jobs
# lists the tenant's datasets once, not once each (a listing was 40% of a submission's time on the
# embedded stack). Uploads go straight to the store, so a submission may see a total this old;
# a deletion forgets it at once (forget_stored_bytes).
STORED_BYTES_FRESH_S = 2.0
# How a refusal tells when a quota frees, when only the tenant's own deletions free it.
FREED_BY_DELETING = "when you delete datasets (tabjob datasets, DELETE /v1/datasets/{id})"


@dataclass(frozen=True)
class TenantPolicy:
    """One tenant's limits (the settings' defaults where an admin set none) and its gpu grant."""

    datasets: int
    stored_bytes: int
    jobs_per_minute: int
    concurrent_uploads: int
    gpu: bool


QUOTA_NAMES = tuple(f.name for f in fields(TenantPolicy) if f.name != GPU)


def _policy_key(tenant: str) -> str:
    return f"tabjob:tenant-policy:{tenant}"


def _uploads_key(tenant: str) -> str:
    return f"tabjob:uploads:{tenant}"


def _rate_key(tenant: str, minute: int) -> str:
    return f"tabjob:jobs-per-minute:{tenant}:{minute}"


def _stored_bytes_key(tenant: str) -> str:
    return f"tabjob:stored-bytes:{tenant}"


def policy(state: State, settings: Settings, tenant: str) -> TenantPolicy:
    """The tenant's policy: the admin's values over the settings' defaults."""
    return _policy_of(state.conn.r.hgetall(_policy_key(tenant)) or {}, settings)


def _policy_of(stored: dict[str, str], settings: Settings) -> TenantPolicy:
    values: dict[str, Any] = {name: int(stored.get(name) or getattr(settings, f"quota_{name}")) for name in QUOTA_NAMES}
    values[GPU] = stored[GPU] == "1" if GPU in stored else not settings.auth_enabled
    return TenantPolicy(**values)


def set_policy(state: State, tenant: str, **values: int | bool | None) -> None:
    """Store the tenant's own values (None: back to the default)."""
    key = _policy_key(tenant)
    for name, value in values.items():
        if name not in QUOTA_NAMES and name != GPU:
            raise ValueError(f"unknown quota {name!r}; known: {', '.join((*QUOTA_NAMES, GPU))}")
        if value is None:
            state.conn.r.hdel(key, name)
        else:
            state.conn.r.hset(key, name, ("1" if value else "0") if name == GPU else str(int(value)))


def stored_bytes(state: State, store: Store, tenant: str) -> int:
    """Bytes of the tenant's datasets in the store now (``_listed_bytes``), kept
    ``STORED_BYTES_FRESH_S`` for the submissions that follow (``admit_job``)."""
    used = _listed_bytes(store, tenant)
    state.conn.r.set(_stored_bytes_key(tenant), used, px=int(STORED_BYTES_FRESH_S * 1000))
    return used


def _listed_bytes(store: Store, tenant: str) -> int:
    """Bytes of the tenant's datasets in the store now (one listing: the datasets quota bounds it)."""
    prefix = dataset_key(tenant, "x").rsplit("/", 1)[0] + "/"
    return sum(item.size or 0 for item in store.client.list_objects(store.bucket, prefix=prefix, recursive=True))


def forget_stored_bytes(state: State, tenant: str) -> None:
    """A deletion frees bytes now: the next submission lists again (a tenant told to delete
    datasets to get under the quota is not refused on the figure from before)."""
    state.conn.r.delete(_stored_bytes_key(tenant))


def forget_never_uploaded(svc: Services, tenant: str, now: float | None = None) -> list[str]:
    """Delete the records of the tenant's datasets whose upload URL expired more than
    ``dataset_upload_grace_s`` ago with nothing uploaded; return their ids."""
    now = time.time() if now is None else now
    key = _uploads_key(tenant)
    forgotten = []
    for dataset_id in svc.state.conn.r.zrangebyscore(key, "-inf", now - svc.settings.dataset_upload_grace_s):
        if svc.store.stat(dataset_key(tenant, dataset_id)) is None:
            svc.state.datasets.delete(tenant, dataset_id)
            forgotten.append(dataset_id)
        svc.state.conn.r.zrem(key, dataset_id)
    return forgotten


def _waiting_uploads(svc: Services, tenant: str, now: float) -> list[tuple[str, float]]:
    """The tenant's datasets whose upload URL is valid and whose bytes have not arrived."""
    key = _uploads_key(tenant)
    waiting = []
    for dataset_id, expires_at in svc.state.conn.r.zrangebyscore(key, now, "+inf", withscores=True):
        if svc.store.stat(dataset_key(tenant, dataset_id)) is None:
            waiting.append((dataset_id, expires_at))
    return waiting


def admit_dataset(svc: Services, tenant: str) -> int:
    """Check the dataset quotas before a new dataset is created; return the most bytes its upload
    may hold (the size limit, or what is left of the stored-bytes quota, whichever is smaller).

    Raises:
      TooManyJobs: 429 ``quota.datasets`` or ``quota.concurrent_uploads``.
      TooLarge: 413 ``quota.stored_bytes`` when nothing is left of it.
    """
    now = time.time()
    limits = policy(svc.state, svc.settings, tenant)
    held = svc.state.conn.r.zcard(svc.state.keys.tenant(tenant, "datasets"))
    if held >= limits.datasets and forget_never_uploaded(svc, tenant, now):
        held = svc.state.conn.r.zcard(svc.state.keys.tenant(tenant, "datasets"))
    if held >= limits.datasets:
        raise _refused("datasets", f"You hold {held:,} datasets; your quota is {limits.datasets:,}.", FREED_BY_DELETING)
    if svc.state.conn.r.zcount(_uploads_key(tenant), now, "+inf") >= limits.concurrent_uploads:
        waiting = _waiting_uploads(svc, tenant, now)
        if len(waiting) >= limits.concurrent_uploads:
            free_in = max(1, int(min(expires for _, expires in waiting) - now) + 1)
            raise _refused(
                "concurrent_uploads",
                f"{len(waiting):,} of your datasets wait for their upload; "
                f"your quota is {limits.concurrent_uploads:,}.",
                f"when one is uploaded, or in {free_in} s when the oldest upload URL expires",
                retry_after_s=free_in,
            )
    # Listed afresh, and not kept: this dataset's bytes are about to arrive, and the submission
    # that follows its upload must count them (forget_stored_bytes drops an earlier total).
    forget_stored_bytes(svc.state, tenant)
    left = limits.stored_bytes - _listed_bytes(svc.store, tenant)
    if left <= 0:
        raise _refused(
            "stored_bytes",
            f"Your datasets take {limits.stored_bytes - left:,} bytes; your quota is {limits.stored_bytes:,}.",
            FREED_BY_DELETING,
        )
    return min(svc.settings.max_dataset_bytes, left)


def record_upload_url(svc: Services, tenant: str, dataset_id: str, expires_at: float) -> None:
    """Count the dataset as waiting for its upload until ``expires_at`` (Unix seconds)."""
    svc.state.conn.r.zadd(_uploads_key(tenant), {dataset_id: expires_at})


def forget_upload_url(state: State, tenant: str, dataset_id: str) -> None:
    """Stop counting the dataset as waiting for its upload (the retention sweep deleted it)."""
    state.conn.r.zrem(_uploads_key(tenant), dataset_id)


def admit_job(svc: Services, tenant: str) -> None:
    """Count a submission against the tenant's jobs-per-minute quota, and refuse it while the
    tenant's datasets are over the stored-bytes quota (a PUT URL cannot bound an upload's size).

    Raises:
      TooManyJobs: 429 ``quota.jobs_per_minute`` with ``Retry-After`` (seconds to the next minute).
      TooLarge: 413 ``quota.stored_bytes``.
    """
    now = time.time()
    minute = int(now // 60)
    # One round trip: the policy, the minute's count, and the stored bytes of a recent listing.
    pipe = svc.state.conn.r.pipeline(transaction=False)
    pipe.hgetall(_policy_key(tenant))
    pipe.incr(_rate_key(tenant, minute))
    pipe.expire(_rate_key(tenant, minute), 120)
    pipe.get(_stored_bytes_key(tenant))
    stored, count, _, recent = pipe.execute()
    limits = _policy_of(stored or {}, svc.settings)
    if count > limits.jobs_per_minute:
        free_in = max(1, 60 - int(now % 60))
        raise _refused(
            "jobs_per_minute",
            f"You submitted {limits.jobs_per_minute:,} jobs this minute, your quota.",
            f"in {free_in} s, when the minute ends",
            retry_after_s=free_in,
        )
    used = int(recent) if recent is not None else stored_bytes(svc.state, svc.store, tenant)
    if used > limits.stored_bytes:
        raise _refused(
            "stored_bytes",
            f"Your datasets take {used:,} bytes; your quota is {limits.stored_bytes:,}.",
            FREED_BY_DELETING,
        )


def check_gpu(svc: Services, tenant: str) -> None:
    """Refuse gpu-lane work (a two-step family's model step) to a tenant not granted it (403)."""
    if not policy(svc.state, svc.settings, tenant).gpu:
        raise Conflict(
            "The gpu lane is not granted to your tenant.",
            code="job.gpu_not_granted",
            hint="Fit the default model (hgb) on a CPU lane, or ask an operator to grant the gpu lane "
            "(tabjob admin tenant-policy --tenant NAME --gpu).",
            status=403,
        )


def usage(svc: Services, tenant: str) -> dict[str, Any]:
    """What the tenant uses of each quota, the limits, and whether the gpu lane is granted."""
    now = time.time()
    forget_never_uploaded(svc, tenant, now)
    limits = policy(svc.state, svc.settings, tenant)
    used = {
        "datasets": svc.state.conn.r.zcard(svc.state.keys.tenant(tenant, "datasets")),
        "stored_bytes": stored_bytes(svc.state, svc.store, tenant),
        "jobs_per_minute": int(svc.state.conn.r.get(_rate_key(tenant, int(now // 60))) or 0),
        "concurrent_uploads": len(_waiting_uploads(svc, tenant, now)),
    }
    return {
        "tenant": tenant,
        "quotas": [{"name": name, "used": used[name], "limit": asdict(limits)[name]} for name in QUOTA_NAMES],
        "gpu_lane": limits.gpu,
    }


def _refused(name: str, message: str, frees: str, *, retry_after_s: int | None = None) -> TooManyJobs | TooLarge:
    cls = TooLarge if name == "stored_bytes" else TooManyJobs
    return cls(
        f"{message} It frees {frees}.",
        code=f"quota.{name}",
        hint="Ask an operator to raise it (tabjob admin tenant-policy) if you need more.",
        headers={"Retry-After": str(retry_after_s)} if retry_after_s else None,
    )
