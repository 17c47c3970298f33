"""The embedded stack's large and gpu lanes scale to zero, as KEDA scales them in a cluster: the
lane's worker starts when a job waits on the lane and stops once the lane has had nothing queued,
running or delayed for ``idle_stop_s`` seconds (``tabjob stack --lane-idle-stop-s``; 0 keeps
them running). The small lane, where toy jobs must start at once, always runs.

Why: most work on one machine runs on the small lane (lane ``auto`` sends a dataset to the large
lane from 1,000,000 rows or 64 MiB), and the two idle workers held about 100 MiB of the stack's
idle PSS (about 50 MiB each, measured with ``python -m bench.stack_start``). A job on an idle
lane waits for its worker to start (about 2 s on 2 vCPUs) before it runs minutes to hours.

Demand is what KEDA's Redis trigger reads in the chart (the lane's messages, pending or in flight,
and its delayed ones, which only a running worker moves back into the queue) plus the lane's
queued and running jobs, so a lost slot token cannot strand a job: one probe round trip a tick
(``app.local.valkey_probe``). A worker is stopped with SIGTERM only when nothing is running or
queued; a job submitted in that instant is handed back by the stopping worker, and the next tick
starts the worker again.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.keys import KEYS, lane_queue
from app.local import valkey_probe
from app.local.servers import Valkey
from app.local.supervision import Child

log = logging.getLogger("tabjob.stack")
ON_DEMAND_LANES = ("large", "gpu")
DEFAULT_IDLE_STOP_S = 30.0


def lane_demand(host: str, port: int, password: str | None, lanes: list[str]) -> dict[str, int]:
    """Per lane: messages pending, in flight or delayed, plus jobs queued or running."""
    commands: list[tuple[str, ...]] = []
    for lane in lanes:
        queue = lane_queue(lane)
        commands += [("HLEN", f"{queue}.msgs"), ("HLEN", f"{queue}.DQ.msgs")]
        commands += [("ZCARD", KEYS.lane(lane, "queued")), ("SCARD", KEYS.lane(lane, "running"))]
    counts = valkey_probe.ask(host, port, password, *commands)
    return {lane: sum(counts[4 * i : 4 * i + 4]) for i, lane in enumerate(lanes)}


@dataclass
class OnDemandWorkers:
    """Starts and stops the workers of ``lanes`` on demand (``idle_stop_s`` > 0), or keeps them
    running like the others (0)."""

    lanes: tuple[str, ...] = ON_DEMAND_LANES
    idle_stop_s: float = DEFAULT_IDLE_STOP_S
    idle_since: dict[str, float] = field(default_factory=dict)
    stopping: set[str] = field(default_factory=set)  # children told to stop for want of work

    def managed_lanes(self) -> tuple[str, ...]:
        """The lanes whose worker starts with work, not with the stack."""
        return self.lanes if self.idle_stop_s > 0 else ()

    def starts_with_the_stack(self, lane: str) -> bool:
        """Whether ``lane``'s worker starts with the stack (and is restarted), not with work."""
        return lane not in self.managed_lanes()

    def stopped_on_purpose(self, child: Child) -> bool:
        """Whether ``child``, found exited, was stopped here (not restarted: started on demand)."""
        if child.name not in self.stopping:
            return False
        self.stopping.discard(child.name)
        child.process = None
        return True

    def scale(self, children: list[Child], valkey: Valkey, spawn: Callable[[Child], None]) -> None:
        """Start the worker of a lane with work and none running; stop one idle long enough."""
        managed = [c for c in children if not self.starts_with_the_stack(c.lane) and c.name not in self.stopping]
        if not managed:
            return
        try:
            waiting = lane_demand(valkey.host, valkey.port, valkey.password, [c.lane or "" for c in managed])
        except valkey_probe.ValkeyProbeError:
            return  # Valkey restarting: decide on the next tick
        now = time.monotonic()
        for child in managed:
            work = waiting.get(child.lane or "", 0)
            running = child.process is not None and child.process.poll() is None
            if child.process is None and work:
                log.info("starting the %s lane's worker: %d job(s) or message(s) waiting", child.lane, work)
                spawn(child)
            if not running or work:
                self.idle_since.pop(child.name, None)
                continue
            since = self.idle_since.setdefault(child.name, now)
            if now - since >= self.idle_stop_s and child.process is not None:
                log.info("stopping the %s lane's worker: no work for %.0f s", child.lane, now - since)
                self.stopping.add(child.name)
                self.idle_since.pop(child.name, None)
                child.process.send_signal(signal.SIGTERM)
