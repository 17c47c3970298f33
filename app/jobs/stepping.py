"""Running the step a two-step job is in: ``prepare`` on a CPU lane, ``model`` on the gpu lane.

The message is the same as for any job (its id); the job's record says which step it is in, and
its ``lane`` is that step's lane. After ``prepare`` the job goes back to ``queued`` on the gpu
lane in one atomic move (status, lane, counters and steps together: its tenant's running slot is
freed between the steps) and a message is sent to the gpu queue. The prepared matrix lives in the
object store under the tenant's prefix, named by its cache key, so a later job on the same bytes
finds it and skips ``prepare``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dramatiq

from app.core.domain import Job, JobStatus
from app.core.errors import CanceledWhileRunning, Conflict, JobTimeout
from app.core.storage import dataset_key, model_key, result_key
from app.jobs.actors import (
    evaluation_kwargs,
    finished_message,
    record_model_size,
    refuse_changed_dataset,
    run_operation,
    scratch_dir,
    url_expiry_s,
)
from app.jobs.broker import enqueue
from app.jobs.checkpoints import checkpoint_spec
from app.jobs.context import WorkerContext
from app.usecases.steps import GPU_LANE, MODEL, PREPARE, advanced, closed, current, plan, spent_s

log = logging.getLogger("tabjob.worker")


def run_step(ctx: WorkerContext, job: Job) -> None:
    """Run the step ``job`` is in (the middleware has marked it started)."""
    step = current(job.steps)
    assert step is not None and job.prepared_key is not None
    time_limit_s = _time_left(ctx, job)
    if step["name"] == PREPARE:
        _prepare(ctx, job, time_limit_s)
    else:
        _model(ctx, job, time_limit_s)


def _time_left(ctx: WorkerContext, job: Job) -> float:
    """The job's time limit counts every step: what the earlier steps left, and at most this
    worker's own lane limit."""
    left = (job.time_limit_s or float("inf")) - spent_s(job)
    if left <= 0:
        raise JobTimeout(
            f"The job's steps ran longer than its time limit of {job.time_limit_s:g} seconds.",
            hint="Use a smaller dataset or fewer trees (n_estimators), or ask an operator for a longer limit.",
        )
    return min(left, ctx.settings.time_limit_s(job.lane))


def _prepare(ctx: WorkerContext, job: Job, time_limit_s: float) -> None:
    store, expires_s = ctx.store, url_expiry_s(time_limit_s)
    assert job.prepared_key is not None
    if store.stat(job.prepared_key) is not None:  # another job on the same bytes prepared it meanwhile
        _raise_if_canceled(ctx, job)
        _to_model_step(ctx, job, skipped=True, text="Step prepare skipped: another job prepared these bytes.")
        return
    refuse_changed_dataset(ctx, job)
    kwargs: dict[str, Any] = {
        "data_url": store.internal_get_url(dataset_key(job.tenant, job.dataset_id), expires_s),
        "prepared_url": store.internal_put_url(job.prepared_key, expires_s),
        "kind": job.kind,
        # downloaded pinned to the version checked at submission (app/jobs/pinned.py)
        "data_etag": job.dataset_etag,
        "data_bytes": job.dataset_bytes,
    }
    if job.kind == "predict":
        kwargs["feature_schema"] = _model_result(ctx, job)["features"]
        kwargs["passthrough"] = list(job.passthrough)
    else:
        kwargs |= {"target": job.target, "task": job.task}
    with scratch_dir(ctx, job.id) as scratch:
        try:
            summary = run_operation(ctx, job, "prepare", {**kwargs, "scratch_dir": scratch}, time_limit_s)
        finally:  # ended, failed or canceled: the job process may have written the matrix
            _drop_matrix_of_deleted_dataset(ctx, job)
    # Canceled, or its dataset deleted, while the step ran faster than the cancel poll: the job
    # ends here, not queued for the gpu lane (where it would wait for, or start, a GPU node).
    _raise_if_canceled(ctx, job)
    refuse_changed_dataset(ctx, job)
    seconds = sum(summary.get("timings", {}).values())
    text = (
        f"Step prepare finished: {summary['rows']:,} rows x {len(summary['features']['columns'])} features, "
        f"{summary['bytes']:,} bytes, in {seconds:.2f} s; the model step waits on the gpu lane."
    )
    _to_model_step(ctx, job, skipped=False, text=text)


def _drop_matrix_of_deleted_dataset(ctx: WorkerContext, job: Job) -> None:
    """Deleting a dataset removes every copy of it that exists then (``app.tenancy.copies``); a
    matrix this step wrote after that would outlive its dataset, so it goes here. A deletion after
    this check finds the matrix in the dataset's index, where submission recorded it."""
    if job.prepared_key is not None and not ctx.state.datasets.exists(job.dataset_id):
        ctx.store.remove(job.prepared_key)


def _to_model_step(ctx: WorkerContext, job: Job, *, skipped: bool, text: str) -> None:
    """Queue the job for its model step on the gpu lane (nothing when it ended or moved on)."""
    steps = advanced(job.steps, PREPARE, "cpu", skipped=skipped)
    moved = _requeue(
        ctx, job, lane=GPU_LANE, steps=steps, attempts=0, phase="queued", progress=None, queued_at=time.time(),
        worker=None, message=text,
    )  # fmt: skip
    if not moved:
        return
    ctx.state.events.add(job.id, "step_skipped" if skipped else "step_finished", text, step=PREPARE)
    # A slot token for the gpu lane (a message starts whichever job is next there). A crash
    # between the move and this leaves the lane a token short: the reaper's top-up sends it.
    enqueue(dramatiq.get_broker(), job.id, GPU_LANE)


def _model(ctx: WorkerContext, job: Job, time_limit_s: float) -> None:
    store, expires_s = ctx.store, url_expiry_s(time_limit_s)
    assert job.prepared_key is not None
    refuse_changed_dataset(ctx, job)  # a cached matrix is used only while its dataset still exists
    if store.stat(job.prepared_key) is None:  # removed between the steps (a lifecycle rule)
        _back_to_prepare(ctx, job)
        return
    kwargs: dict[str, Any] = {"prepared_url": store.internal_get_url(job.prepared_key, expires_s)}
    if job.kind == "fit":
        operation = "train_prepared"
        kwargs |= {"model_url": store.internal_put_url(model_key(job.tenant, job.id), expires_s),
                   "family": job.model, "params": job.params,
                   "checkpoint": checkpoint_spec(store, job, ctx.settings, expires_s),
                   **evaluation_kwargs(ctx, job, expires_s)}  # fmt: skip
    else:
        assert job.model_id is not None
        operation = "predict_prepared"
        kwargs |= {
            "model_sha256": _model_result(ctx, job).get("model_sha256"),
            "model_url": store.internal_get_url(model_key(job.tenant, job.model_id), expires_s),
            "result_url": store.internal_put_url(result_key(job.tenant, job.id), expires_s),
            **({"probabilities": True} if job.probabilities else {}),
        }
    with scratch_dir(ctx, job.id) as scratch:
        summary = run_operation(ctx, job, operation, {**kwargs, "scratch_dir": scratch}, time_limit_s)
    if job.kind == "fit":
        record_model_size(ctx, job, summary)
        if job.register is not None:  # the model registry: a new version, and maybe a promotion
            from app.jobs.registration import register_fit

            summary["registry"] = register_fit(ctx, job, summary, time_limit_s)
    steps = closed(job.steps, JobStatus.FINISHED, summary.get("device"))
    text = f"Step model finished on {summary.get('device', 'cpu')}. " + finished_message(job.kind, summary)
    ctx.end(job, JobStatus.FINISHED, text, result=summary, progress=1.0, steps=steps)
    if job.register is not None:  # a registered version's record outlives the job retention
        ctx.state.registry.keep_record(job.id)


def _back_to_prepare(ctx: WorkerContext, job: Job) -> None:
    """The prepared matrix is gone: prepare it again on the job's CPU lane."""
    lane = job.steps[0]["lane"]
    text = "The prepared matrix was no longer in the store; it is prepared again."
    moved = _requeue(
        ctx, job, lane=lane, steps=plan(lane, prepared=False), attempts=0, phase="queued", queued_at=time.time(),
        worker=None, message=text,
    )  # fmt: skip
    if moved:
        ctx.state.events.add(job.id, "step_redo", text, step=MODEL)
        enqueue(dramatiq.get_broker(), job.id, lane)


def _raise_if_canceled(ctx: WorkerContext, job: Job) -> None:
    """A cancel that came while the step ran ends the job here (the middleware ends it as
    canceled), never queued for its next step."""
    if ctx.state.jobs.cancel_requested(job.id):
        raise CanceledWhileRunning("The job was canceled.")


def _requeue(ctx: WorkerContext, job: Job, **fields: Any) -> bool:
    """Move the started job back to ``queued`` for its next step (``fields``: its lane, steps...);
    False when it had moved on (it is not this worker's any more) or was canceled.

    A cancel is a flag the API sets before it ends a job it finds queued (app.usecases.jobs.cancel),
    so one that lands around the move is seen by one side or the other: here before the move (the
    job is still started: the middleware ends it), or after it, where the job is ended as queued.
    Without the second look, a cancel between the two left the job queued with its flag set, on a
    lane that may have no worker to end it (the gpu lane scaled to zero: CI met that)."""
    _raise_if_canceled(ctx, job)
    moved = ctx.state.jobs.move(job.id, (JobStatus.STARTED,), JobStatus.QUEUED, on_worker=ctx.worker_id, **fields)
    canceled = moved and ctx.state.jobs.cancel_requested(job.id)
    queued = ctx.state.jobs.get(job.id) if canceled else None
    if queued is not None:  # ctx.end counts the job as this worker's, as a move does
        text = "Canceled between its steps; it will not start again."
        ctx.end(queued, JobStatus.CANCELED, text, allowed=(JobStatus.QUEUED,))
    else:
        ctx.jobs_done += 1
    return moved and not canceled


def _model_result(ctx: WorkerContext, job: Job) -> dict[str, Any]:
    """The fit summary of a predict's model (its features and digest)."""
    assert job.model_id is not None
    model = ctx.state.jobs.get(job.model_id)
    if model is None or model.result is None or ctx.store.stat(model_key(job.tenant, job.model_id)) is None:
        raise Conflict(f"The model '{job.model_id}' is no longer available.", code="model.not_found")
    return model.result
