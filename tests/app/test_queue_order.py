"""Short jobs first, against real Valkey: a lane's waiting jobs are ordered by queue time plus a
handicap for their estimated cost, with aging; a worker's message is a slot token and the pick
script starts the job that order says is next, so the queue position a job shows is true.

Each test uses its own key prefix, so lanes other tests fill do not count here."""

from __future__ import annotations

import secrets
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from jobs_testing import upload, wait_for, wait_job

from app.api.main import create_app
from app.core.domain import Job, JobStatus, new_id
from app.jobs.broker import redis_client
from app.state import Keys, State
from app.usecases.submission import queue_handicap_s

WAITING = "Waiting: your account already runs 1 job(s), the most allowed at once."


@pytest.fixture
def state(settings) -> State:
    return State(client=redis_client(settings, decode=True), retention_s=3600, keys=Keys(f"q{secrets.token_hex(4)}"))


def queue(state: State, *, rows: int, columns: int = 50, tenant: str = "t", at: float | None = None, settings) -> Job:
    """Queue a fit of ``rows`` x ``columns`` on the small lane, queued at ``at`` (default now)."""
    now = time.time() if at is None else at
    job = Job(
        id=new_id("job"), tenant=tenant, kind="fit", lane="small", status=JobStatus.QUEUED, created_at=now,
        queued_at=now, dataset_rows=rows, queue_handicap_s=queue_handicap_s(settings, rows, columns),
        cost_cells=rows * columns,
    )  # fmt: skip
    state.jobs.admit(tenant, job.id, 1000)
    return state.jobs.create(job)


def position(state: State, job: Job) -> int | None:
    _, waiting = state.conn.run(state.lanes.job_view(job.tenant, job.id))
    return waiting.position if waiting else None


def pick(state: State, worker: str = "w", limit: int | None = None):
    return state.jobs.pick("small", worker, running_limit=limit, waiting_message=WAITING)


def test_a_toy_queued_after_big_jobs_starts_before_them(state, settings):
    # Given three 75,000 x 50 fits queued, then a 200-row toy
    t0 = time.time()
    big = [queue(state, rows=75_000, at=t0 + i * 0.01, settings=settings) for i in range(3)]
    toy = queue(state, rows=200, columns=5, at=t0 + 0.5, settings=settings)
    # Then the toy is first in line, and says so
    assert position(state, toy) == 1
    assert [position(state, b) for b in big] == [2, 3, 4]
    # When a worker takes a slot, it starts the toy, then the big ones in their order
    started = [pick(state).job for _ in range(4)]
    assert [j.id for j in started] == [toy.id, *(b.id for b in big)]
    assert all(j.status == JobStatus.STARTED and j.attempts == 1 for j in started)
    assert started[0].worker == "w" and started[0].phase == "starting"
    # A spare token finds nothing to run and holds nothing back
    nothing = pick(state)
    assert nothing.job is None and nothing.held == 0


def test_a_worker_reserved_for_small_work_leaves_big_jobs_to_the_others(state, settings):
    # Given big fits waiting (aged past any toy, so first in line) and no small work
    old = time.time() - 3600
    big = [queue(state, rows=75_000, at=old + i, settings=settings) for i in range(2)]
    reserved = {"running_limit": None, "waiting_message": WAITING, "max_cells": 1_000_000}
    # Then the reserved worker starts none of them, and says it left them to the others
    nothing = state.jobs.pick("small", "w-reserved", **reserved)
    assert nothing.job is None and nothing.passed == 2 and nothing.held == 0
    assert not state.jobs.small_work_waits("small", 1_000_000)
    # When a toy arrives behind them, the reserved worker starts it at once
    toy = queue(state, rows=200, columns=5, settings=settings)
    assert state.jobs.small_work_waits("small", 1_000_000)
    assert state.jobs.pick("small", "w-reserved", **reserved).job.id == toy.id
    # and an ordinary worker still takes the big ones in their order
    assert [pick(state).job.id for _ in big] == [b.id for b in big]


def test_a_big_job_is_not_starved_by_later_small_ones(state, settings):
    # Given a big job queued longer ago than its handicap, and toys queued since
    handicap = queue_handicap_s(settings, 900_000, 50)
    assert 0 < handicap <= settings.queue_handicap_max_s
    now = time.time()
    big = queue(state, rows=900_000, at=now - handicap - 1, settings=settings)
    toys = [queue(state, rows=100, columns=3, at=now - 0.5 + i * 0.01, settings=settings) for i in range(5)]
    # Then it goes before every job queued after its handicap ran out
    assert position(state, big) == 1
    assert pick(state).job.id == big.id
    assert [pick(state).job.id for _ in toys] == [t.id for t in toys]


def test_the_handicap_follows_the_cost_and_is_capped(settings):
    toy, medium = queue_handicap_s(settings, 200, 6), queue_handicap_s(settings, 75_000, 51)
    assert toy < 0.01 < medium
    assert queue_handicap_s(settings, 10**9, 1000) == settings.queue_handicap_max_s
    assert queue_handicap_s(settings.model_copy(update={"queue_handicap_s_per_million_cells": 0}), 10**6, 50) == 0


def test_a_tenant_at_its_limit_is_passed_over_not_blocking_the_lane(state, settings):
    # Given tenant A running its one allowed job, with another queued first in line
    a_running = queue(state, rows=100, tenant="a", settings=settings)
    assert pick(state, limit=1).job.id == a_running.id
    a_waiting = queue(state, rows=100, tenant="a", settings=settings)
    b_job = queue(state, rows=50_000, tenant="b", settings=settings)
    # When a worker takes a slot, B's job starts; A's is told why it waits (once)
    picked = pick(state, limit=1)
    assert picked.job.id == b_job.id
    assert picked.noted == [a_waiting.id]
    assert state.jobs.get(a_waiting.id).message == WAITING
    # A token that finds only held-back jobs says so (the worker puts it back for later)
    held = pick(state, limit=1)
    assert held.job is None and held.held == 1 and held.noted == []
    # Once A's running job ends, its waiting one starts
    assert state.jobs.end(a_running, JobStatus.FINISHED)
    assert pick(state, limit=1).job.id == a_waiting.id


def test_a_retry_waits_out_its_back_off(state, settings):
    job = queue(state, rows=100, settings=settings)
    assert pick(state).job.id == job.id
    later = time.time() + 60
    assert state.jobs.requeue(job, "retrying", not_before=later)
    held = pick(state)
    assert held.job is None and held.held == 1 and held.retry_at == pytest.approx(later)
    assert state.jobs.requeue(job, "x") is False  # already queued: nothing to do
    state.jobs.update(job.id, not_before=time.time() - 1)
    assert pick(state).job.id == job.id


def test_a_canceled_queued_job_leaves_the_order(state, settings):
    first, second = queue(state, rows=100, settings=settings), queue(state, rows=100, settings=settings)
    assert state.jobs.end(first, JobStatus.CANCELED, allowed=(JobStatus.QUEUED,))
    assert position(state, second) == 1
    # Its token is now spare: it starts the next job, and the next token finds nothing.
    assert pick(state).job.id == second.id
    assert pick(state).job is None


def test_a_job_requeued_by_the_reaper_keeps_its_place(state, settings):
    # Given a job started on a worker that then went silent, and a job queued after it
    t0 = time.time()
    lost = queue(state, rows=100, at=t0 - 10, settings=settings)
    assert pick(state, worker="w-dead").job.id == lost.id
    later = queue(state, rows=100, at=t0, settings=settings)
    # When the reaper finds its worker gone
    reaped = state.reaper.reap(stale_after_s=5)
    # Then it is queued again ahead of the later job (it had waited already)
    assert reaped.requeued == [lost.id]
    assert position(state, lost) == 1 and position(state, later) == 2
    assert pick(state, worker="w-new").job.id == lost.id
    assert state.jobs.get(lost.id).attempts == 2


def test_through_the_service_a_toy_starts_before_the_big_jobs_queued_ahead_of_it(
    settings, new_tenant, workers, seed_files, tmp_path
):
    # Given a worker busy with a job it holds (TABJOB_TEST_HOLD_JOBS), and an API whose cost
    # handicap is steep enough that no submission delay can age the big jobs past the toy
    workers.start("large", TABJOB_TEST_HOLD_JOBS=str(tmp_path))
    steep = settings.model_copy(update={"queue_handicap_s_per_million_cells": 1000.0})
    _, token = new_tenant()
    with TestClient(create_app(steep), headers={"authorization": f"Bearer {token}"}) as api:
        toy_file = tmp_path / "toy.parquet"
        frame = pd.DataFrame({"a": np.arange(60.0), "b": np.arange(60.0) % 7, "y": np.arange(60) % 2})
        frame.to_parquet(toy_file)
        big_data, toy_data = upload(api, seed_files["train"]), upload(api, toy_file)

        def fit(dataset: str, seed: int) -> str:
            params = {"max_iter": 3, "random_state": seed}
            body = {"kind": "fit", "dataset_id": dataset, "lane": "large", "params": params}
            response = api.post("/v1/jobs", json=body)
            assert response.status_code == 202, response.text
            return response.json()["id"]

        blocker = fit(big_data, 0)
        wait_for(lambda: list(tmp_path.glob("*.running")), 120)
        # When three big fits are queued, then a toy
        big = [fit(big_data, seed) for seed in (1, 2, 3)]
        toy = fit(toy_data, 4)
        # Then the toy shows it is next, and the big ones behind it in their order
        positions = [api.get(f"/v1/jobs/{j}").json()["queue"]["position"] for j in (toy, *big)]
        assert positions == [1, 2, 3, 4]
        (tmp_path / "release").touch()
        ended = {j: wait_job(api, j, timeout_s=180) for j in (blocker, *big, toy)}
    # And it really started before every one of them, and they in their queue order
    assert all(job["status"] == "finished" for job in ended.values()), ended
    starts = sorted((ended[j]["started_at"], j) for j in (toy, *big))
    assert [j for _, j in starts] == [toy, *big]


def test_a_queued_job_whose_token_was_lost_still_runs(api, broker_db, workers, seed_files):
    # Given a job queued on the large lane whose slot token is gone, as a crash between a job's
    # move and its enqueue would leave it (no worker runs on the lane yet)
    dataset = upload(api, seed_files["train"])
    body = {"kind": "fit", "dataset_id": dataset, "lane": "large", "params": {"max_iter": 3}}
    job = api.post("/v1/jobs", json=body).json()
    broker_db.delete("dramatiq:large", "dramatiq:large.msgs", "dramatiq:large.DQ", "dramatiq:large.DQ.msgs")
    # When a worker of the lane runs (its reaper pass tops the lane up to one token per job)
    workers.start("large")
    # Then the job runs to the end
    assert wait_job(api, job["id"], timeout_s=120)["status"] == "finished"
