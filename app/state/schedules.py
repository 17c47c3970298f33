"""Schedules in Valkey: their records, which are due when, their runs, and the lease that lets
one scheduler at a time fire them.

- ``schedule:<id>``: the record (a hash of JSON-encoded fields, like a job's);
- ``schedules:due``: every active schedule scored by its ``next_run_at`` (paused ones leave it);
- ``schedule:<id>:runs``: its runs by tick (hash: tick → JSON), the newest ``MAX_RUNS`` kept;
- ``schedules:firing``: runs claimed but not yet submitted (``<id>|<tick>`` by claim time), so a
  scheduler that died between the two is finished by the next one;
- ``schedules:lease``: the scheduler lease (a token with a time to live).

A tick is claimed by one script that moves ``next_run_at`` only if it still holds the value the
scheduler read (compare-and-set) and records the run in the same step: two schedulers that both
read a due schedule (a lease that expired under a paused holder) cannot both fire its tick.
"""

from __future__ import annotations

import json
from typing import Any

from app.core.domain import decode_fields, encode_fields
from app.core.keys import Keys
from app.state.connection import Conn

MAX_RUNS = 200

# KEYS: record, due, runs, firing; ARGV: id, expected next_run_at (as stored), new next_run_at
# (number), tick field ('' for none), run JSON, firing member ('' for none), now.
_CLAIM = """
local current = redis.call('HGET', KEYS[1], 'next_run_at')
if (not current) or current ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], 'paused') == 'true' then return 0 end
redis.call('HSET', KEYS[1], 'next_run_at', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) end
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6]) end
return 1
"""
# KEYS: the lease; ARGV: token, time to live (ms). Take it when free, extend it when ours.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""


class Schedules:
    def __init__(self, conn: Conn, keys: Keys) -> None:
        self.conn, self.keys = conn, keys
        self._claim = conn.r.register_script(_CLAIM)
        self._hold = conn.r.register_script(_HOLD)

    def _record(self, schedule_id: str) -> str:
        return f"{self.keys.prefix}:schedule:{schedule_id}"

    def _runs(self, schedule_id: str) -> str:
        return f"{self.keys.prefix}:schedule:{schedule_id}:runs"

    @property
    def _due(self) -> str:
        return f"{self.keys.prefix}:schedules:due"

    @property
    def _firing(self) -> str:
        return f"{self.keys.prefix}:schedules:firing"

    def create(self, record: dict[str, Any]) -> None:
        pipe = self.conn.r.pipeline()
        pipe.hset(self._record(record["id"]), mapping=encode_fields(record))
        pipe.zadd(self.keys.tenant(record["tenant"], "schedules"), {record["id"]: record["created_at"]})
        if not record.get("paused"):
            pipe.zadd(self._due, {record["id"]: record["next_run_at"]})
        pipe.execute()

    def count(self, tenant: str) -> int:
        return int(self.conn.r.zcard(self.keys.tenant(tenant, "schedules")))

    def get(self, schedule_id: str) -> dict[str, Any] | None:
        raw = self.conn.r.hgetall(self._record(schedule_id))
        return decode_fields(raw) if raw else None

    def raw_next_run_at(self, schedule_id: str) -> str | None:
        """``next_run_at`` exactly as stored: what ``claim`` compares with."""
        return self.conn.r.hget(self._record(schedule_id), "next_run_at")

    def list(self, tenant: str) -> list[dict[str, Any]]:
        ids = self.conn.r.zrange(self.keys.tenant(tenant, "schedules"), 0, -1)
        return [s for s in (self.get(i) for i in ids) if s is not None]

    def update(self, schedule_id: str, **fields: Any) -> None:
        self.conn.r.hset(self._record(schedule_id), mapping=encode_fields(fields))

    def pause(self, schedule_id: str) -> None:
        pipe = self.conn.r.pipeline(transaction=True)
        pipe.hset(self._record(schedule_id), "paused", "true")
        pipe.zrem(self._due, schedule_id)
        pipe.execute()

    def resume(self, schedule_id: str, next_run_at: float) -> None:
        pipe = self.conn.r.pipeline(transaction=True)
        pipe.hset(self._record(schedule_id), mapping=encode_fields({"paused": False, "next_run_at": next_run_at}))
        pipe.zadd(self._due, {schedule_id: next_run_at})
        pipe.execute()

    def delete(self, tenant: str, schedule_id: str) -> None:
        pipe = self.conn.r.pipeline(transaction=True)
        pipe.delete(self._record(schedule_id), self._runs(schedule_id))
        pipe.zrem(self._due, schedule_id)
        pipe.zrem(self.keys.tenant(tenant, "schedules"), schedule_id)
        pipe.execute()

    def due(self, now: float, limit: int = 100) -> list[str]:
        """Ids of the active schedules whose next run is at or before ``now``, earliest first."""
        return self.conn.r.zrangebyscore(self._due, "-inf", now, start=0, num=limit)

    def claim(
        self, schedule_id: str, expected: str, next_run_at: float, run: dict[str, Any] | None, *, now: float,
        firing: bool,
    ) -> bool:  # fmt: skip
        """Move the schedule's ``next_run_at`` from ``expected`` (as stored) to ``next_run_at`` and
        record ``run`` (marked firing when ``firing``), only if nobody moved it meanwhile."""
        keys = [self._record(schedule_id), self._due, self._runs(schedule_id), self._firing]
        tick = f"{run['scheduled_for']:.0f}" if run else ""
        member = f"{schedule_id}|{tick}" if run and firing else ""
        args = [schedule_id, expected, json.dumps(next_run_at), tick, json.dumps(run or {}, default=str), member, now]
        claimed = bool(self._claim(keys=keys, args=args))
        if claimed and run:
            self._trim_runs(schedule_id)
        return claimed

    def record_run(self, schedule_id: str, run: dict[str, Any]) -> None:
        """Write (or rewrite) a run and take it off the firing list when it has settled."""
        tick = f"{run['scheduled_for']:.0f}"
        pipe = self.conn.r.pipeline(transaction=True)
        pipe.hset(self._runs(schedule_id), tick, json.dumps(run, default=str))
        if run["status"] != "firing":
            pipe.zrem(self._firing, f"{schedule_id}|{tick}")
        pipe.execute()

    def run(self, schedule_id: str, tick: float) -> dict[str, Any] | None:
        raw = self.conn.r.hget(self._runs(schedule_id), f"{tick:.0f}")
        return json.loads(raw) if raw else None

    def runs(self, schedule_id: str) -> list[dict[str, Any]]:
        """The schedule's runs, newest first."""
        raw = self.conn.r.hgetall(self._runs(schedule_id))
        return sorted((json.loads(v) for v in raw.values()), key=lambda r: r["scheduled_for"], reverse=True)

    def stalled(self, before: float) -> list[tuple[str, float]]:
        """(schedule id, tick) of runs claimed before ``before`` and still not submitted."""
        members = self.conn.r.zrangebyscore(self._firing, "-inf", before, start=0, num=100)
        out = []
        for member in members:
            schedule_id, _, tick = member.partition("|")
            if self.get(schedule_id) is None:  # deleted meanwhile: nothing to finish
                self.conn.r.zrem(self._firing, member)
                continue
            out.append((schedule_id, float(tick)))
        return out

    def hold_lease(self, token: str, ttl_s: float, name: str = "lease") -> bool:
        """Take or extend the scheduler lease ``name`` for ``token``: True while this scheduler holds it."""
        key = f"{self.keys.prefix}:schedules:{name}"
        return bool(self._hold(keys=[key], args=[token, int(ttl_s * 1000)]))

    def _trim_runs(self, schedule_id: str) -> None:
        key = self._runs(schedule_id)
        if self.conn.r.hlen(key) <= MAX_RUNS:
            return
        ticks = sorted(self.conn.r.hkeys(key), key=float)
        self.conn.r.hdel(key, *ticks[: len(ticks) - MAX_RUNS])
