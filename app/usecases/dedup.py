"""Deduplication of fits: a fit is a pure function of its bytes and what it was asked to learn,
so an identical one returns the job that already holds the same fingerprint."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.core.domain import Job, JobStatus
from app.core.storage import ObjectInfo
from app.usecases.services import Services
from ml.schema import TARGET
from ml.tasks import CLASSIFICATION


def claim_fit(svc: Services, claim: str, job_id: str) -> Job | None:
    """Claim the deduplication key of a fit, or return the live job that holds it."""

    def stale(held: str) -> bool:  # a failed, canceled, expired or deleted holder is not reused
        holder = svc.state.jobs.get(held)
        return (
            holder is None
            or holder.status in (JobStatus.FAILED, JobStatus.CANCELED)
            or holder.model_deleted_at is not None
        )

    holder = svc.state.claims.claim(claim, job_id, svc.settings.job_retention_s, stale=stale)
    return None if holder == job_id else svc.state.jobs.get(holder)


def fingerprint(info: ObjectInfo, params: dict[str, Any], family: str, target: str, job: Job | None = None) -> str:
    # The ETag of a single PUT is the MD5 of its bytes: byte-identical uploads share it.
    what: dict[str, Any] = {"etag": info.etag, "size": info.size, "params": params}
    if family != "hgb":  # hgb fits keep the fingerprints they had before families existed
        what["model"] = family
    if target != TARGET:  # and fits of y the fingerprints they had before targets
        what["target"] = target
    if job is not None and job.task != CLASSIFICATION:  # and classifications theirs before tasks
        what["task"] = job.task
    if job is not None and job.evaluate_on:  # a fit scored on other data reports other metrics
        what["evaluate_on"] = [job.evaluate_etag, job.evaluate_bytes]
    if job is not None and job.engine:  # a Dask fit trains a different model from the same bytes
        what["engine"] = job.engine
    material = json.dumps(what, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:32]
