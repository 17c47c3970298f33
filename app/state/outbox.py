"""The webhook outbox: notifications waiting for delivery, kept in Valkey so they outlive the
process that wrote them.

- ``due`` is a sorted set of delivery ids scored by when each is next due (Unix seconds). A job's
  end adds its notification in the same script that ends it (``MOVE`` in ``app.state.scripts``);
  other notices are added by ``put``.
- ``entry:<delivery id>`` is a hash: ``job`` (the job whose record holds URL, secret and
  result) or ``url``/``secret``/``body``, with ``tenant``, ``attempts`` and ``claim``.
- A claim is a lease: the entry's score moves to the lease's end, so when the claiming process
  dies the entry is due again then and another process takes it. Settling checks the claim
  token, so a process that lost its lease cannot settle the entry another process now holds.
- ``leased:<tenant>`` holds the tenant's claims scored by their end: at most ``tenant_cap`` of
  one tenant's deliveries are in flight across all processes (a dead process's claims lapse).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from app.core.keys import Keys
from app.state.connection import Conn

# Claim the first due entry whose tenant has fewer than ARGV[4] claims in flight. ARGV: prefix,
# now, lease_s, tenant_cap, max_scan, token. Returns {delivery id, field, value, ...} or nil.
# An id whose entry is gone (expired with its job) leaves the due set.
CLAIM = """
local p, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local due = p .. ':outbox:due'
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
local busy = {}
for _, id in ipairs(ids) do
  local key = p .. ':outbox:entry:' .. id
  local tenant = redis.call('HGET', key, 'tenant')
  if not tenant then
    redis.call('ZREM', due, id)
  elseif not busy[tenant] then
    local leased = p .. ':outbox:leased:' .. tenant
    redis.call('ZREMRANGEBYSCORE', leased, '-inf', now)
    if redis.call('ZCARD', leased) < tonumber(ARGV[4]) then
      redis.call('ZADD', due, now + lease, id)
      redis.call('ZADD', leased, now + lease, id)
      redis.call('EXPIRE', leased, math.ceil(lease) * 2)
      redis.call('HSET', key, 'claim', ARGV[6])
      redis.call('HINCRBY', key, 'attempts', 1)
      local out = {id}
      for _, v in ipairs(redis.call('HGETALL', key)) do table.insert(out, v) end
      return out
    end
    busy[tenant] = true
  end
end
return nil
"""

# Settle a claimed entry when ARGV[3] still holds it: ARGV[4] '' deletes it (delivered, or given
# up), a time makes it due again then (a retry). ARGV: prefix, delivery id, token, retry_at.
# Returns 1 when settled, 0 when the claim was lost (the lease ran out and another took it).
SETTLE = """
local p, id = ARGV[1], ARGV[2]
local key = p .. ':outbox:entry:' .. id
if redis.call('HGET', key, 'claim') ~= ARGV[3] then return 0 end
local tenant = redis.call('HGET', key, 'tenant')
redis.call('ZREM', p .. ':outbox:leased:' .. tenant, id)
if ARGV[4] == '' then
  redis.call('DEL', key)
  redis.call('ZREM', p .. ':outbox:due', id)
else
  redis.call('HSET', key, 'claim', '')
  redis.call('ZADD', p .. ':outbox:due', tonumber(ARGV[4]), id)
end
return 1
"""


@dataclass(frozen=True)
class Claimed:
    """One entry this process holds until ``token`` settles it or its lease runs out."""

    delivery_id: str
    token: str
    tenant: str
    attempts: int  # this attempt's number, counting attempts of processes that died
    job_id: str | None  # a job's end: URL, secret and body come from the job's record
    url: str | None
    secret: str | None
    body: str | None


class Outbox:
    """The webhook outbox in Valkey (see the module's docstring)."""

    def __init__(self, conn: Conn, keys: Keys) -> None:
        self.conn, self.keys = conn, keys
        self._claim = conn.r.register_script(CLAIM)
        self._settle = conn.r.register_script(SETTLE)

    def put(self, tenant: str, url: str, secret: str, body: str, *, retention_s: int) -> str:
        """Add a notification (``body``, JSON) for ``url``, signed with ``secret`` (sealed or
        plain); due now. Returns its delivery id."""
        delivery_id = "whd_" + secrets.token_hex(12)
        entry = self.keys.outbox(f"entry:{delivery_id}")
        pipe = self.conn.r.pipeline()
        fields = {"tenant": tenant, "url": url, "secret": secret, "body": body, "attempts": 0}
        pipe.hset(entry, mapping=fields)
        pipe.expire(entry, retention_s)
        pipe.zadd(self.keys.outbox("due"), {delivery_id: time.time()})
        pipe.execute()
        return delivery_id

    def claim(self, *, lease_s: float, tenant_cap: int, max_scan: int = 64) -> Claimed | None:
        """Take the first due entry (its tenant below ``tenant_cap`` claims) for ``lease_s``."""
        token = secrets.token_hex(8)
        args = [self.keys.prefix, time.time(), lease_s, tenant_cap, max_scan, token]
        found = self._claim(keys=[], args=args)
        if not found:
            return None
        fields = dict(zip(found[1::2], found[2::2], strict=True))
        return Claimed(
            delivery_id=found[0], token=token, tenant=fields["tenant"], attempts=int(fields["attempts"]),
            job_id=fields.get("job"), url=fields.get("url"), secret=fields.get("secret"), body=fields.get("body"),
        )  # fmt: skip

    def done(self, claimed: Claimed) -> bool:
        """Remove a delivered (or given up) entry; False when the claim had been lost."""
        return bool(self._settle(keys=[], args=[self.keys.prefix, claimed.delivery_id, claimed.token, ""]))

    def retry_at(self, claimed: Claimed, when: float) -> bool:
        """Make the entry due again at ``when`` (Unix seconds); False when the claim had been lost."""
        return bool(self._settle(keys=[], args=[self.keys.prefix, claimed.delivery_id, claimed.token, when]))

    def pending(self) -> list[str]:
        """The delivery ids waiting or in flight, soonest due first."""
        return list(self.conn.r.zrange(self.keys.outbox("due"), 0, -1))
