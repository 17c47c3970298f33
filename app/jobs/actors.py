"""What running a job's operation takes: its scratch directory, presigned URLs, the job process's
threads, the call itself and the message it ends with. The actor that dispatches a job to these
(or to ``app.jobs.stepping``) is in ``app.jobs.dispatch``, so neither imports the other back."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.core.domain import Job
from app.core.errors import CanceledWhileRunning, Conflict, InfraError, ModelDeleted, UserError
from app.core.settings import Settings
from app.core.storage import dataset_key, model_key, result_key
from app.inspection.record_limits import FileBounds, check_result_record
from app.jobs.checkpoints import checkpoint_spec
from app.jobs.context import WorkerContext
from app.jobs.cpu_pool import cores_wanted, leased_cores
from app.usecases.steps import step_tag

# Progress events are rate-limited per phase so a fast download does not flood the timeline.
PROGRESS_EVENT_INTERVAL_S = 1.0
# Presigned URLs handed to a job process stay valid this long past the job's time limit.
URL_MARGIN_S = 3600


def record_model_size(ctx: WorkerContext, job: Job, summary: dict[str, Any]) -> None:
    """Add the model file's size to a fit's summary, for its owner (GET /v1/models)."""
    written = ctx.store.stat(model_key(job.tenant, job.id))
    summary["model_bytes"] = written.size if written else None


@contextmanager
def scratch_dir(ctx: WorkerContext, job_id: str) -> Iterator[str]:
    """A scratch directory for one job, removed whatever happens (a killed job process cannot
    clean up after itself)."""
    scratch = tempfile.mkdtemp(prefix=f"{job_id}-", dir=ctx.settings.scratch_dir)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def url_expiry_s(time_limit_s: float) -> int:
    """How long the presigned URLs handed to a job process stay valid: past the job, no longer."""
    return int(min(time_limit_s, 6 * 24 * 3600)) + URL_MARGIN_S


def operation_for(ctx: WorkerContext, job: Job, time_limit_s: float) -> tuple[str, dict[str, Any]]:
    """The ``ml`` operation to run and its arguments: presigned URLs that outlive the job, and
    nothing longer."""
    store, tenant = ctx.store, job.tenant
    expires_s = url_expiry_s(time_limit_s)
    refuse_changed_dataset(ctx, job)
    data_url = store.internal_get_url(dataset_key(tenant, job.dataset_id), expires_s)
    # The job process downloads only this version and size of the dataset (app/jobs/pinned.py).
    pin = {"data_etag": job.dataset_etag, "data_bytes": job.dataset_bytes}
    if job.kind == "fit":
        model_url = store.internal_put_url(model_key(tenant, job.id), expires_s)
        checkpoint = checkpoint_spec(store, job, ctx.settings, expires_s)  # long fits resume there
        fit = {"data_url": data_url, "model_url": model_url, "params": job.params, "target": job.target, **pin}
        return "fit", {**fit, "task": job.task, "checkpoint": checkpoint, **evaluation_kwargs(ctx, job, expires_s)}
    assert job.model_id is not None
    model = ctx.state.jobs.get(job.model_id)
    if model is not None and model.model_deleted_at is not None:
        raise ModelDeleted(job.model_id)
    if model is None or store.stat(model_key(tenant, job.model_id)) is None:
        raise Conflict(f"The model '{job.model_id}' is no longer available.", code="model.not_found")
    digest = (model.result or {}).get("model_sha256")
    if not digest:  # unpickling runs code: a model whose bytes cannot be verified is never loaded
        raise Conflict(
            f"The model '{job.model_id}' has no recorded digest, so it cannot be verified.",
            code="model.tampered",
            hint="Train the model again.",
        )
    return "predict", {
        "data_url": data_url,
        "model_url": store.internal_get_url(model_key(tenant, job.model_id), expires_s),
        "result_url": store.internal_put_url(result_key(tenant, job.id), expires_s),
        "model_sha256": digest,
        **pin,
        **predict_output_kwargs(job),
    }


def evaluation_kwargs(ctx: WorkerContext, job: Job, expires_s: int) -> dict[str, Any]:
    """A fit's evaluation dataset: its URL, downloaded pinned to the version checked at submission."""
    if not job.evaluate_on:
        return {}
    refuse_changed_dataset(ctx, job, job.evaluate_on, job.evaluate_etag)
    url = ctx.store.internal_get_url(dataset_key(job.tenant, job.evaluate_on), expires_s)
    return {"evaluate_url": url, "evaluate_etag": job.evaluate_etag, "evaluate_bytes": job.evaluate_bytes}


def predict_output_kwargs(job: Job) -> dict[str, Any]:
    """What a predict writes besides the predicted column (nothing more for the legacy routes' jobs)."""
    extra: dict[str, Any] = {}
    if job.probabilities:
        extra["probabilities"] = True
    if job.passthrough:
        extra["passthrough"] = list(job.passthrough)
    return extra


def refuse_changed_dataset(
    ctx: WorkerContext, job: Job, dataset_id: str | None = None, etag: str | None = None
) -> None:
    """The dataset (the job's, or ``dataset_id`` checked as ``etag``) must still be the bytes
    checked at submission (its upload URL may still be valid, and a replaced file would skip the
    checks and the size limit), and not deleted."""
    dataset_id, etag = (dataset_id, etag) if dataset_id else (job.dataset_id, job.dataset_etag)
    if not ctx.state.datasets.exists(dataset_id):
        raise UserError(
            f"Dataset '{dataset_id}' was deleted after the job was submitted.",
            code="dataset.deleted",
            hint="Upload the data again and submit the job again.",
            status=409,
        )
    info = ctx.store.stat(dataset_key(job.tenant, dataset_id))
    if info is None or (etag and info.etag != etag):
        raise UserError(
            f"Dataset '{dataset_id}' was replaced or deleted after the job was submitted.",
            code="dataset.changed",
            hint="Upload the data as a new dataset and submit the job again.",
            status=409,
        )


def run_operation(
    ctx: WorkerContext, job: Job, operation: str, kwargs: dict[str, Any], time_limit_s: float
) -> dict[str, Any]:
    """Run ``operation`` in the worker's job process on the cores it takes from the pool,
    relaying progress and watching for a cancel."""
    job_id = job.id
    last: dict[str, float] = {}

    def on_progress(phase: str, fraction: float | None, message: str | None) -> None:
        now = time.monotonic()
        if phase == "resumed":  # the fit continues a checkpoint: its own event, then it trains on
            ctx.state.jobs.update(job_id, phase="training", progress=fraction)
            ctx.state.events.add(job_id, "resumed", message, progress=fraction, **step_tag(job))
            return
        ctx.state.jobs.update(job_id, phase=phase, progress=fraction)
        if message or phase not in last or now - last[phase] >= PROGRESS_EVENT_INTERVAL_S:
            last[phase] = now
            ctx.state.events.add(job_id, "progress", message, phase=phase, progress=fraction, **step_tag(job))

    if "data_url" in kwargs:  # the job process applies the submission's byte bounds to every row
        kwargs = {**kwargs, "bounds": FileBounds.from_settings(ctx.settings)}

    def raise_if_canceled() -> bool:
        if ctx.state.jobs.cancel_requested(job_id):
            raise CanceledWhileRunning("The job was canceled.")
        if ctx.runner.stopping:
            raise InfraError("The worker was shut down before the job got a core.", code="platform.worker_shutdown")
        return False

    def waiting_for_cores() -> None:
        on_progress("waiting for cores", None, "Waiting for a free core: every core runs another job.")

    want = threads_for(job, ctx.settings, ctx.cores.total)
    reserved = ctx.settings.worker_max_cells is not None
    started = time.monotonic()
    with leased_cores(
        ctx.cores, f"{ctx.worker_id}:{job_id}", want, should_cancel=raise_if_canceled,
        on_wait=waiting_for_cores, reserved=reserved,
    ) as threads:  # fmt: skip
        cores_wait_s = time.monotonic() - started
        ctx.state.jobs.update(job_id, threads=threads)
        try:
            summary = ctx.runner.run(
                operation,
                kwargs,
                time_limit_s=max(1.0, time_limit_s - (time.monotonic() - started)),
                should_cancel=lambda: ctx.state.jobs.cancel_requested(job_id),
                cancel_poll_s=ctx.settings.cancel_poll_s,
                on_progress=on_progress,
                threads=threads,
            )
        finally:  # the record says what the job holds now: nothing, once the pool has the cores back
            ctx.state.jobs.update(job_id, threads=None)
    if isinstance(summary, dict):  # time spent waiting for cores is not the job's own run time
        summary.setdefault("load", {})["cores_wait_s"] = round(cores_wait_s, 4)
    check_result_record(summary, ctx.settings)
    return summary


def threads_for(job: Job, settings: Settings, pool_total: int) -> int:
    """The cores a job asks the pool for (``app.jobs.cpu_pool.cores_wanted``): one below
    ``single_thread_max_rows`` rows of its dataset, the whole pool above."""
    return cores_wanted(job.dataset_rows or 0, pool_total=pool_total, rows_per_core=settings.single_thread_max_rows)


def finished_message(operation: str, summary: dict[str, Any]) -> str:
    seconds = sum(summary.get("timings", {}).values())
    if operation == "fit":
        learned = "a regression" if summary.get("task") == "regression" else f"{len(summary['classes'])} classes"
        return (
            f"Trained on {summary['rows']:,} rows in {seconds:.2f} s "
            f"({summary['iterations']} boosting iterations, {learned})."
        )
    return f"Predicted {summary['rows']:,} rows in {seconds:.2f} s."
