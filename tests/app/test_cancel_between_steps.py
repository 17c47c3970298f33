"""A cancel that lands while a two-step job moves from one step to the next ends the job; it never
leaves it queued with its cancel flag set on a lane that may have no worker to end it (the gpu
lane scaled to zero). CI met it: a canceled job's prepare step found its matrix already in the
store, skipped to the gpu lane, and waited there, queued, until the test gave up.

The worker's half runs here in the test's process on the real broker and store, with the
interleavings placed by hand (``app.jobs.stepping`` on a ``WorkerContext`` of the test's); the
API's half is the real route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import api_client, make_settings, own_broker_env
from jobs_testing import upload

from app.core.domain import JobStatus
from app.core.errors import CanceledWhileRunning
from app.jobs import stepping
from app.jobs.broker import redis_client
from app.jobs.context import WorkerContext
from app.jobs.cpu_pool import LocalCorePool
from app.jobs.runner import JobRunner
from app.state import State
from app.usecases.steps import PREPARE, started

WORKER = "vm-test-1"


@pytest.fixture
def world(base_env, settings, monkeypatch) -> Iterator[tuple]:
    """An API client and a worker context on a broker database no worker consumes (the session's
    shared small-lane worker would take the job), so the job stays where the test puts it."""
    del settings  # asked for to create the store's bucket
    settings = make_settings(own_broker_env(base_env, 4))
    with api_client(settings) as api:
        services = api.app.state.services
        # The next step's message goes to this database's queue (a worker's global broker is its own).
        monkeypatch.setattr(stepping.dramatiq, "get_broker", lambda: services.broker)
        # The worker's own State, as a worker process has (the API's is patched by the last test).
        state = State(client=redis_client(settings, decode=True), retention_s=settings.job_retention_s)
        ctx = WorkerContext(
            settings=settings, state=state, store=services.store, runner=JobRunner(threads=1),
            worker_id=WORKER, lane="small", cores=LocalCorePool(1),
        )  # fmt: skip
        yield api, ctx


def started_prepare(api, ctx: WorkerContext, seed_files) -> str:
    """A two-step fit whose prepare step this test's 'worker' has started."""
    dataset = upload(api, seed_files["train"])
    job_id = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "model": "xgboost"}).json()["id"]
    job = ctx.state.jobs.get(job_id)
    assert job is not None and job.status == JobStatus.QUEUED
    assert ctx.state.jobs.start(job, WORKER, running_limit=100, steps=started(job.steps, PREPARE, "cpu"))
    return job_id


def test_a_cancel_before_the_move_ends_the_job_on_its_worker(world, seed_files):
    api, ctx = world
    job_id = started_prepare(api, ctx, seed_files)
    assert api.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "started"  # the worker stops it
    # The prepare step is done (or skipped: its matrix was there): the next step is not queued
    with pytest.raises(CanceledWhileRunning):
        stepping._to_model_step(ctx, ctx.state.jobs.get(job_id), skipped=True, text="skipped")
    job = ctx.state.jobs.get(job_id)
    assert (job.status, job.lane) == (JobStatus.STARTED, "small")  # for the middleware to end as canceled


def test_a_cancel_during_the_move_ends_the_job_that_was_queued_again(world, seed_files, monkeypatch):
    api, ctx = world
    job_id = started_prepare(api, ctx, seed_files)
    move = ctx.state.jobs.move

    def cancel_then_move(*args, **kwargs):
        # The worker has looked at the flag and found none; the cancel comes now and sees the job
        # started (so leaves it to the worker), then the move puts it in the gpu queue.
        if kwargs.get("lane") == "gpu":
            assert api.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "started"
        return move(*args, **kwargs)

    monkeypatch.setattr(ctx.state.jobs, "move", cancel_then_move)
    stepping._to_model_step(ctx, ctx.state.jobs.get(job_id), skipped=False, text="prepared")
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "canceled", job
    assert [(s["name"], s["status"]) for s in job["steps"]] == [("prepare", "finished"), ("model", "canceled")]
    assert job_id not in ctx.state.conn.r.zrange(ctx.state.keys.lane("gpu", "queued"), 0, -1)


def test_a_cancel_after_the_move_is_ended_by_the_api(world, seed_files):
    api, ctx = world
    job_id = started_prepare(api, ctx, seed_files)
    stepping._to_model_step(ctx, ctx.state.jobs.get(job_id), skipped=False, text="prepared")
    assert ctx.state.jobs.get(job_id).status == JobStatus.QUEUED
    assert api.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "canceled"


def test_a_cancel_that_read_the_job_before_the_move_still_ends_it(world, seed_files, monkeypatch):
    api, ctx = world
    job_id = started_prepare(api, ctx, seed_files)
    services = api.app.state.services
    request_cancel = services.state.jobs.request_cancel

    def move_then_flag(job_id_: str) -> None:
        # The API has read the job (started); the worker moves it on and finds no flag; then the flag.
        stepping._to_model_step(ctx, ctx.state.jobs.get(job_id), skipped=False, text="prepared")
        request_cancel(job_id_)

    monkeypatch.setattr(services.state.jobs, "request_cancel", move_then_flag)
    assert api.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "canceled"
