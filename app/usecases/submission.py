"""Submitting a fit or predict job: validate, choose its lane, deduplicate, admit, queue."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from app import idempotency, quotas
from app.copies import remember_prepared
from app.domain import LANES, Job, JobKind, JobStatus, Lane, new_id
from app.errors import InfraError, TabjobError, UserError
from app.jobs import broker as job_broker
from app.jobs.ending import end_job
from app.services import Services
from app.settings import Settings
from app.steps import GPU_LANE, plan
from app.storage import ObjectInfo, prepared_key
from app.usecases.families import ModelFamily, check_params, choose_family
from app.usecases.prepared import cache_key, content_digest
from app.usecases.validation import validate_fit, validate_predict
from app.webhooks import check_target, seal_secret, sealing_key
from ml.schema import TARGET


@dataclass
class Submitted:
    """A job as returned to the submitter, and whether an existing job was returned instead."""

    job: Job
    deduplicated: bool = False
    replayed: bool = False


@dataclass(frozen=True)
class JobRequest:
    """What the submitter asked for."""

    kind: JobKind
    dataset_id: str
    model_id: str | None = None
    params: dict[str, Any] | None = None
    lane: str | None = None
    target: str = TARGET
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # The model family of a fit (default hgb); a predict's is its model's.
    model: str | None = None


def submit(svc: Services, tenant: str, request: JobRequest, *, idempotency_key: str | None = None) -> Submitted:
    """Validate and queue a fit or predict job (or return the job it duplicates or replays)."""
    job_id = new_id("job")
    if not idempotency_key:
        return _submit(svc, tenant, job_id, request)
    claim = idempotency.claim_key(tenant, idempotency_key)
    digest = idempotency.request_digest({**asdict(request), "params": dict(request.params or {})})
    earlier = idempotency.claim(svc, claim, digest, job_id)
    if earlier is not None:
        return Submitted(job=earlier, replayed=True)
    try:
        done = _submit(svc, tenant, job_id, request)
    except BaseException:
        svc.state.claims.forget(claim)  # ours (pending): a retry may try again
        raise
    idempotency.settle(svc, claim, digest, done.job.id)
    return done


def _claim_fit(svc: Services, claim: str, job_id: str) -> Job | None:
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


def choose_lane(svc: Services, size_bytes: int, rows: int, requested: str | None) -> Lane:
    """The lane for a job: asked for explicitly, else ``large`` for big datasets, else ``small``."""
    s = svc.settings
    automatic: Lane = "large" if size_bytes >= s.lane_large_min_bytes or rows >= s.lane_large_min_rows else "small"
    if not requested or requested == "auto":
        return automatic
    if requested not in LANES:
        raise UserError(
            f"Unknown lane '{requested}'.", code="job.invalid_lane", hint=f"Use one of {', '.join(LANES)} or auto."
        )
    if requested == "small" and automatic == "large":
        # The small lane's promise is that toy jobs never wait behind big ones.
        raise UserError(
            f"This dataset ({size_bytes:,} bytes, {rows:,} rows) is too big for the small lane.",
            code="job.lane_too_small",
            hint="Leave the lane on auto, or choose large.",
            status=422,
        )
    return requested  # type: ignore[return-value]


def _fingerprint(info: ObjectInfo, params: dict[str, Any], family: str, target: str) -> str:
    # The ETag of a single PUT is the MD5 of its bytes: byte-identical uploads share it.
    what: dict[str, Any] = {"etag": info.etag, "size": info.size, "params": params}
    if family != "hgb":  # hgb fits keep the fingerprints they had before families existed
        what["model"] = family
    if target != TARGET:  # and fits of y the fingerprints they had before targets
        what["target"] = target
    material = json.dumps(what, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _submit(svc: Services, tenant: str, job_id: str, request: JobRequest) -> Submitted:
    params = dict(request.params or {})
    if request.webhook_url:
        check_webhook(svc.settings, request.webhook_url)
    features = None
    if request.kind == "fit":
        family = choose_family("fit", request.model)
        if family.two_steps and request.target != TARGET:
            raise UserError(
                f"A '{family.name}' fit learns the column '{TARGET}' only; naming another target is not supported yet.",
                code="job.target_unsupported",
                hint=f"Rename the label column to '{TARGET}', or fit the default model (hgb), which takes a target.",
                status=422,
            )
        info, rows, columns = validate_fit(svc, tenant, request.dataset_id, request.target)
    else:
        assert request.model_id is not None
        info, rows, columns = validate_predict(svc, tenant, request.dataset_id, request.model_id)
        model = svc.state.jobs.get_for(tenant, request.model_id)
        family = choose_family("predict", request.model, model.model)
        features = (model.result or {}).get("features")
    check_params(family, params)
    check_lane_for_family(svc, tenant, family, request.lane)
    quotas.admit_job(svc, tenant)  # jobs per minute, stored bytes (app/quotas.py)
    lane = choose_lane(svc, info.size, rows, request.lane)
    job = _new_job(svc, tenant, job_id, request, family, lane, info, (rows, columns))
    if family.two_steps:
        _plan_steps(svc, job, info, features, requested_lane=request.lane)
    dedup = None
    if request.kind == "fit":  # a fit is a pure function of the bytes, family, target and parameters
        dedup = f"dedup:{tenant}:{_fingerprint(info, params, family.name, request.target)}"
        existing = _claim_fit(svc, dedup, job_id)
        if existing is not None:
            return Submitted(job=existing, deduplicated=True)
    try:
        svc.state.jobs.admit(tenant, job_id, svc.settings.tenant_max_queued)
    except TabjobError:
        if dedup:
            svc.state.claims.forget(dedup)
        raise
    job.dedup_key = dedup
    svc.state.jobs.create(job)
    if job.steps and job.steps[0]["status"] == "skipped":
        text = "Step prepare skipped: the prepared matrix of these bytes is already in the store."
        svc.state.events.add(job.id, "step_skipped", text, step="prepare")
    _enqueue(svc, job)
    return Submitted(job=job)


def check_lane_for_family(svc: Services, tenant: str, family: ModelFamily, requested: str | None) -> None:
    """A CPU family never runs on the gpu lane; gpu-lane work needs the tenant's grant (app/quotas.py)."""
    if not family.two_steps and requested == GPU_LANE:
        raise UserError(
            f"A '{family.name}' model runs on CPU lanes only; the gpu lane is for GPU families.",
            code="job.cpu_family_on_gpu",
            hint="Leave the lane on auto (or small, large), or fit a GPU family (model: xgboost).",
            status=422,
        )
    if family.two_steps:
        quotas.check_gpu(svc, tenant)


def check_webhook(settings: Settings, url: str) -> None:
    """Refuse a webhook when they are off, or when its URL may not be called (see app/webhooks.py)."""
    if not settings.webhooks_enabled:
        raise UserError(
            "Webhooks are turned off on this service.",
            code="webhook.disabled",
            hint="Leave webhook out and follow the job instead (tabjob wait, or GET /v1/jobs/{id}).",
            status=422,
        )
    check_target(url, allow_private=settings.webhook_allow_private_targets)


def _new_job(
    svc: Services, tenant: str, job_id: str, request: JobRequest, family: ModelFamily, lane: Lane,
    info: ObjectInfo, shape: tuple[int, int],
) -> Job:  # fmt: skip
    now, (rows, columns) = time.time(), shape
    return Job(
        id=job_id, tenant=tenant, kind=request.kind, lane=lane, status=JobStatus.QUEUED, phase="queued",
        dataset_id=request.dataset_id, model_id=request.model_id, params=dict(request.params or {}),
        created_at=now, queued_at=now, dataset_bytes=info.size, dataset_rows=rows, dataset_etag=info.etag,
        time_limit_s=svc.settings.time_limit_s(lane), model=family.name, target=request.target,
        webhook_url=request.webhook_url, webhook_secret=_sealed(svc.settings, request.webhook_secret),
        queue_handicap_s=queue_handicap_s(svc.settings, rows, columns), cost_cells=rows * max(1, columns),
    )  # fmt: skip


def _sealed(settings: Settings, secret: str | None) -> str | None:
    """The webhook secret as the job record keeps it: sealed, never in plain text (app/webhooks.py)."""
    return seal_secret(sealing_key(settings), secret) if secret else None


def queue_handicap_s(settings: Settings, rows: int, columns: int) -> float:
    """Short jobs first: the seconds a job's estimated cost (rows x columns, from the Parquet
    footer) adds to its queue time when its lane orders waiting work, capped so a big job
    never waits behind jobs queued more than ``queue_handicap_max_s`` after it (aging)."""
    cells = rows * max(1, columns)
    return min(cells / 1e6 * settings.queue_handicap_s_per_million_cells, settings.queue_handicap_max_s)


def _plan_steps(
    svc: Services, job: Job, info: ObjectInfo, features: dict[str, Any] | None, *, requested_lane: str | None
) -> None:
    """Make ``job`` a two-step job: ``prepare`` on its CPU lane (skipped when the prepared
    matrix of these bytes is already in the store), then ``model`` on the gpu lane. Its time
    limit, the gpu lane's, counts both steps."""
    if requested_lane == GPU_LANE:
        raise UserError(
            f"A '{job.model}' job prepares its data on a CPU lane, then runs its model on the gpu lane by itself.",
            code="job.invalid_lane",
            hint="Leave the lane on auto, or choose small or large for the prepare step.",
            status=422,
        )
    key = cache_key(content_digest(info), kind=job.kind, feature_schema=features if job.kind == "predict" else None)
    job.prepared_key = prepared_key(job.tenant, key)
    remember_prepared(svc.state, job.dataset_id, job.prepared_key, svc.settings.job_retention_s)
    prepared = svc.store.stat(job.prepared_key) is not None
    job.steps = plan(job.lane, prepared=prepared)
    if prepared:
        job.lane = GPU_LANE
    job.time_limit_s = svc.settings.time_limit_s(GPU_LANE)


def _enqueue(svc: Services, job: Job) -> None:
    try:
        job_broker.enqueue(svc.broker, job.id, job.lane)
    except Exception as exc:
        # No message, no job: end the record and free what it holds, so nothing waits forever
        # and later identical submissions are not deduplicated onto it.
        error = InfraError("The job could not be queued; the broker failed.", code="platform.unavailable")
        end_job(
            svc.state, svc.store, job, JobStatus.FAILED, f"{error.code}: {error.message}",
            error=error.to_dict(), notifier=svc.notifier,
        )  # fmt: skip
        if job.dedup_key:
            svc.state.claims.forget(job.dedup_key)
        raise error from exc
