"""When a queued job should start: the jobs ahead of it on its lane, each taking its duration
estimate (``app.usecases.estimates``), handed to the lane's consumers as they free up, the
running jobs' remaining time first.

Method. Each live consumer of the lane is free at the expected end of the job it runs (its
estimate minus the time it has run, never below now) or now when idle. The jobs ahead, in the
lane's pick order, go one by one to the consumer free first; the job starts when the first
consumer is free after them. The same is done with every estimate's ``low_s`` and ``high_s`` for
the interval. Jobs with no estimate yet (the first of their kind) count as taking no time, and
the answer says how many there were; a tenant's running limit and retry back-offs are not
foreseen (the basis says when the tenant is at its limit). With no live consumer on the lane
there is no time, only the reason.
"""

from __future__ import annotations

import heapq
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.core.domain import Job
from app.core.settings import Settings
from app.state import Waiting
from app.state.lanes import MAX_AHEAD

QUANTITIES = ("duration_s", "low_s", "high_s")


@dataclass(frozen=True)
class LaneLoad:
    """What runs and waits on a lane ahead of one job: consumers, running jobs (seconds they have
    run, their estimate), and the estimates of the queued jobs ahead, in pick order."""

    workers: int
    running: list[tuple[float, dict[str, Any] | None]]
    ahead: list[dict[str, Any] | None]
    more_ahead: int = 0


def lane_load(waiting: Waiting, now: float) -> LaneLoad:
    """The lane's consumers, running jobs and the jobs ahead of a queued job, as ``waiting`` read
    them (``State.lanes.job_view``, in its one round trip). Past ``MAX_AHEAD`` jobs ahead, which
    it does not read one by one, each counts as the median of those read."""
    ahead_count = max(0, (waiting.position or 1) - 1)
    ahead = [_decoded(estimate) for estimate, _ in waiting.ahead_load]
    running = [(max(0.0, now - (_decoded(s) or now)), _decoded(e)) for e, s in waiting.running_load]
    return LaneLoad(waiting.workers, running, ahead, more_ahead=max(0, ahead_count - MAX_AHEAD))


def _decoded(raw: str | None) -> Any:
    return json.loads(raw) if raw else None


def _start_after(load: LaneLoad, quantity: str) -> float:
    """Seconds from now until a consumer is free for the job, each job taking its ``quantity``
    (the jobs past ``MAX_AHEAD`` the median of those read)."""
    free = sorted(max(0.0, (estimate or {}).get(quantity, 0.0) - ran) for ran, estimate in load.running)
    free = (free + [0.0] * load.workers)[: load.workers]
    known = sorted(e[quantity] for e in load.ahead if e)
    typical = known[len(known) // 2] if known else 0.0
    heapq.heapify(free)
    for took in [(e or {}).get(quantity, 0.0) for e in load.ahead] + [typical] * load.more_ahead:
        heapq.heappush(free, heapq.heappop(free) + took)
    return free[0]


def expected_start(job: Job, load: LaneLoad, now: float, *, tenant_at_limit: bool = False) -> dict[str, Any]:
    """The fields of ``ExpectedStartPublic`` for ``job``, queued behind ``load`` (``tenant_at_limit``:
    its tenant already runs its most jobs at once, which the time does not foresee)."""
    jobs_ahead = len(load.ahead) + load.more_ahead
    unestimated = sum(1 for e in load.ahead if not e) + sum(1 for _, e in load.running if not e)
    shown: dict[str, Any] = {"jobs_ahead": jobs_ahead, "workers": load.workers, "unestimated": unestimated}
    if load.workers == 0:
        reason = f"No worker is running on the {job.lane} lane: it starts once one does (none is expected before)."
        return {**shown, "at": None, "low": None, "high": None, "in_s": None, "reason": reason, "basis": ""}
    seconds = {q: _start_after(load, q) for q in QUANTITIES}
    basis = (
        f"{jobs_ahead} job(s) ahead and {len(load.running)} running on the {job.lane} lane's "
        f"{load.workers} worker(s), each taking its duration estimate"
    )
    if unestimated:
        basis += f"; {unestimated} of them have no estimate yet and count as 0 s, so it may start later"
    if tenant_at_limit:
        basis += "; your account already runs its most jobs at once: it also waits for one of them to end"
    return {
        **shown,
        "at": _at(now + seconds["duration_s"]),
        "low": _at(now + seconds["low_s"]),
        "high": _at(now + seconds["high_s"]),
        "in_s": round(seconds["duration_s"], 3),
        "reason": None,
        "basis": basis + ".",
    }


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def for_queued(settings: Settings, job: Job, waiting: Waiting | None) -> dict[str, Any] | None:
    """The expected start of a queued job (None for any other)."""
    if waiting is None:
        return None
    now = time.time()
    at_limit = waiting.tenant_running >= settings.tenant_max_running
    return expected_start(job, lane_load(waiting, now), now, tenant_at_limit=at_limit)
