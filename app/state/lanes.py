"""Lanes and tenants: live workers, load, and why a queued job waits."""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.core import ids
from app.core.domain import Job
from app.core.keys import Keys
from app.state.connection import Conn, Read
from app.state.jobs import owned_job

# A worker that has not sent a heartbeat for this long is not counted as available.
WORKER_ALIVE_S = 30.0
# The most jobs ahead of a queued job whose estimates are read for its expected start.
MAX_AHEAD = 500


@dataclass(frozen=True)
class Waiting:
    """Why a queued job waits: its place in its lane, the lane's load, the tenant's running jobs."""

    position: int | None
    queued: int
    running: int
    workers: int
    tenant_running: int
    # Read with it, for the expected start: (estimate, started_at) as stored (JSON or None) of the
    # jobs ahead (at most MAX_AHEAD, in pick order), then of the running ones.
    ahead_load: tuple[tuple[str | None, str | None], ...] = ()
    running_load: tuple[tuple[str | None, str | None], ...] = ()


class Lanes:
    def __init__(self, conn: Conn, keys: Keys) -> None:
        self.conn, self.keys = conn, keys

    def job_view(self, tenant: str, job_id: str) -> Read[tuple[Job, Waiting | None]]:
        """The read of a job and, when queued, why it waits, in one round trip (NotFound when
        missing or another tenant's)."""
        reply = self.job_view_reply(tenant, job_id)
        return Read(reply.call, lambda found: decode_job_view(tenant, job_id, found))

    def job_view_reply(self, tenant: str, job_id: str) -> Read[list]:
        """``job_view``'s round trip with its reply left undecoded (``decode_job_view`` decodes
        it): GET /v1/jobs/{id} answers an unchanged ended job from the raw record alone."""
        ids.require("job", job_id)  # a malformed id never reaches a key
        key = self.keys.job(job_id)
        args = [self.keys.prefix, tenant, time.time() - WORKER_ALIVE_S, MAX_AHEAD]
        return Read(lambda side: side.scripts["job_view"](keys=[key], args=args), lambda found: found)

    def heartbeat(self, lane: str, worker: str) -> None:
        """Say ``worker`` is alive on ``lane`` (and forget workers silent for ten windows)."""
        key = self.keys.lane_workers(lane)
        pipe = self.conn.r.pipeline()
        pipe.zadd(key, {worker: time.time()})
        pipe.zremrangebyscore(key, "-inf", time.time() - 10 * WORKER_ALIVE_S)
        pipe.execute()

    def leave(self, lane: str, worker: str) -> None:
        """``worker`` stopped: it no longer counts, and its jobs are not waited for."""
        self.conn.r.zrem(self.keys.lane_workers(lane), worker)

    def workers(self, lane: str) -> list[str]:
        return self.conn.r.zrange(self.keys.lane_workers(lane), 0, -1)

    def tenant_load(self, tenant: str) -> dict[str, int]:
        pipe = self.conn.r.pipeline()
        pipe.scard(self.keys.tenant(tenant, "queued"))
        pipe.scard(self.keys.tenant(tenant, "running"))
        queued, running = pipe.execute()
        return {"queued": queued, "running": running}


def decode_job_view(tenant: str, job_id: str, found: list) -> tuple[Job, Waiting | None]:
    """The job and, when queued, why it waits, from the ``job_view`` script's reply (NotFound
    when missing or another tenant's). The reply has one element unless the job is queued."""
    raw = found[0]
    job = owned_job(tenant, job_id, dict(zip(raw[::2], raw[1::2], strict=True)))
    if len(found) == 1:
        return job, None
    rank, queued, running, workers, tenant_running, ahead = found[1]
    position = None if rank == -1 else rank + 1
    load = [tuple(pair) for pair in found[2]]
    return job, Waiting(position, queued, running, workers, tenant_running, tuple(load[:ahead]), tuple(load[ahead:]))
