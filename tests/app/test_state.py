"""The state store against real Valkey: transitions move status and counters as one step, the
reaper repairs what a dead worker leaves, and keys are spelled in one place."""

from __future__ import annotations

import secrets
import time

import pytest

from app.core.domain import Job, JobStatus, new_id
from app.jobs.broker import redis_client
from app.state import Keys, State, TenantBusy


@pytest.fixture
def state(settings) -> State:
    # A private key prefix: a queued job here has no slot token, and in the shared lanes a
    # worker of another test would pick it (a lane's message starts whichever job is next).
    return State(client=redis_client(settings, decode=True), retention_s=3600, keys=Keys(f"s{secrets.token_hex(4)}"))


def queued_job(state: State, tenant: str, lane: str = "large") -> Job:
    job = Job(id=new_id("job"), tenant=tenant, kind="fit", lane=lane, status=JobStatus.QUEUED, created_at=time.time())
    state.jobs.admit(tenant, job.id, 100)
    return state.jobs.create(job)


def counters(state: State, job: Job) -> dict[str, bool]:
    r, k = state.conn.r, state.keys
    return {
        "tenant_queued": r.sismember(k.tenant(job.tenant, "queued"), job.id) == 1,
        "tenant_running": r.sismember(k.tenant(job.tenant, "running"), job.id) == 1,
        "lane_queued": r.zscore(k.lane(job.lane, "queued"), job.id) is not None,
        "lane_running": r.sismember(k.lane(job.lane, "running"), job.id) == 1,
    }


QUEUED = {"tenant_queued": True, "tenant_running": False, "lane_queued": True, "lane_running": False}
RUNNING = {"tenant_queued": False, "tenant_running": True, "lane_queued": False, "lane_running": True}
NOWHERE = dict.fromkeys(QUEUED, False)


def test_status_and_counters_move_together(state):
    tenant = "t-" + secrets.token_hex(4)
    job = queued_job(state, tenant)
    assert counters(state, job) == QUEUED

    assert state.jobs.start(job, "w-1", running_limit=5)
    assert state.jobs.get(job.id).status == JobStatus.STARTED and state.jobs.get(job.id).attempts == 1
    assert counters(state, job) == RUNNING

    assert state.jobs.requeue(job, "retry")
    assert state.jobs.get(job.id).status == JobStatus.QUEUED and counters(state, job) == QUEUED

    assert state.jobs.start(job, "w-2", running_limit=5)
    assert state.jobs.end(job, JobStatus.FINISHED, result={"rows": 1})
    ended = state.jobs.get(job.id)
    assert ended.status == JobStatus.FINISHED and ended.result == {"rows": 1} and ended.attempts == 2
    assert counters(state, job) == NOWHERE
    assert 0 < state.conn.r.ttl(state.keys.job(job.id)) <= 3600
    # An ended job moves no more, and its counters stay empty.
    assert not state.jobs.end(job, JobStatus.CANCELED)
    assert not state.jobs.start(job, "w-3", running_limit=5)
    assert counters(state, job) == NOWHERE


def test_a_start_past_the_tenants_running_limit_is_refused_atomically(state):
    tenant = "t-" + secrets.token_hex(4)
    first, second = queued_job(state, tenant), queued_job(state, tenant)
    assert state.jobs.start(first, "w-1", running_limit=1)
    with pytest.raises(TenantBusy):
        state.jobs.start(second, "w-2", running_limit=1)
    assert state.jobs.get(second.id).status == JobStatus.QUEUED and counters(state, second) == QUEUED
    # A redelivered job that already holds its slot starts again (its worker died).
    assert state.jobs.start(first, "w-3", running_limit=1)
    assert state.jobs.get(first.id).attempts == 2


def test_a_requeue_for_another_worker_is_refused(state):
    job = queued_job(state, "t-" + secrets.token_hex(4))
    assert state.jobs.start(job, "w-new", running_limit=5)
    assert not state.jobs.requeue(job, "late", worker="w-old")
    assert state.jobs.get(job.id).status == JobStatus.STARTED


def test_the_reaper_frees_slots_of_ended_jobs_and_of_dead_workers(state):
    tenant = "t-" + secrets.token_hex(4)
    alive, dead, ended = (queued_job(state, tenant) for _ in range(3))
    state.lanes.heartbeat("large", "w-alive")
    assert state.jobs.start(alive, "w-alive", running_limit=5)
    assert state.jobs.start(dead, "w-dead", running_limit=5)  # w-dead never sent a heartbeat
    # A job id left in running sets although its job ended (as a lost write could leave it).
    assert state.jobs.end(ended, JobStatus.FAILED)
    r, k = state.conn.r, state.keys
    r.sadd(k.tenant(tenant, "running"), ended.id, "job_gone")
    r.sadd(k.lane("large", "running"), ended.id)

    reaped = state.reaper.reap(stale_after_s=30)

    assert {ended.id, "job_gone"} <= set(reaped.released)
    assert dead.id in reaped.requeued and alive.id not in reaped.requeued
    assert r.smembers(k.tenant(tenant, "running")) == {alive.id}
    assert state.jobs.get(dead.id).status == JobStatus.QUEUED and counters(state, dead) == QUEUED
    assert "worker_lost" in [e["type"] for e in state.events.since(dead.id)]
    assert state.jobs.get(alive.id).status == JobStatus.STARTED and counters(state, alive) == RUNNING


def test_one_reaper_pass_per_interval_across_workers(state):
    state.conn.r.delete(state.keys.reaper_lock())
    assert state.reaper.reap_if_due(stale_after_s=30, every_s=60) is not None
    assert state.reaper.reap_if_due(stale_after_s=30, every_s=60) is None
    state.conn.r.delete(state.keys.reaper_lock())


def test_the_async_and_blocking_reads_are_one_read(settings, state):
    import asyncio

    both = State(
        client=redis_client(settings, decode=True),
        async_client=redis_client(settings, decode=True, asynchronous=True),
        retention_s=3600,
        keys=state.keys,
    )
    job = queued_job(state, "t-" + secrets.token_hex(4))
    read = both.lanes.job_view(job.tenant, job.id)
    # A private loop: asyncio.run would leave no current event loop for later tests (Pulumi's).
    loop = asyncio.new_event_loop()
    try:
        assert both.conn.run(read) == loop.run_until_complete(both.conn.arun(read))
    finally:
        loop.close()
    found, waiting = both.conn.run(read)
    assert found == state.jobs.get(job.id) and waiting is not None and waiting.position is not None
