"""The one actor: run a job by id, in one call or step by step. Which lane (queue) it runs on is
chosen at submission."""

from __future__ import annotations

import dramatiq

from app.core.domain import JobStatus
from app.jobs import stepping
from app.jobs.actors import finished_message, operation_for, record_model_size, run_operation, scratch_dir
from app.jobs.broker import ACTOR_NAME
from app.jobs.context import WorkerContext


def run_job(ctx: WorkerContext, job_id: str) -> None:
    """Run the fit or predict job ``job_id`` (already marked started by the middleware): in one
    call, or the step it is in for a two-step job (``app.jobs.stepping``)."""
    job = ctx.state.jobs.get(job_id)
    assert job is not None
    if job.engine:
        from app.engines import dask_jobs  # it imports distributed only where a job needs it

        dask_jobs.run(ctx, job)
        return
    if job.steps:
        stepping.run_step(ctx, job)
        return
    # The worker's own lane limit rules (it may have changed since submission).
    time_limit_s = min(job.time_limit_s or float("inf"), ctx.settings.time_limit_s(job.lane))
    operation, kwargs = operation_for(ctx, job, time_limit_s)
    with scratch_dir(ctx, job_id) as scratch:
        kwargs["scratch_dir"] = scratch
        summary = run_operation(ctx, job, operation, kwargs, time_limit_s)
    if job.kind == "fit":
        record_model_size(ctx, job, summary)
        if job.register is not None:  # the model registry: a new version, and maybe a promotion
            from app.jobs.registration import register_fit

            summary["registry"] = register_fit(ctx, job, summary, time_limit_s)
    ctx.end(job, JobStatus.FINISHED, finished_message(operation, summary), result=summary, progress=1.0)
    if job.register is not None:  # a registered version's record outlives the job retention
        ctx.state.registry.keep_record(job.id)


def declare(broker: dramatiq.Broker, ctx: WorkerContext) -> dramatiq.Actor:
    """Register the actor on a worker's ``broker``, running jobs with ``ctx`` (no retries of its
    own: the Retries middleware decides)."""

    def run(token_for: str) -> None:
        # The message names the job it was sent for, but it is only a slot token: the middleware
        # picked the job the lane's order says is next (``WorkerContext.current``).
        assert ctx.current is not None, f"no job picked for the message sent for {token_for}"
        run_job(ctx, ctx.current.id)

    return dramatiq.actor(run, broker=broker, actor_name=ACTOR_NAME, queue_name="small")
