"""Job records and their transitions.

A job record is a hash of JSON-encoded fields. Every status change runs as one Lua script
(``app.state.scripts.MOVE``) that also moves the job in the tenant's and lane's counters, so a
cancel and a start can never both win and a crash can never leave a counter behind. Ended
records expire after the retention period.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core import ids
from app.core.domain import ACTIVE_STATUSES, ErrorInfo, Job, JobKind, JobStatus, decode_fields, encode_fields
from app.core.errors import NotFound, TooManyJobs
from app.core.keys import Keys
from app.state.connection import Conn, Read
from app.state.events import event


class TenantBusy(Exception):
    """The tenant already runs as many jobs as allowed; the start was refused."""

    def __init__(self, running: int) -> None:
        super().__init__(f"the tenant runs {running} job(s)")
        self.running = running


# How many of a lane's first queued jobs one pick looks at before giving up (all held back by
# their tenants' limits or a retry's back-off): bounds the script's time.
PICK_MAX_SCAN = 500


@dataclass(frozen=True)
class Picked:
    """What one pick found: the job started (None when none could start), how many queued jobs
    were held back (their tenant's running limit, a retry's back-off), the ids newly told they
    wait for their tenant's limit, the earliest time a held-back retry may start, and how many
    a worker reserved for small work left to the others."""

    job: Job | None
    held: int = 0
    noted: list[str] = field(default_factory=list)
    retry_at: float | None = None
    passed: int = 0


class Jobs:
    """Reads and changes job records.

    Parameters:
      retention_s: how long ended jobs and their events are kept, in seconds.
    """

    def __init__(self, conn: Conn, keys: Keys, *, retention_s: int) -> None:
        self.conn, self.keys, self.retention_s = conn, keys, retention_s

    # ---- reads
    def get(self, job_id: str) -> Job | None:
        raw = self.conn.r.hgetall(self.keys.job(job_id))
        return Job.from_fields(decode_fields(raw)) if raw else None

    def owned(self, tenant: str, job_id: str, fields: tuple[str, ...] | None = None) -> Read[Job]:
        """The read of a tenant's job (only ``fields`` of it, when given); decoding raises
        NotFound when it does not exist or belongs to another tenant."""
        ids.require("job", job_id)  # a malformed id never reaches a key
        key = self.keys.job(job_id)
        if fields is None:
            return Read(lambda side: side.client.hgetall(key), lambda raw: owned_job(tenant, job_id, raw))
        names = ("tenant", *fields)
        assert {"id", "kind", "lane", "status"} <= set(names), "a partial Job still needs its identity"

        def decode(values: list[str | None]) -> Job:
            return owned_job(tenant, job_id, dict(zip(names, values, strict=True)))

        return Read(lambda side: side.client.hmget(key, names), decode)

    def get_for(self, tenant: str, job_id: str, fields: tuple[str, ...] | None = None) -> Job:
        return self.conn.run(self.owned(tenant, job_id, fields))

    def list(
        self,
        tenant: str,
        *,
        limit: int,
        before: float | None = None,
        status: JobStatus | None = None,
        kind: JobKind | None = None,
        match: Callable[[Job], bool] | None = None,
    ) -> list[Job]:
        """The tenant's jobs, newest first, created strictly before ``before`` (a Unix time);
        ``match`` keeps only the jobs it accepts (the dashboard's lane and model filters)."""
        key = self.keys.tenant(tenant, "jobs")
        found: list[Job] = []
        cursor = f"({before}" if before else "+inf"
        while len(found) < limit:
            ids = self.conn.r.zrevrangebyscore(key, cursor, "-inf", start=0, num=limit * 2, withscores=True)
            if not ids:
                break
            for job_id, score in ids:
                cursor = f"({score}"
                job = self.get(job_id)
                if job is None:  # expired with its retention; forget it
                    self.conn.r.zrem(key, job_id)
                elif (
                    (not status or job.status == status)
                    and (not kind or job.kind == kind)
                    and (match is None or match(job))
                ):
                    found.append(job)
                    if len(found) == limit:
                        break
        return found

    def check_owner(self, tenant: str, job_id: str) -> None:
        """NotFound unless the job exists and belongs to ``tenant`` (reads the tenant field only)."""
        ids.require("job", job_id)
        if self.conn.r.hget(self.keys.job(job_id), "tenant") != json.dumps(tenant):
            raise NotFound(f"No job with id '{job_id}'.", code="job.not_found")

    def cancel_requested(self, job_id: str) -> bool:
        return self.conn.r.hget(self.keys.job(job_id), "cancel_requested") == "true"

    # ---- writes
    def admit(self, tenant: str, job_id: str, max_queued: int) -> None:
        """Reserve one of the tenant's queued slots, or raise TooManyJobs (429)."""
        if not self.conn.script("admit")(keys=[self.keys.tenant(tenant, "queued")], args=[max_queued, job_id]):
            raise TooManyJobs(
                f"You already have {max_queued} jobs waiting, the most allowed at once.",
                code="job.too_many_queued",
                hint="Wait for some to start, or cancel ones you no longer need, then submit again.",
                headers={"Retry-After": "30"},
            )

    def create(self, job: Job) -> Job:
        """Store a new queued job (its tenant slot must already be admitted)."""
        k = self.keys
        pipe = self.conn.r.pipeline()
        pipe.hset(k.job(job.id), mapping=encode_fields(job.to_fields()))
        pipe.sadd(k.tenants(), job.tenant)
        pipe.zadd(k.tenant(job.tenant, "jobs"), {job.id: job.created_at})
        pipe.zadd(k.lane(job.lane, "queued"), {job.id: job.queue_score})
        pipe.zadd(k.lane(job.lane, "since"), {job.id: job.enqueued_at})
        pipe.rpush(k.events(job.id), json.dumps(event("queued", f"Queued on the {job.lane} lane.")))
        pipe.incr(k.events_total(job.id))
        pipe.execute()
        return job

    def update(self, job_id: str, **fields: Any) -> None:
        """Set fields that are not the status (phase, progress, message...)."""
        assert "status" not in fields, "status changes go through move()"
        self.conn.r.hset(self.keys.job(job_id), mapping=encode_fields(fields))

    def request_cancel(self, job_id: str) -> None:
        self.update(job_id, cancel_requested=True)

    def move(
        self,
        job_id: str,
        allowed: tuple[JobStatus, ...],
        to: JobStatus,
        *,
        running_limit: int | None = None,
        on_worker: str | None = None,
        **fields: Any,
    ) -> bool:
        """Move the job to ``to`` if its status is one of ``allowed`` (and, when ``on_worker`` is
        given, it runs on that worker), with its counters, in one step. False when refused.

        Raises:
          TenantBusy: a start was refused because the tenant runs ``running_limit`` jobs.
        """
        args: list[Any] = [self.keys.prefix, json.dumps(list(allowed)), to.value, time.time(), self.retention_s]
        args += ["" if running_limit is None else running_limit, on_worker or ""]
        for name, value in encode_fields(fields).items():
            args += [name, value]
        found = self.conn.script("move")(keys=[self.keys.job(job_id)], args=args)
        if found is not None and found.startswith("#"):
            raise TenantBusy(int(found[1:]))
        return found is not None and not found.startswith("!")

    def start(self, job: Job, worker: str, *, running_limit: int, **fields: Any) -> bool:
        """queued → started on ``worker`` (or started → started when redelivered after its worker
        died); False when it is no longer queued (canceled). Raises TenantBusy at the limit.
        ``fields`` are set with the change (a two-step job's steps)."""
        return self.move(
            job.id,
            ACTIVE_STATUSES,
            JobStatus.STARTED,
            running_limit=running_limit,
            phase="starting",
            started_at=time.time(),
            worker=worker,
            error=None,
            **fields,
        )

    def pick(
        self,
        lane: str,
        worker: str,
        *,
        running_limit: int | None,
        waiting_message: str,
        max_cells: int | None = None,
    ) -> Picked:
        """Start the job ``worker`` runs next on ``lane``: the cheapest (aged) queued job that
        may start now (``app.state.scripts.PICK``), of at most ``max_cells`` when given (a
        worker reserved for small work). Jobs held back by their tenant's running limit get
        ``waiting_message`` (once)."""
        args: list[Any] = [self.keys.prefix, lane, worker, time.time(), "" if running_limit is None else running_limit]
        args += [PICK_MAX_SCAN, waiting_message, "" if max_cells is None else max_cells]
        args += ["phase", json.dumps("starting"), "started_at", json.dumps(time.time()), "error", "null"]
        picked, held, noted, retry_at, passed = self.conn.script("pick")(args=args)
        return Picked(
            job=self.get(picked) if picked else None,
            held=int(held),
            noted=list(noted),
            retry_at=float(retry_at) if retry_at else None,
            passed=int(passed),
        )

    def small_work_waits(self, lane: str, max_cells: int) -> bool:
        """Whether one of the first queued jobs of ``lane`` costs at most ``max_cells``."""
        ids = self.conn.r.zrange(self.keys.lane(lane, "queued"), 0, PICK_MAX_SCAN - 1)
        pipe = self.conn.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.keys.job(job_id), "cost_cells")
        return any(cost not in (None, "null") and int(cost) <= max_cells for cost in pipe.execute())

    def requeue(
        self, job: Job, reason: str, *, worker: str | None = None, not_before: float | None = None, **fields: Any
    ) -> bool:
        """started → queued, for a retry after a platform failure (nothing when it ended
        meanwhile, or, with ``worker``, when another worker has it now). It is not picked again
        before ``not_before`` (a Unix time: the retry's back-off)."""
        return self.move(
            job.id,
            (JobStatus.STARTED,),
            JobStatus.QUEUED,
            on_worker=worker,
            phase="queued",
            queued_at=time.time(),
            worker=None,
            message=reason,
            not_before=not_before,
            **fields,
        )

    def end(
        self,
        job: Job,
        status: JobStatus,
        *,
        allowed: tuple[JobStatus, ...] = ACTIVE_STATUSES,
        error: ErrorInfo | None = None,
        **fields: Any,
    ) -> bool:
        """Move a job to the terminal ``status`` if its status is one of ``allowed``; False
        otherwise. Use ``app.jobs.ending.end_job``, which also records the event and manifest."""
        assert status.terminal
        return self.move(job.id, allowed, status, phase=status.value, ended_at=time.time(), error=error, **fields)


def owned_job(tenant: str, job_id: str, raw: dict[str, str | None]) -> Job:
    """A job record read from Valkey, or NotFound when missing or another tenant's."""
    fields = decode_fields(raw)
    if not fields or fields.get("tenant") != tenant:
        raise NotFound(f"No job with id '{job_id}'.", code="job.not_found")
    return Job.from_fields(fields)
