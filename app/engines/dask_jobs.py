"""Running a job on the Dask engine, in the tabjob worker that picked it.

The job runs in the worker's job process as any job does (``app.jobs.runner``), so cancel, time
limits, progress and events are the ones every job has; that process is the Dask client
(``ml.distributed.engine``). What is particular: the Dask workers get presigned GET URLs of the
parts (and PUT URLs for a predict's output parts) and no credentials, and when the job ends any
other way than finished (canceled, timed out, failed, a Dask worker lost) the Dask workers that ran
it are restarted, because a task running native code cannot be stopped otherwise: the cluster is
free again at once, and a lost peer's allreduce never hangs the others.
"""

from __future__ import annotations

import logging
from typing import Any

from app.core.domain import Job, JobStatus
from app.core.errors import Conflict, InfraError, UserError
from app.core.storage import dataset_key, dataset_part_key, model_key
from app.engines.results import result_keys
from app.jobs.actors import (
    finished_message,
    record_model_size,
    run_operation,
    scratch_dir,
    url_expiry_s,
)
from app.jobs.context import WorkerContext

log = logging.getLogger("tabjob.engines")


def run(ctx: WorkerContext, job: Job) -> None:
    """Run ``job`` (engine ``dask``) and end it, freeing the Dask workers when it did not finish."""
    scheduler = ctx.settings.dask_scheduler_address
    if not scheduler:
        raise InfraError(
            "This worker has no Dask scheduler configured (TABJOB_DASK_SCHEDULER_ADDRESS).",
            code="platform.engine_unavailable",
            hint="This is retried; an operator must configure the Dask engine on the workers.",
        )
    time_limit_s = min(job.time_limit_s or float("inf"), ctx.settings.time_limit_s(job.lane))
    operation, kwargs = _operation(ctx, job, scheduler, time_limit_s)
    try:
        with scratch_dir(ctx, job.id) as scratch:
            kwargs["scratch_dir"] = scratch
            summary = run_operation(ctx, job, operation, kwargs, time_limit_s)
    except BaseException:
        _free(ctx, job, scheduler)
        raise
    if job.kind == "fit":
        record_model_size(ctx, job, summary)
    ctx.end(job, JobStatus.FINISHED, finished_message(operation.removeprefix("dask_"), summary),
            result=summary, progress=1.0)  # fmt: skip


def _free(ctx: WorkerContext, job: Job, scheduler: str) -> None:
    """Restart the Dask workers after a job that did not finish (see the module docstring)."""
    from ml.distributed.cluster import ClusterUnavailable, free_workers

    try:
        restarted = free_workers(scheduler)
        if restarted:
            text = f"Restarted {len(restarted)} Dask workers to stop what was left of the job."
            ctx.state.events.add(job.id, "engine", text)
    except (ClusterUnavailable, OSError, TimeoutError) as exc:  # the job's own outcome matters more
        log.warning("could not restart the Dask workers after job %s: %s", job.id, exc)


def part_keys(ctx: WorkerContext, job: Job) -> list[str]:
    """The store keys of the job's dataset: its parts in order, or the single file as one part;
    refused when any changed since submission (the combined ETag covers every part)."""
    dataset = ctx.state.datasets.get(job.tenant, job.dataset_id) if ctx.state.datasets.exists(job.dataset_id) else None
    if dataset is None:
        raise UserError(
            f"Dataset '{job.dataset_id}' was deleted after the job was submitted.",
            code="dataset.deleted", hint="Upload the data again and submit the job again.", status=409,
        )  # fmt: skip
    if not dataset.parts:
        from app.jobs.actors import refuse_changed_dataset

        refuse_changed_dataset(ctx, job)
        return [dataset_key(job.tenant, job.dataset_id)]
    from app.usecases.parts import combined_etag

    keys = [dataset_part_key(job.tenant, job.dataset_id, i) for i in range(dataset.parts)]
    infos = [ctx.store.stat(k) for k in keys]
    if any(i is None for i in infos) or combined_etag([i for i in infos if i]) != job.dataset_etag:
        raise UserError(
            f"A part of dataset '{job.dataset_id}' was replaced or deleted after the job was submitted.",
            code="dataset.changed", hint="Upload the data as a new dataset and submit the job again.", status=409,
        )  # fmt: skip
    return keys


def _operation(ctx: WorkerContext, job: Job, scheduler: str, time_limit_s: float) -> tuple[str, dict[str, Any]]:
    store, tenant, expires_s = ctx.store, job.tenant, url_expiry_s(time_limit_s)
    keys = part_keys(ctx, job)
    common: dict[str, Any] = {
        "scheduler": scheduler,
        "part_urls": [store.internal_get_url(k, expires_s) for k in keys],
        "workers_wait_s": ctx.settings.dask_workers_wait_s,
        "min_workers": ctx.settings.dask_min_workers,
    }
    if job.kind == "fit":
        return "dask_fit", {
            **common, "model_url": store.internal_put_url(model_key(tenant, job.id), expires_s),
            "params": job.params, "target": job.target, "task": job.task,
            "threads_per_worker": ctx.settings.dask_threads_per_worker,
        }  # fmt: skip
    assert job.model_id is not None
    model = ctx.state.jobs.get(job.model_id)
    digest = (model.result or {}).get("model_sha256") if model else None
    if model is None or store.stat(model_key(tenant, job.model_id)) is None or not digest:
        raise Conflict(f"The model '{job.model_id}' is no longer available.", code="model.not_found")
    outputs = result_keys(tenant, job.id, len(keys))
    return "dask_predict", {
        **common, "model_url": store.internal_get_url(model_key(tenant, job.model_id), expires_s),
        "result_urls": [store.internal_put_url(k, expires_s) for k in outputs], "model_sha256": digest,
    }  # fmt: skip
