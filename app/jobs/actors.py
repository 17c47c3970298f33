"""The one actor: run a job by id. Which lane (queue) it runs on is chosen at submission."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq

from app.cpu_pool import cores_wanted, leased_cores
from app.domain import Job, JobStatus
from app.errors import Conflict, InfraError, JobCanceled, ModelDeleted, UserError
from app.jobs.broker import ACTOR_NAME
from app.jobs.checkpoints import checkpoint_spec
from app.jobs.context import WorkerContext
from app.settings import Settings
from app.steps import step_tag
from app.storage import dataset_key, model_key, result_key

# Progress events are rate-limited per phase so a fast download does not flood the timeline.
PROGRESS_EVENT_INTERVAL_S = 1.0
# Presigned URLs handed to a job process stay valid this long past the job's time limit.
URL_MARGIN_S = 3600


def run_job(ctx: WorkerContext, job_id: str) -> None:
    """Run the fit or predict job ``job_id`` (already marked started by the middleware): in one
    call, or the step it is in for a two-step job (``app.jobs.stepping``)."""
    job = ctx.state.jobs.get(job_id)
    assert job is not None
    if job.steps:
        from app.jobs import stepping  # it uses this module's helpers

        stepping.run_step(ctx, job)
        return
    # The worker's own lane limit rules (it may have changed since submission).
    time_limit_s = min(job.time_limit_s or float("inf"), ctx.settings.time_limit_s(job.lane))
    operation, kwargs = _operation(ctx, job, time_limit_s)
    with scratch_dir(ctx, job_id) as scratch:
        kwargs["scratch_dir"] = scratch
        summary = run_operation(ctx, job, operation, kwargs, time_limit_s)
    if job.kind == "fit":
        record_model_size(ctx, job, summary)
    ctx.end(job, JobStatus.FINISHED, finished_message(operation, summary), result=summary, progress=1.0)


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


def _operation(ctx: WorkerContext, job: Job, time_limit_s: float) -> tuple[str, dict[str, Any]]:
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
        return "fit", {"data_url": data_url, "model_url": model_url, "params": job.params, "target": job.target,
                       "checkpoint": checkpoint, **pin}  # fmt: skip
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
    }


def refuse_changed_dataset(ctx: WorkerContext, job: Job) -> None:
    """The dataset must still be the bytes checked at submission (its upload URL may still be
    valid, and a replaced file would skip the checks and the size limit), and not deleted."""
    if not ctx.state.datasets.exists(job.dataset_id):
        raise UserError(
            f"Dataset '{job.dataset_id}' was deleted after the job was submitted.",
            code="dataset.deleted",
            hint="Upload the data again and submit the job again.",
            status=409,
        )
    info = ctx.store.stat(dataset_key(job.tenant, job.dataset_id))
    if info is None or (job.dataset_etag and info.etag != job.dataset_etag):
        raise UserError(
            f"Dataset '{job.dataset_id}' was replaced or deleted after the job was submitted.",
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

    def raise_if_canceled() -> bool:
        if ctx.state.jobs.cancel_requested(job_id):
            raise JobCanceled("The job was canceled.")
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
        ctx.state.jobs.update(job_id, threads=threads)
        try:
            return ctx.runner.run(
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


def threads_for(job: Job, settings: Settings, pool_total: int) -> int:
    """The cores a job asks the pool for (``app.cpu_pool.cores_wanted``): one below
    ``single_thread_max_rows`` rows of its dataset, the whole pool above."""
    return cores_wanted(job.dataset_rows or 0, pool_total=pool_total, rows_per_core=settings.single_thread_max_rows)


def finished_message(operation: str, summary: dict[str, Any]) -> str:
    seconds = sum(summary.get("timings", {}).values())
    if operation == "fit":
        return (
            f"Trained on {summary['rows']:,} rows in {seconds:.2f} s "
            f"({summary['iterations']} boosting iterations, {len(summary['classes'])} classes)."
        )
    return f"Predicted {summary['rows']:,} rows in {seconds:.2f} s."


def declare(broker: dramatiq.Broker, ctx: WorkerContext) -> dramatiq.Actor:
    """Register the actor on a worker's ``broker``, running jobs with ``ctx`` (no retries of its
    own: the Retries middleware decides)."""

    def run(token_for: str) -> None:
        # The message names the job it was sent for, but it is only a slot token: the middleware
        # picked the job the lane's order says is next (``WorkerContext.current``).
        assert ctx.current is not None, f"no job picked for the message sent for {token_for}"
        run_job(ctx, ctx.current.id)

    return dramatiq.actor(run, broker=broker, actor_name=ACTOR_NAME, queue_name="small")
