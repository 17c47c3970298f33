"""Submitting a fit or predict job: validate, choose its lane, deduplicate, admit, queue."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from app.core.domain import LANES, Job, JobStatus, Lane, new_id
from app.core.errors import InfraError, TabjobError, UserError
from app.core.settings import Settings
from app.core.storage import ObjectInfo, prepared_key
from app.engines import routing
from app.jobs import broker as job_broker
from app.jobs.ending import end_job
from app.tenancy import idempotency, quotas
from app.tenancy.copies import remember_prepared
from app.usecases import estimates
from app.usecases.data_checks import CheckedData, check_data
from app.usecases.dedup import claim_fit, fingerprint
from app.usecases.families import ModelFamily, check_params
from app.usecases.job_request import JobRequest
from app.usecases.prepared import cache_key, content_digest
from app.usecases.registration import pin_evaluation, resolve_references
from app.usecases.services import Services
from app.usecases.steps import GPU_LANE, plan
from app.webhooks.delivery import check_webhook_url, seal_secret, sealing_key
from ml.schema import TARGET
from ml.tasks import CLASSIFICATION


@dataclass
class Submitted:
    """A job as returned to the submitter, and whether an existing job was returned instead."""

    job: Job
    deduplicated: bool = False
    replayed: bool = False


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


def check_request(svc: Services, tenant: str, request: JobRequest) -> None:
    """The checks of a submission that need no data read: its references resolve, its
    registration and webhook are acceptable (a schedule is checked so when it is created)."""
    if request.webhook_url:
        check_webhook(svc.settings, request.webhook_url)
    resolve_references(svc, tenant, request)


def _submit(svc: Services, tenant: str, job_id: str, request: JobRequest) -> Submitted:
    refuse_misplaced_options(request)
    # ``sales@latest`` and ``churn@champion`` are resolved once, here; the job keeps both.
    request, registered = resolve_references(svc, tenant, request)
    params = dict(request.params or {})
    if request.webhook_url:
        check_webhook(svc.settings, request.webhook_url)
    checked = check_data(svc, tenant, request)
    family = checked.family
    check_params(family, params)
    check_lane_for_family(svc, tenant, family, request.lane)
    quotas.admit_job(svc, tenant)  # jobs per minute, stored bytes (app/tenancy/quotas.py)
    engine = routing.choose_engine(svc, request, family.name, checked.rows, checked.columns, checked.in_parts)
    lane = choose_lane(svc, checked.info.size, checked.rows, request.lane)
    job = _new_job(svc, tenant, job_id, request, family, lane, checked.info, (checked.rows, checked.columns))
    job.dataset_ref, job.model_ref, job.register = registered.dataset_ref, registered.model_ref, registered.register
    _record_checks(job, request, checked, engine)
    if job.register is not None:
        pin_evaluation(svc, tenant, job)
    if family.two_steps and engine is None:
        _plan_steps(svc, job, checked.info, checked.features, requested_lane=request.lane)
    dedup = None
    # A fit is a pure function of the bytes, family, target, task, engine and parameters; a
    # registered fit is also a new version of its model, and a schedule's run is its own job:
    # those always train.
    scheduled = (request.actor or "").startswith("schedule:")
    if request.kind == "fit" and job.register is None and not scheduled:
        dedup = f"dedup:{tenant}:{fingerprint(checked.info, params, family.name, request.target, job)}"
        existing = claim_fit(svc, dedup, job_id)
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


def _record_checks(job: Job, request: JobRequest, checked: CheckedData, engine: str | None) -> None:
    """What the checks decided, on the job: a fit's task and evaluation data, a predict's task
    (its model's), the engine."""
    job.engine = engine
    if checked.task is not None:
        job.task, job.task_reason = checked.task.task, checked.task.reason
    if checked.evaluation is not None:
        job.evaluate_on, job.evaluate_etag = request.evaluate_on, checked.evaluation.etag
        job.evaluate_bytes = checked.evaluation.size
    if checked.model is not None:
        job.task = (checked.model.result or {}).get("task", CLASSIFICATION)


# Options one kind of job takes and the other does not: (kind refused, option, code, message, hint).
MISPLACED_OPTIONS = (
    ("fit", "model_id", "job.unexpected_model", "A fit job takes no model_id.", "Leave model_id out."),
    ("predict", "evaluate_on", "job.unexpected_evaluate_on",
     "A predict job takes no evaluate_on: a fit is scored on an evaluation dataset.",
     "Pass evaluate_on when you submit the fit, or predict the evaluation dataset and compare yourself."),
    ("fit", "passthrough", "job.unexpected_passthrough",
     "A fit job takes no passthrough: only a predict writes rows to join back.",
     "Pass passthrough with the predict job."),
)  # fmt: skip


def refuse_misplaced_options(request: JobRequest) -> None:
    """A fit takes ``evaluate_on``, a predict ``model_id`` and ``passthrough``: refuse
    an option given to the kind that does not take it (every way in: API, legacy routes, schedules)."""
    for kind, option, code, message, hint in MISPLACED_OPTIONS:
        if request.kind == kind and getattr(request, option):
            raise UserError(message, code=code, hint=hint, status=422)


def check_lane_for_family(svc: Services, tenant: str, family: ModelFamily, requested: str | None) -> None:
    """A CPU family never runs on the gpu lane; gpu-lane work needs the tenant's grant (app/tenancy/quotas.py)."""
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
    """Refuse a webhook when they are off, or when its URL may not be called (see app/webhooks/delivery.py)."""
    if not settings.webhooks_enabled:
        raise UserError(
            "Webhooks are turned off on this service.",
            code="webhook.disabled",
            hint="Leave webhook out and follow the job instead (tabjob wait, or GET /v1/jobs/{id}).",
            status=422,
        )
    check_webhook_url(url, allow_private=settings.webhook_allow_private_targets)


def _new_job(
    svc: Services, tenant: str, job_id: str, request: JobRequest, family: ModelFamily, lane: Lane,
    info: ObjectInfo, shape: tuple[int, int],
) -> Job:  # fmt: skip
    now, (rows, columns) = time.time(), shape
    job = Job(
        id=job_id, tenant=tenant, kind=request.kind, lane=lane, status=JobStatus.QUEUED, phase="queued",
        dataset_id=request.dataset_id, model_id=request.model_id, params=dict(request.params or {}),
        created_at=now, queued_at=now, dataset_bytes=info.size, dataset_rows=rows, dataset_etag=info.etag,
        time_limit_s=svc.settings.time_limit_s(lane), model=family.name, target=request.target,
        webhook_url=request.webhook_url, webhook_secret=_sealed(svc.settings, request.webhook_secret),
        passthrough=list(request.passthrough), probabilities=request.probabilities,
        queue_handicap_s=queue_handicap_s(svc.settings, rows, columns), cost_cells=rows * max(1, columns),
    )  # fmt: skip
    job.estimate = estimates.estimate(svc.state.conn.r, svc.state.keys, job)
    return job


def _sealed(settings: Settings, secret: str | None) -> str | None:
    """The webhook secret as the job record keeps it: sealed, never in plain text (app/webhooks/delivery.py)."""
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
    key = cache_key(
        content_digest(info), kind=job.kind, feature_schema=features if job.kind == "predict" else None,
        target=job.target if job.kind == "fit" else TARGET, task=job.task if job.kind == "fit" else CLASSIFICATION,
        passthrough=job.passthrough,
    )  # fmt: skip
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
