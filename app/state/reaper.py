"""The reaper: repairs the counters a crash can still leave wrong.

Status changes and counters move together in one script, but a worker can still die while it
holds a running slot: its job stays ``started`` in the tenant's running set until Dramatiq
redelivers the message, and a record lost with the broker's last second of writes can leave an
id in a set for ever. Workers run the reaper periodically (one at a time, under a lock); each
repair is its own atomic script, so reapers racing each other or a worker are harmless.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from app.core.domain import LANES, TERMINAL_STATUSES
from app.core.keys import Keys
from app.state.connection import Conn
from app.state.events import Events

REQUEUE_MESSAGE = "Its worker stopped answering; the job waits to run again on another worker."


@dataclass
class Reaped:
    """What one pass repaired: ids freed from counters, and started jobs sent back to queued."""

    released: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)


class Reaper:
    def __init__(self, conn: Conn, keys: Keys, events: Events) -> None:
        self.conn, self.keys, self.events = conn, keys, events

    def reap_if_due(self, *, stale_after_s: float, every_s: float) -> Reaped | None:
        """Run one pass unless another worker ran one in the last ``every_s`` seconds."""
        if not self.conn.r.set(self.keys.reaper_lock(), "1", nx=True, px=max(1, int(every_s * 1000))):
            return None
        return self.reap(stale_after_s=stale_after_s)

    def reap(self, *, stale_after_s: float) -> Reaped:
        """Repair every job in a counter: an ended or missing job leaves its sets; a started job
        whose worker sent no heartbeat for ``stale_after_s`` seconds goes back to queued (its
        message is redelivered by the broker, and then it starts again)."""
        now = time.time()
        reaped = Reaped()
        lanes, ended = json.dumps(LANES), json.dumps(sorted(TERMINAL_STATUSES))
        for job_id, tenant in self._counted().items():
            outcome = self.conn.script("repair")(
                args=[self.keys.prefix, job_id, tenant, now - stale_after_s, now, lanes, REQUEUE_MESSAGE, ended]
            )
            if outcome == "released":
                reaped.released.append(job_id)
            elif outcome == "requeued":
                reaped.requeued.append(job_id)
                self.events.add(job_id, "worker_lost", REQUEUE_MESSAGE)
        return reaped

    def _counted(self) -> dict[str, str]:
        """Every job id in a counter, with its tenant when the counter says it ('' otherwise)."""
        r, k = self.conn.r, self.keys
        found: dict[str, str] = {}
        for tenant in r.smembers(k.tenants()):
            for what in ("queued", "running"):
                found.update(dict.fromkeys(r.smembers(k.tenant(tenant, what)), tenant))
        for lane in LANES:
            for job_id in [*r.zrange(k.lane(lane, "queued"), 0, -1), *r.smembers(k.lane(lane, "running"))]:
                found.setdefault(job_id, "")
        return found
