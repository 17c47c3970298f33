"""What happens when a user creates a dataset or submits, cancels or downloads a job.

Shared by the legacy routes and ``/v1``. Bad data is refused here, at submission, from the
Parquet footer and (for fits) the ``y`` column alone; only jobs that can run are queued.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from app.errors import Conflict, InfraError, TabjobError, UserError
from app.inspection import check_size, data_error, describe, open_footer, read_column
from app.jobs import actors
from app.observability import metrics
from app.services import Services
from app.settings import LANES, Settings
from app.state import TERMINAL, ensure_cancelable, new_id
from app.storage import ObjectInfo, dataset_key, result_key
from ml.errors import DataProblem
from ml.schema import TARGET, check_predict_schema, check_target, check_training_schema


@dataclass
class Submitted:
    """A job as returned to the submitter, and whether an existing job was returned instead."""

    job: dict[str, Any]
    deduplicated: bool = False
    replayed: bool = False


def create_dataset(svc: Services, tenant: str, name: str | None = None) -> tuple[dict[str, Any], str, Any]:
    """A new dataset record and the presigned URL to PUT its bytes to (with its expiry)."""
    record = svc.state.create_dataset(tenant, name=name)
    url, expires_at = svc.store.presign_upload(dataset_key(tenant, record["id"]))
    return record, url, expires_at


def dataset_view(svc: Services, tenant: str, dataset_id: str) -> dict[str, Any]:
    """The dataset with what the store says of it now: state, size, rows and columns."""
    record = svc.state.get_dataset(tenant, dataset_id)
    info = svc.store.stat(dataset_key(tenant, dataset_id))
    if info is None:
        return {**record, "state": "awaiting_upload"}
    if record.get("etag") != info.etag:
        fields: dict[str, Any] = {"state": "uploaded", "size_bytes": info.size, "etag": info.etag}
        try:
            check_size(info, svc.settings.max_dataset_bytes)
            fields.update(describe(open_footer(svc.store, dataset_key(tenant, dataset_id), info)))
            fields["problem"] = None
        except TabjobError as exc:
            if exc.retryable:
                raise
            fields.update(state="invalid", problem=exc.to_dict(), rows=None, columns=None)
        svc.state.update_dataset(dataset_id, **fields)
        record.update(fields)
    return record


def _uploaded(svc: Services, tenant: str, dataset_id: str) -> ObjectInfo:
    svc.state.get_dataset(tenant, dataset_id)  # 404 for unknown ids and other tenants' ids
    info = svc.store.stat(dataset_key(tenant, dataset_id))
    if info is None:
        raise Conflict(
            f"Dataset '{dataset_id}' has not been uploaded yet.",
            code="dataset.not_uploaded",
            hint="PUT the Parquet bytes to the upload URL first, then submit the job.",
        )
    check_size(info, svc.settings.max_dataset_bytes)
    return info


def choose_lane(svc: Services, size_bytes: int, rows: int, requested: str | None) -> str:
    """The lane for a job: asked for explicitly, else ``large`` for big datasets, else ``small``."""
    s = svc.settings
    automatic = "large" if size_bytes >= s.lane_large_min_bytes or rows >= s.lane_large_min_rows else "small"
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
    return requested


def validate_fit(svc: Services, tenant: str, dataset_id: str) -> tuple[ObjectInfo, int]:
    """Refuse a training set that cannot train; return its object info and row count."""
    info = _uploaded(svc, tenant, dataset_id)
    source = open_footer(svc.store, dataset_key(tenant, dataset_id), info)
    try:
        check_training_schema(source.schema_arrow, source.metadata.num_rows)
        check_target(read_column(source, TARGET))
    except DataProblem as problem:
        raise data_error(problem) from problem
    return info, source.metadata.num_rows


def validate_predict(svc: Services, tenant: str, dataset_id: str, model_id: str) -> tuple[ObjectInfo, int]:
    """Refuse prediction data that does not fit the model; return its object info and rows."""
    model = svc.state.get_job_for(tenant, model_id)
    if model["kind"] != "fit":
        raise UserError(
            f"Job '{model_id}' is a {model['kind']} job, not a model.",
            code="model.not_a_model",
            hint="Pass the id of a fit job as the model.",
        )
    if model["status"] != "finished":
        waiting = model["status"] in ("queued", "started")
        raise Conflict(
            f"Model '{model_id}' is {'still being trained' if waiting else 'not usable'} (status {model['status']}).",
            code="model.not_ready" if waiting else "model.not_usable",
            hint=f"Wait for it to finish (tabjob wait {model_id}), then submit again."
            if waiting
            else "Train a new model.",
        )
    info = _uploaded(svc, tenant, dataset_id)
    source = open_footer(svc.store, dataset_key(tenant, dataset_id), info)
    try:
        check_predict_schema(source.schema_arrow, source.metadata.num_rows, model["result"]["features"]["columns"])
    except DataProblem as problem:
        raise data_error(problem) from problem
    return info, source.metadata.num_rows


def _fingerprint(info: ObjectInfo, params: dict[str, Any]) -> str:
    # The ETag of a single PUT is the MD5 of its bytes: byte-identical uploads share it.
    material = json.dumps({"etag": info.etag, "size": info.size, "params": params}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def submit(
    svc: Services,
    tenant: str,
    *,
    kind: str,
    dataset_id: str,
    model_id: str | None = None,
    params: dict[str, Any] | None = None,
    lane: str | None = None,
    idempotency_key: str | None = None,
) -> Submitted:
    """Validate and queue a fit or predict job (or return the job it duplicates or replays)."""
    job_id = new_id("job")
    idem = None
    if idempotency_key:
        idem = f"idem:{tenant}:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"
        earlier = _claim_idempotency(svc, idem, job_id)
        if earlier is not None:
            return Submitted(job=earlier, replayed=True)
    try:
        done = _submit(svc, tenant, job_id, kind, dataset_id, model_id, dict(params or {}), lane)
    except BaseException:
        if idem:
            svc.state.forget(idem)  # ours (pending): a retry may try again
        raise
    if idem:
        svc.state.assign(idem, done.job["id"], svc.settings.idempotency_ttl_s)
    return done


def _claim_idempotency(svc: Services, idem: str, job_id: str) -> dict[str, Any] | None:
    """Claim an Idempotency-Key for this request, or return the job an earlier request made.

    Raises Conflict (409, Retry-After) while an earlier request with the key is still running."""
    pending = f"pending:{job_id}"
    holder = svc.state.remember(idem, pending, svc.settings.idempotency_ttl_s)
    if holder == pending:
        return None
    if holder.startswith("pending:"):
        raise Conflict(
            "A request with this Idempotency-Key is still being processed.",
            code="job.idempotency_in_progress",
            hint="Retry in a moment: it returns the same job.",
            headers={"Retry-After": "1"},
        )
    earlier = svc.state.get_job(holder)
    if earlier is not None:
        return earlier
    svc.state.forget(idem)  # the job it named has expired: this request takes the key
    return _claim_idempotency(svc, idem, job_id)


def _claim_fit(svc: Services, dedup: str, job_id: str) -> dict[str, Any] | None:
    """Claim the deduplication key of a fit, or return the live job that holds it."""
    while True:
        holder = svc.state.remember(dedup, job_id, svc.settings.job_retention_s)
        if holder == job_id:
            return None
        existing = svc.state.get_job(holder)
        if existing is not None and existing["status"] not in ("failed", "canceled"):
            return existing
        svc.state.forget_if(dedup, holder)  # a failed, canceled or expired holder is not reused


def _submit(
    svc: Services,
    tenant: str,
    job_id: str,
    kind: str,
    dataset_id: str,
    model_id: str | None,
    params: dict[str, Any],
    lane: str | None,
) -> Submitted:
    if kind == "fit":
        info, rows = validate_fit(svc, tenant, dataset_id)
    else:
        assert model_id is not None
        info, rows = validate_predict(svc, tenant, dataset_id, model_id)
    chosen_lane = choose_lane(svc, info.size, rows, lane)
    dedup = None
    if kind == "fit":  # a fit is a pure function of the bytes and the parameters
        dedup = f"dedup:{tenant}:{_fingerprint(info, params)}"
        existing = _claim_fit(svc, dedup, job_id)
        if existing is not None:
            return Submitted(job=existing, deduplicated=True)
    try:
        svc.state.admit(tenant, job_id, svc.settings.tenant_max_queued)
    except TabjobError:
        if dedup:
            svc.state.forget(dedup)
        raise
    now = time.time()
    job = svc.state.create_job(
        {
            "id": job_id,
            "kind": kind,
            "tenant": tenant,
            "lane": chosen_lane,
            "dataset_id": dataset_id,
            "model_id": model_id,
            "params": params,
            "created_at": now,
            "queued_at": now,
            "started_at": None,
            "ended_at": None,
            "error": None,
            "result": None,
            "cancel_requested": False,
            "dataset_bytes": info.size,
            "dataset_rows": rows,
            "dataset_etag": info.etag,
            "time_limit_s": svc.settings.time_limit_s(chosen_lane),  # type: ignore[arg-type]
            "dedup_key": dedup,
        }
    )
    try:
        actors.enqueue(svc.broker, job_id, chosen_lane)
    except Exception as exc:
        # No message, no job: end the record and free what it holds, so nothing waits forever
        # and later identical submissions are not deduplicated onto it.
        error = InfraError("The job could not be queued; the broker failed.", code="platform.unavailable")
        svc.state.finish(job, "failed", error=error.to_dict())
        if dedup:
            svc.state.forget(dedup)
        raise error from exc
    return Submitted(job=job)


def cancel(svc: Services, tenant: str, job_id: str) -> dict[str, Any]:
    """Cancel a job: a queued one never starts; a running one is stopped by its worker."""
    job = svc.state.get_job_for(tenant, job_id)
    ensure_cancelable(job)
    svc.state.request_cancel(job_id)
    # Only a job still queued is ended here; one a worker took meanwhile is stopped by it.
    if job["status"] == "queued" and svc.state.finish(job, "canceled", allowed=("queued",)):
        svc.state.add_event(job_id, "canceled", "Canceled while queued; it will not start.")
        metrics.record_ended({**job, "status": "canceled"})  # a worker never sees this job again
    else:
        svc.state.add_event(job_id, "cancel_requested", "Cancel requested; the worker stops the job.")
    return svc.state.get_job_for(tenant, job_id)


def result_download(svc: Services, tenant: str, job_id: str) -> tuple[str, Any]:
    """The presigned URL of a finished prediction's Parquet file, and its expiry."""
    job = svc.state.get_job_for(tenant, job_id)
    if job["kind"] != "predict":
        raise Conflict(
            f"Job '{job_id}' is a fit job; it produces a model, not predictions.",
            code="job.no_result",
            hint="Submit a predict job with this model and download its result.",
        )
    if job["status"] != "finished":
        detail = f" ({job['error']['message']})" if job["status"] == "failed" and job.get("error") else ""
        raise Conflict(
            f"Job '{job_id}' has no result: its status is {job['status']}{detail}.",
            code="job.not_finished",
            hint="Poll the job's status and download once it is finished."
            if job["status"] not in TERMINAL
            else "Submit the prediction again.",
        )
    return svc.store.presign_download(result_key(tenant, job_id), filename=f"{job_id}.parquet")


def describe_wait(settings: Settings, job: dict[str, Any], load: dict[str, Any]) -> dict[str, Any]:
    """The queue section of a queued job from its waiting context (``StateStore.job_view``)."""
    load = dict(load)
    position, tenant_running = load.pop("position"), load.pop("tenant_running") or 0
    if tenant_running >= settings.tenant_max_running:
        reason = (
            f"Your account already runs {tenant_running} job(s), the most allowed at once "
            f"({settings.tenant_max_running}); it starts when one ends."
        )
    elif load["workers"] == 0:
        reason = f"No worker is running on the {job['lane']} lane yet; one is being started."
    elif (position and position > 1) or load["running"] >= load["workers"]:
        reason = (
            f"{(position or 1) - 1} job(s) ahead of it; {load['running']} of {load['workers']} "
            f"worker(s) on the {job['lane']} lane are busy."
        )
    else:
        reason = "Starting on a free worker."
    return {"position": position, "lane": job["lane"], **{f"lane_{k}": v for k, v in load.items()}, "reason": reason}
