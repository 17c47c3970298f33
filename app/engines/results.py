"""Downloading a prediction the Dask engine wrote in parts (one Parquet file per input part)."""

from __future__ import annotations

from datetime import datetime

from app.core.storage import result_key, result_part_key
from app.usecases import jobs as job_actions
from app.usecases.services import Services


def result_downloads(svc: Services, tenant: str, job_id: str) -> tuple[str, datetime, list[str] | None]:
    """The presigned URL(s) of a finished prediction: ``url`` (the first part's, for a prediction in
    parts), its expiry, and ``urls``, every part in order, when it was written in several parts."""
    url, expires_at = job_actions.result_download(svc, tenant, job_id)  # refuses what has no result
    job = svc.state.jobs.get_for(tenant, job_id)
    parts = int((job.result or {}).get("parts") or 1)  # a Dask predict writes a part per input part
    if parts == 1:
        return url, expires_at, None
    name = f"{job_id}-part-{{:05d}}.parquet"
    urls = [svc.store.presign_download(result_part_key(tenant, job_id, i), filename=name.format(i))[0]
            for i in range(parts)]  # fmt: skip
    return urls[0], expires_at, urls


def result_keys(tenant: str, job_id: str, parts: int) -> list[str]:
    """Where a predict of ``parts`` parts writes: the single result key for one part, else a key per part."""
    if parts == 1:
        return [result_key(tenant, job_id)]
    return [result_part_key(tenant, job_id, i) for i in range(parts)]
