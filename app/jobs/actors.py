"""The one actor: run a job by id. Which lane (queue) it runs on is chosen at submission."""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

import dramatiq

from app.errors import Conflict, UserError
from app.jobs.context import get_context
from app.jobs.middleware import write_manifest
from app.settings import Settings
from app.storage import dataset_key, model_key, result_key

ACTOR_NAME = "run_job"
# Progress events are rate-limited per phase so a fast download does not flood the timeline.
PROGRESS_EVENT_INTERVAL_S = 1.0
# Presigned URLs handed to a job process stay valid this long past the job's time limit.
URL_MARGIN_S = 3600


def run_job(job_id: str) -> None:
    """Run the fit or predict job ``job_id`` (already marked started by the middleware)."""
    ctx = get_context()
    job = ctx.state.get_job(job_id)
    assert job is not None
    tenant = job["tenant"]
    store = ctx.store
    # The worker's own lane limit rules (it may have changed since submission).
    time_limit_s = min(float(job.get("time_limit_s") or "inf"), ctx.settings.time_limit_s(job["lane"]))
    # Presigned URLs for the job process outlive the job, and nothing longer.
    expires_s = int(min(time_limit_s, 6 * 24 * 3600)) + URL_MARGIN_S
    _refuse_changed_dataset(store, job)
    # The job process downloads only this version and size of the dataset (app/jobs/pinned.py).
    pin = {"data_etag": job.get("dataset_etag"), "data_bytes": job.get("dataset_bytes")}
    if job["kind"] == "fit":
        operation = "fit"
        kwargs: dict[str, Any] = {
            "data_url": store.internal_get_url(dataset_key(tenant, job["dataset_id"]), expires_s),
            "model_url": store.internal_put_url(model_key(tenant, job_id), expires_s),
            "params": job.get("params") or {},
            **pin,
        }
    else:
        model = ctx.state.get_job(job["model_id"])
        if model is None or store.stat(model_key(tenant, job["model_id"])) is None:
            raise Conflict(f"The model '{job['model_id']}' is no longer available.", code="model.not_found")
        digest = (model.get("result") or {}).get("model_sha256")
        if not digest:  # unpickling runs code: a model whose bytes cannot be verified is never loaded
            raise Conflict(
                f"The model '{job['model_id']}' has no recorded digest, so it cannot be verified.",
                code="model.tampered",
                hint="Train the model again.",
            )
        operation = "predict"
        kwargs = {
            "data_url": store.internal_get_url(dataset_key(tenant, job["dataset_id"]), expires_s),
            "model_url": store.internal_get_url(model_key(tenant, job["model_id"]), expires_s),
            "result_url": store.internal_put_url(result_key(tenant, job_id), expires_s),
            "model_sha256": digest,
            **pin,
        }

    # A scratch directory per job, removed whatever happens: a killed job process cannot clean up.
    scratch = tempfile.mkdtemp(prefix=f"{job_id}-", dir=ctx.settings.scratch_dir)
    kwargs["scratch_dir"] = scratch
    try:
        summary = _run(ctx, job, operation, kwargs, time_limit_s)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if ctx.state.finish(job, "finished", result=summary, progress=1.0):
        ctx.state.add_event(job_id, "finished", _finished_message(operation, summary))
        write_manifest(ctx, job_id)
    ctx.jobs_done += 1


def _refuse_changed_dataset(store: Any, job: dict[str, Any]) -> None:
    """The dataset must still be the bytes checked at submission (its upload URL may still be
    valid, and a replaced file would skip the checks and the size limit)."""
    info = store.stat(dataset_key(job["tenant"], job["dataset_id"]))
    if info is None or (job.get("dataset_etag") and info.etag != job["dataset_etag"]):
        raise UserError(
            f"Dataset '{job['dataset_id']}' was replaced or deleted after the job was submitted.",
            code="dataset.changed",
            hint="Upload the data as a new dataset and submit the job again.",
            status=409,
        )


def _run(ctx: Any, job: dict[str, Any], operation: str, kwargs: dict[str, Any], time_limit_s: float) -> dict[str, Any]:
    job_id = job["id"]
    last: dict[str, float] = {}

    def on_progress(phase: str, fraction: float | None, message: str | None) -> None:
        now = time.monotonic()
        fields: dict[str, Any] = {"phase": phase, "progress": fraction}
        ctx.state.update_job(job_id, **fields)
        if message or phase not in last or now - last[phase] >= PROGRESS_EVENT_INTERVAL_S:
            last[phase] = now
            ctx.state.add_event(job_id, "progress", message, phase=phase, progress=fraction)

    return ctx.runner.run(
        operation,
        kwargs,
        time_limit_s=time_limit_s,
        should_cancel=lambda: ctx.state.cancel_requested(job_id),
        cancel_poll_s=ctx.settings.cancel_poll_s,
        on_progress=on_progress,
        threads=threads_for(job, ctx.settings),
    )


def threads_for(job: dict[str, Any], settings: Settings) -> int:
    """Small jobs run on one thread: OpenMP's start-up and synchronisation cost more than
    they save below a few tens of thousands of rows (measured: a 200-row fit 0.048 s on one
    thread, 0.076 s on two), and a single-threaded job leaves the other cores to other jobs."""
    if int(job.get("dataset_rows") or 0) < settings.single_thread_max_rows:
        return 1
    return settings.threads_for_worker()


def _finished_message(operation: str, summary: dict[str, Any]) -> str:
    seconds = sum(summary.get("timings", {}).values())
    if operation == "fit":
        return (
            f"Trained on {summary['rows']:,} rows in {seconds:.2f} s "
            f"({summary['iterations']} boosting iterations, {len(summary['classes'])} classes)."
        )
    return f"Predicted {summary['rows']:,} rows in {seconds:.2f} s."


def declare(broker: dramatiq.Broker) -> dramatiq.Actor:
    """Register the actor on ``broker`` (no retries of its own: the Retries middleware decides)."""
    return dramatiq.actor(run_job, broker=broker, actor_name=ACTOR_NAME, queue_name="small")


def enqueue(broker: dramatiq.Broker, job_id: str, lane: str) -> None:
    """Send ``job_id`` to ``lane``'s queue."""
    message = dramatiq.Message(queue_name=lane, actor_name=ACTOR_NAME, args=(job_id,), kwargs={}, options={})
    broker.enqueue(message)
