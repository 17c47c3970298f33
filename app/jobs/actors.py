"""The one actor: run a job by id. Which lane (queue) it runs on is chosen at submission."""

from __future__ import annotations

import time
from typing import Any

import dramatiq

from app.errors import Conflict
from app.jobs.context import get_context
from app.jobs.middleware import write_manifest
from app.settings import Settings
from app.storage import dataset_key, model_key, result_key

ACTOR_NAME = "run_job"
# Progress events are rate-limited per phase so a fast download does not flood the timeline.
PROGRESS_EVENT_INTERVAL_S = 1.0


def run_job(job_id: str) -> None:
    """Run the fit or predict job ``job_id`` (already marked started by the middleware)."""
    ctx = get_context()
    job = ctx.state.get_job(job_id)
    assert job is not None
    tenant = job["tenant"]
    store = ctx.store
    if job["kind"] == "fit":
        operation = "fit"
        kwargs: dict[str, Any] = {
            "data_url": store.internal_get_url(dataset_key(tenant, job["dataset_id"])),
            "model_url": store.internal_put_url(model_key(tenant, job_id)),
            "params": job.get("params") or {},
        }
    else:
        if store.stat(model_key(tenant, job["model_id"])) is None:
            raise Conflict(f"The model '{job['model_id']}' is no longer available.", code="model.not_found")
        operation = "predict"
        kwargs = {
            "data_url": store.internal_get_url(dataset_key(tenant, job["dataset_id"])),
            "model_url": store.internal_get_url(model_key(tenant, job["model_id"])),
            "result_url": store.internal_put_url(result_key(tenant, job_id)),
        }
    kwargs["scratch_dir"] = ctx.settings.scratch_dir

    last: dict[str, float] = {}

    def on_progress(phase: str, fraction: float | None, message: str | None) -> None:
        now = time.monotonic()
        fields: dict[str, Any] = {"phase": phase, "progress": fraction}
        ctx.state.update_job(job_id, **fields)
        if message or phase not in last or now - last[phase] >= PROGRESS_EVENT_INTERVAL_S:
            last[phase] = now
            ctx.state.add_event(job_id, "progress", message, phase=phase, progress=fraction)

    summary = ctx.runner.run(
        operation,
        kwargs,
        # The worker's own lane limit rules (it may have changed since submission).
        time_limit_s=min(float(job.get("time_limit_s") or "inf"), ctx.settings.time_limit_s(job["lane"])),
        should_cancel=lambda: ctx.state.cancel_requested(job_id),
        cancel_poll_s=ctx.settings.cancel_poll_s,
        on_progress=on_progress,
        threads=threads_for(job, ctx.settings),
    )
    if ctx.state.finish(job, "finished", result=summary, progress=1.0):
        ctx.state.add_event(job_id, "finished", _finished_message(operation, summary))
        write_manifest(ctx, job_id)
    ctx.jobs_done += 1


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
