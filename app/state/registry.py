"""The model registry in Valkey: per tenant, named models with numbered versions, aliases that
point at a version, each alias's history of moves, and metrics measured per (version, dataset).

Versions are taken by one script that also remembers which fit job took which version, so a fit
redelivered after it registered gets its version back instead of a second one. Aliases move only
under the alias's lock (``alias_lock``), and the move and its history entry are written together.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.core.errors import InfraError
from app.core.keys import Keys
from app.state.connection import Conn

# How long an alias lock lives if its holder dies, and how long a mover waits for it.
ALIAS_LOCK_TTL_S = 30.0
ALIAS_LOCK_WAIT_S = 20.0
LOCK_POLL_S = 0.02
MAX_HISTORY = 1000

# KEYS: versions hash, jobs hash, counter, tenant's names; ARGV: job id, record JSON, now, name.
_REGISTER = """
local v = redis.call('HGET', KEYS[2], ARGV[1])
if v then
  redis.call('HSET', KEYS[1], v, ARGV[2])
  return {tonumber(v), 0}
end
v = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], v, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], v)
redis.call('ZADD', KEYS[4], 'NX', ARGV[3], ARGV[4])
return {v, 1}
"""
# KEYS: the lock; ARGV: the holder's token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Registry:
    def __init__(self, conn: Conn, keys: Keys) -> None:
        self.conn, self.keys = conn, keys
        self._register = conn.r.register_script(_REGISTER)
        self._release = conn.r.register_script(_RELEASE)

    def _key(self, tenant: str, name: str, what: str) -> str:
        return f"{self.keys.prefix}:registry:{tenant}:{name}:{what}"

    def _names(self, tenant: str) -> str:
        return self.keys.tenant(tenant, "models")

    def register(self, tenant: str, name: str, job_id: str, record: dict[str, Any]) -> tuple[int, bool]:
        """Make the fit ``job_id`` the next version of ``name``: (its version, whether it is new).
        The same job registered again (a redelivery that trained again) keeps the version it took
        the first time, with this attempt's record (its model's digest and metrics)."""
        keys = [self._key(tenant, name, w) for w in ("versions", "jobs", "next")] + [self._names(tenant)]
        version, new = self._register(keys=keys, args=[job_id, json.dumps(record, default=str), time.time(), name])
        return int(version), bool(new)

    def keep_record(self, job_id: str) -> None:
        """Keep a registered fit's job record (and timeline) past the job retention: predicts
        by ``name@alias`` read the model's record, and a champion may be months old."""
        job_key = self.keys.job(job_id)
        pipe = self.conn.r.pipeline()
        for key in (job_key, self.keys.events(job_id), self.keys.events_total(job_id)):
            pipe.persist(key)
        pipe.execute()

    def names(self, tenant: str) -> list[str]:
        return self.conn.r.zrange(self._names(tenant), 0, -1)

    def exists(self, tenant: str, name: str) -> bool:
        return self.conn.r.zscore(self._names(tenant), name) is not None

    def versions(self, tenant: str, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``, oldest first."""
        raw = self.conn.r.hgetall(self._key(tenant, name, "versions"))
        return sorted(({**json.loads(v), "version": int(k)} for k, v in raw.items()), key=lambda r: r["version"])

    def version(self, tenant: str, name: str, version: int) -> dict[str, Any] | None:
        raw = self.conn.r.hget(self._key(tenant, name, "versions"), str(version))
        return {**json.loads(raw), "version": version} if raw else None

    def latest(self, tenant: str, name: str) -> int | None:
        count = self.conn.r.hlen(self._key(tenant, name, "versions"))
        if not count:
            return None
        return max(int(v) for v in self.conn.r.hkeys(self._key(tenant, name, "versions")))

    def aliases(self, tenant: str, name: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.conn.r.hgetall(self._key(tenant, name, "aliases")).items()}

    def alias(self, tenant: str, name: str, alias: str) -> int | None:
        found = self.conn.r.hget(self._key(tenant, name, "aliases"), alias)
        return int(found) if found else None

    def move_alias(self, tenant: str, name: str, alias: str, version: int, entry: dict[str, Any]) -> dict[str, Any]:
        """Point ``alias`` at ``version`` and append the move to its history, in one transaction.
        Call it holding ``alias_lock``: ``from`` is read here and must not change meanwhile."""
        previous = self.alias(tenant, name, alias)
        entry = {"version": version, "from": previous, "at": time.time(), **entry}
        pipe = self.conn.r.pipeline(transaction=True)
        pipe.hset(self._key(tenant, name, "aliases"), alias, version)
        pipe.rpush(self._key(tenant, name, f"history:{alias}"), json.dumps(entry, default=str))
        pipe.ltrim(self._key(tenant, name, f"history:{alias}"), -MAX_HISTORY, -1)
        pipe.execute()
        return entry

    def history(self, tenant: str, name: str, alias: str) -> list[dict[str, Any]]:
        """Every move of ``alias``, oldest first."""
        return [json.loads(e) for e in self.conn.r.lrange(self._key(tenant, name, f"history:{alias}"), 0, -1)]

    def evaluation(self, tenant: str, name: str, version: int, dataset_id: str) -> dict[str, float] | None:
        """The metrics of ``version`` measured on ``dataset_id``, if measured."""
        raw = self.conn.r.hget(self._key(tenant, name, "evaluations"), f"{version}:{dataset_id}")
        return json.loads(raw) if raw else None

    def record_evaluation(
        self, tenant: str, name: str, version: int, dataset_id: str, metrics: dict[str, float]
    ) -> None:
        self.conn.r.hset(self._key(tenant, name, "evaluations"), f"{version}:{dataset_id}", json.dumps(metrics))

    @contextmanager
    def alias_lock(self, tenant: str, name: str, alias: str) -> Iterator[None]:
        """Hold the lock of ``name``'s ``alias``: one mover at a time (fits promoting, people
        rolling back). Expires after ALIAS_LOCK_TTL_S if its holder dies.

        Raises:
          InfraError: not acquired within ALIAS_LOCK_WAIT_S (retried like any platform error).
        """
        key, token = self._key(tenant, name, f"lock:{alias}"), secrets.token_hex(16)
        deadline = time.monotonic() + ALIAS_LOCK_WAIT_S
        while not self.conn.r.set(key, token, nx=True, px=int(ALIAS_LOCK_TTL_S * 1000)):
            if time.monotonic() >= deadline:
                raise InfraError(
                    f"The alias '{alias}' of '{name}' stayed locked by another mover for {ALIAS_LOCK_WAIT_S:g} s.",
                    code="registry.busy",
                    hint="Try again in a moment.",
                )
            time.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            self._release(keys=[key], args=[token])
