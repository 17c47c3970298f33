"""The oldest queued job's age (``tabjob_oldest_queued_job_age_seconds``, behind the alert
TabjobJobsWaitingTooLong) and queue positions come from the lane's queued set: a repair by the
reaper must keep a waiting job's place in it, or every reap would make old jobs look new."""

from __future__ import annotations

import time

from app.core.domain import Job, JobStatus, new_id
from app.observability.queues import lane_snapshot
from app.state import State


def _queued(state: State, at: float) -> Job:
    job = Job(id=new_id("job"), tenant="t-reap", kind="fit", lane="gpu", status=JobStatus.QUEUED)
    job.created_at = job.queued_at = at
    return state.jobs.create(job)


def test_a_reap_keeps_queued_jobs_in_their_place(settings, broker_db):
    # Given two jobs queued on the gpu lane (no worker here takes them), the first long ago
    state = State(client=broker_db, retention_s=600)
    now = time.time()
    old, new = _queued(state, now - 600), _queued(state, now - 5)
    key = state.keys.lane("gpu", "queued")
    try:
        # When the reaper repairs every counted job
        state.reaper.reap(stale_after_s=60)
        # Then both keep their scores, so their order and the oldest one's age stay true
        assert broker_db.zscore(key, old.id) == old.created_at
        assert broker_db.zscore(key, new.id) == new.created_at
        assert broker_db.zrank(key, old.id) < broker_db.zrank(key, new.id)
        assert lane_snapshot(broker_db, "gpu")["oldest_queued_age_s"] >= 590
    finally:
        for job in (old, new):
            broker_db.zrem(key, job.id)
            broker_db.zrem(state.keys.lane("gpu", "since"), job.id)
            broker_db.srem(state.keys.tenant("t-reap", "queued"), job.id)
            broker_db.delete(state.keys.job(job.id))
