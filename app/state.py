"""Job and dataset records, their events, and the counters behind limits and queue positions.

Everything lives in Valkey under ``tabjob:`` so admins and users read one place. A job record
is a hash of JSON-encoded fields; status transitions run as one Lua script so a cancel and a
start can never both win. Finished records expire after the retention period; a JSON manifest
of each finished job is also written to the object store by the worker.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import redis
import redis.asyncio

from app import ids
from app.errors import Conflict, InfraError, NotFound, TooManyJobs
from app.ids import new_id

JobStatus = Literal["queued", "started", "finished", "failed", "canceled"]
TERMINAL: frozenset[str] = frozenset({"finished", "failed", "canceled"})
ACTIVE: tuple[str, ...] = ("queued", "started")
MAX_EVENTS = 500
WORKER_ALIVE_S = 30.0

# Set fields only when the current status is one of ARGV[1] (a JSON list); return the status
# found, or nil when the job does not exist.
_TRANSITION = """
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return nil end
local allowed = cjson.decode(ARGV[1])
for _, s in ipairs(allowed) do
  if '"' .. s .. '"' == cur then
    redis.call('HSET', KEYS[1], unpack(ARGV, 2))
    if ARGV[2] == 'status' then redis.call('HINCRBY', KEYS[1], 'version', 1) end
    return cur
  end
end
return '!' .. cur
"""

# A job and, when it is queued, why it waits, in one round trip (the route clients poll).
# KEYS[1] the job; ARGV: key prefix, tenant, "now - worker alive window".
_JOB_VIEW = """
local raw = redis.call('HGETALL', KEYS[1])
if #raw == 0 then return {raw} end
local job = {}
for i = 1, #raw, 2 do job[raw[i]] = raw[i + 1] end
if job['status'] ~= '"queued"' or job['tenant'] ~= cjson.encode(ARGV[2]) then return {raw} end
local lane = ARGV[1] .. ':lane:' .. cjson.decode(job['lane'])
local id = cjson.decode(job['id'])
return {raw, {
  redis.call('ZRANK', lane .. ':queued', id) or -1,
  redis.call('ZCARD', lane .. ':queued'),
  redis.call('SCARD', lane .. ':running'),
  redis.call('ZCOUNT', lane .. ':workers', ARGV[3], '+inf'),
  redis.call('SCARD', ARGV[1] .. ':tenant:' .. ARGV[2] .. ':running'),
}}
"""

_FORGET_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Reserve a queued slot for a tenant: SADD only when the set is below ARGV[1].
_ADMIT = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
return 1
"""


def _encode(fields: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v, default=str) for k, v in fields.items()}


def _decode(raw: dict[str, str]) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in raw.items()}


class StateStore:
    """Reads and writes records in Valkey.

    Parameters:
      client: a redis client with ``decode_responses=True``.
      retention_s: how long finished jobs and their events are kept, in seconds.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        retention_s: int,
        prefix: str = "tabjob",
        async_client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.r = client
        self.ar = async_client
        self.retention_s = retention_s
        self.p = prefix
        self._transition = client.register_script(_TRANSITION)
        self._admit = client.register_script(_ADMIT)
        self._forget_if = client.register_script(_FORGET_IF)
        self._job_view = client.register_script(_JOB_VIEW)
        self._ajob_view = async_client.register_script(_JOB_VIEW) if async_client is not None else None

    # ---- keys
    def job_key(self, job_id: str) -> str:
        return f"{self.p}:job:{job_id}"

    def events_total_key(self, job_id: str) -> str:
        return f"{self.p}:job:{job_id}:events_total"

    def events_key(self, job_id: str) -> str:
        return f"{self.p}:job:{job_id}:events"

    def dataset_key(self, dataset_id: str) -> str:
        return f"{self.p}:dataset:{dataset_id}"

    def tenant_key(self, tenant: str, what: str) -> str:
        return f"{self.p}:tenant:{tenant}:{what}"

    def lane_key(self, lane: str, what: str) -> str:
        return f"{self.p}:lane:{lane}:{what}"

    def ping(self) -> None:
        try:
            self.r.ping()
        except redis.RedisError as exc:
            raise InfraError(f"The broker is unavailable ({type(exc).__name__}).") from exc

    # ---- datasets
    def create_dataset(self, tenant: str, **fields: Any) -> dict[str, Any]:
        record = {"id": new_id("ds"), "tenant": tenant, "state": "awaiting_upload", "created_at": time.time()}
        record.update(fields)
        pipe = self.r.pipeline()
        pipe.hset(self.dataset_key(record["id"]), mapping=_encode(record))
        pipe.zadd(self.tenant_key(tenant, "datasets"), {record["id"]: record["created_at"]})
        pipe.execute()
        return record

    def get_dataset(self, tenant: str, dataset_id: str) -> dict[str, Any]:
        """The dataset, or NotFound when it does not exist or belongs to another tenant."""
        ids.require("ds", dataset_id)  # a malformed id never reaches a key
        record = _decode(self.r.hgetall(self.dataset_key(dataset_id)))
        if not record or record.get("tenant") != tenant:
            raise NotFound(f"No dataset with id '{dataset_id}'.", code="dataset.not_found")
        return record

    def update_dataset(self, dataset_id: str, **fields: Any) -> None:
        self.r.hset(self.dataset_key(dataset_id), mapping=_encode(fields))

    def list_datasets(self, tenant: str, *, limit: int, before: float | None) -> list[dict[str, Any]]:
        ids = self.r.zrevrangebyscore(
            self.tenant_key(tenant, "datasets"), f"({before}" if before else "+inf", "-inf", start=0, num=limit
        )
        return [d for d in (self._get(self.dataset_key(i)) for i in ids) if d]

    # ---- jobs
    def admit(self, tenant: str, job_id: str, max_queued: int) -> None:
        """Reserve one of the tenant's queued slots, or raise TooManyJobs (429)."""
        if not self._admit(keys=[self.tenant_key(tenant, "queued")], args=[max_queued, job_id]):
            raise TooManyJobs(
                f"You already have {max_queued} jobs waiting, the most allowed at once.",
                code="job.too_many_queued",
                hint="Wait for some to start, or cancel ones you no longer need, then submit again.",
                headers={"Retry-After": "30"},
            )

    def create_job(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store a new queued job (its tenant slot must already be admitted)."""
        record = {"status": "queued", "phase": "queued", "attempts": 0, "version": 0, **record}
        pipe = self.r.pipeline()
        pipe.hset(self.job_key(record["id"]), mapping=_encode(record))
        pipe.zadd(self.tenant_key(record["tenant"], "jobs"), {record["id"]: record["created_at"]})
        pipe.zadd(self.lane_key(record["lane"], "queued"), {record["id"]: record["created_at"]})
        pipe.rpush(self.events_key(record["id"]), json.dumps(_event("queued", f"Queued on the {record['lane']} lane.")))
        pipe.incr(self.events_total_key(record["id"]))
        pipe.execute()
        return record

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return self._get(self.job_key(job_id))

    def get_job_for(self, tenant: str, job_id: str, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The job (only ``fields`` of it, when given), or NotFound when it does not exist or
        belongs to another tenant."""
        ids.require("job", job_id)  # a malformed id never reaches a key
        if fields is None:
            return _owned(tenant, job_id, self.r.hgetall(self.job_key(job_id)))
        names = ("tenant", *fields)
        return _owned(tenant, job_id, dict(zip(names, self.r.hmget(self.job_key(job_id), names), strict=True)))

    async def aget_job_for(self, tenant: str, job_id: str, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
        """``get_job_for`` on the async client, for the routes clients poll (no thread hop)."""
        assert self.ar is not None, "no async client"
        ids.require("job", job_id)
        if fields is None:
            return _owned(tenant, job_id, await self.ar.hgetall(self.job_key(job_id)))
        names = ("tenant", *fields)
        return _owned(tenant, job_id, dict(zip(names, await self.ar.hmget(self.job_key(job_id), names), strict=True)))

    def list_jobs(
        self,
        tenant: str,
        *,
        limit: int,
        before: float | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """The tenant's jobs, newest first, created strictly before ``before`` (a Unix time)."""
        key = self.tenant_key(tenant, "jobs")
        found: list[dict[str, Any]] = []
        cursor = f"({before}" if before else "+inf"
        while len(found) < limit:
            ids = self.r.zrevrangebyscore(key, cursor, "-inf", start=0, num=limit * 2, withscores=True)
            if not ids:
                break
            for job_id, score in ids:
                cursor = f"({score}"
                job = self.get_job(job_id)
                if job is None:  # expired with its retention; forget it
                    self.r.zrem(key, job_id)
                    continue
                if (status and job["status"] != status) or (kind and job["kind"] != kind):
                    continue
                found.append(job)
                if len(found) == limit:
                    break
        return found

    def update_job(self, job_id: str, **fields: Any) -> None:
        self.r.hset(self.job_key(job_id), mapping=_encode(fields))

    def transition(self, job_id: str, allowed: tuple[str, ...], **fields: Any) -> str | None:
        """Set ``fields`` only if the job's status is in ``allowed``.

        Returns the status found when the change was made, ``'!<status>'`` when it was refused,
        or None when the job does not exist.
        """
        ordered = dict(fields)
        if "status" in ordered:  # first, so the script can count status changes
            ordered = {"status": ordered.pop("status"), **ordered}
        args: list[str] = [json.dumps(list(allowed))]
        for k, v in _encode(ordered).items():
            args += [k, v]
        found = self._transition(keys=[self.job_key(job_id)], args=args)
        return None if found is None else (found if found.startswith("!") else json.loads(found))

    def mark_started(self, job: dict[str, Any], worker: str) -> bool:
        """queued → started on ``worker``; False when the job is no longer queued (canceled)."""
        now = time.time()
        found = self.transition(
            job["id"],
            ("queued", "started"),
            status="started",
            phase="starting",
            started_at=now,
            worker=worker,
            error=None,
        )
        if found is None or str(found).startswith("!"):
            return False
        pipe = self.r.pipeline()
        pipe.hincrby(self.job_key(job["id"]), "attempts", 1)
        pipe.zrem(self.lane_key(job["lane"], "queued"), job["id"])
        pipe.srem(self.tenant_key(job["tenant"], "queued"), job["id"])
        pipe.sadd(self.tenant_key(job["tenant"], "running"), job["id"])
        pipe.sadd(self.lane_key(job["lane"], "running"), job["id"])
        pipe.execute()
        return True

    def requeue(self, job: dict[str, Any], reason: str) -> None:
        """started → queued, for a retry after a platform failure (nothing when it ended meanwhile)."""
        found = self.transition(job["id"], ("started",), status="queued", phase="queued", message=reason)
        if found is None or str(found).startswith("!"):
            return
        pipe = self.r.pipeline()
        pipe.srem(self.tenant_key(job["tenant"], "running"), job["id"])
        pipe.srem(self.lane_key(job["lane"], "running"), job["id"])
        pipe.sadd(self.tenant_key(job["tenant"], "queued"), job["id"])
        pipe.zadd(self.lane_key(job["lane"], "queued"), {job["id"]: time.time()})
        pipe.execute()

    def finish(self, job: dict[str, Any], status: str, *, allowed: tuple[str, ...] = ACTIVE, **fields: Any) -> bool:
        """Move a job to a terminal status if its status is one of ``allowed``; False otherwise.

        The counters follow whoever wins the status change, so a cancel racing a start leaves
        no stale entry behind."""
        found = self.transition(job["id"], allowed, status=status, phase=status, ended_at=time.time(), **fields)
        if found is None or str(found).startswith("!"):
            return False
        pipe = self.r.pipeline()
        for key in (
            self.tenant_key(job["tenant"], "queued"),
            self.tenant_key(job["tenant"], "running"),
            self.lane_key(job["lane"], "running"),
        ):
            pipe.srem(key, job["id"])
        pipe.zrem(self.lane_key(job["lane"], "queued"), job["id"])
        pipe.expire(self.job_key(job["id"]), self.retention_s)
        pipe.expire(self.events_key(job["id"]), self.retention_s)
        pipe.expire(self.events_total_key(job["id"]), self.retention_s)
        pipe.execute()
        return True

    def request_cancel(self, job_id: str) -> None:
        self.update_job(job_id, cancel_requested=True)

    def cancel_requested(self, job_id: str) -> bool:
        return self.r.hget(self.job_key(job_id), "cancel_requested") == "true"

    # ---- events
    def add_event(self, job_id: str, kind: str, message: str | None = None, **extra: Any) -> None:
        """Append to the job's timeline, which keeps its last MAX_EVENTS events."""
        pipe = self.r.pipeline()
        pipe.rpush(self.events_key(job_id), json.dumps(_event(kind, message, **extra), default=str))
        pipe.ltrim(self.events_key(job_id), -MAX_EVENTS, -1)
        pipe.incr(self.events_total_key(job_id))
        pipe.execute()

    def events(self, job_id: str, *, after: int = 0) -> list[dict[str, Any]]:
        """Events numbered from ``after`` on. ``seq`` counts every event ever added, so a
        follower's position stays right after older events were trimmed."""
        pipe = self.r.pipeline()
        pipe.get(self.events_total_key(job_id))
        pipe.lrange(self.events_key(job_id), 0, -1)
        total, raw = pipe.execute()
        first = int(total or len(raw)) - len(raw)  # the seq of the oldest event kept
        return [{"seq": first + i, **json.loads(e)} for i, e in enumerate(raw) if first + i >= after]

    # ---- lanes and tenants
    def job_view(self, tenant: str, job_id: str) -> tuple[dict[str, Any], dict[str, int | None] | None]:
        """The job and, when queued, why it waits (position, lane load, the tenant's running
        jobs), in one round trip."""
        ids.require("job", job_id)
        return _view(tenant, job_id, self._job_view(keys=[self.job_key(job_id)], args=self._view_args(tenant)))

    async def ajob_view(self, tenant: str, job_id: str) -> tuple[dict[str, Any], dict[str, int | None] | None]:
        """``job_view`` on the async client, for the route clients poll (no thread-pool hop)."""
        assert self._ajob_view is not None, "no async client"
        ids.require("job", job_id)
        found = await self._ajob_view(keys=[self.job_key(job_id)], args=self._view_args(tenant))
        return _view(tenant, job_id, found)

    def _view_args(self, tenant: str) -> list[Any]:
        return [self.p, tenant, time.time() - WORKER_ALIVE_S]

    def worker_heartbeat(self, lane: str, worker: str) -> None:
        pipe = self.r.pipeline()
        pipe.zadd(self.lane_key(lane, "workers"), {worker: time.time()})
        pipe.zremrangebyscore(self.lane_key(lane, "workers"), "-inf", time.time() - 10 * WORKER_ALIVE_S)
        pipe.execute()

    def tenant_load(self, tenant: str) -> dict[str, int]:
        pipe = self.r.pipeline()
        pipe.scard(self.tenant_key(tenant, "queued"))
        pipe.scard(self.tenant_key(tenant, "running"))
        queued, running = pipe.execute()
        return {"queued": queued, "running": running}

    # ---- deduplication and idempotency
    def remember(self, key: str, job_id: str, ttl_s: int | None = None) -> str:
        """Map ``key`` to ``job_id`` unless already mapped (atomically); return what holds it."""
        existing = self.r.set(f"{self.p}:{key}", job_id, nx=True, ex=ttl_s, get=True)
        return job_id if existing is None else existing

    def forget(self, key: str) -> None:
        self.r.delete(f"{self.p}:{key}")

    def forget_if(self, key: str, value: str) -> None:
        """Delete ``key`` only while it still maps to ``value`` (not a newer claim)."""
        self._forget_if(keys=[f"{self.p}:{key}"], args=[value])

    def assign(self, key: str, value: str, ttl_s: int | None = None) -> None:
        self.r.set(f"{self.p}:{key}", value, ex=ttl_s)

    def _get(self, key: str) -> dict[str, Any] | None:
        raw = self.r.hgetall(key)
        return _decode(raw) if raw else None


def _owned(tenant: str, job_id: str, raw: dict[str, str | None]) -> dict[str, Any]:
    """Decode a job record read from Valkey, or NotFound when missing or another tenant's."""
    record = {k: json.loads(v) for k, v in raw.items() if v is not None}
    if not record or record.get("tenant") != tenant:
        raise NotFound(f"No job with id '{job_id}'.", code="job.not_found")
    return record


def _view(tenant: str, job_id: str, found: list[Any]) -> tuple[dict[str, Any], dict[str, int | None] | None]:
    """Decode the reply of the _JOB_VIEW script."""
    raw = found[0]
    job = _owned(tenant, job_id, dict(zip(raw[::2], raw[1::2], strict=True)))
    if len(found) == 1:
        return job, None
    rank, queued, running, workers, tenant_running = found[1]
    return job, {
        "position": None if rank == -1 else rank + 1,
        "queued": queued,
        "running": running,
        "workers": workers,
        "tenant_running": tenant_running,
    }


def _event(kind: str, message: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"at": time.time(), "type": kind, "message": message, **extra}


def ensure_cancelable(job: dict[str, Any]) -> None:
    if job["status"] in TERMINAL:
        raise Conflict(
            f"Job '{job['id']}' has already ended ({job['status']}).",
            code="job.already_ended",
            hint="Only queued or started jobs can be canceled.",
        )
