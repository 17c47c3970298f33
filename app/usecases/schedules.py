"""Schedules: submit a fit or predict on a cron expression in a time zone, from the workers' own loop.

Every worker process runs ``Scheduler.run_forever`` in a thread; a lease in Valkey lets one of
them at a time fire due schedules, and each tick is claimed by a compare-and-set on the
schedule's ``next_run_at`` (``app.state.schedules``), so a tick fires exactly once whatever the
number of replicas. A fired tick submits an ordinary job through ``app.usecases.submission``
(the API's own path: validation, quotas, the tenant's rights) with an Idempotency-Key made of the
schedule and the tick, so a scheduler that dies between claiming a tick and submitting its job
is finished by the next one without a second job.

Rules, after Argo's CronWorkflow (``concurrencyPolicy``, ``startingDeadlineSeconds``) and
Vertex AI's schedules (catch-up):

- ``concurrency: forbid`` skips a tick while the previous run's job is queued or running (the
  run is recorded as ``skipped``); ``allow`` fires anyway.
- A tick fired more than ``STARTING_DEADLINE_S`` after its time was missed (the workers or the
  broker were down). ``catchup: last`` then runs the most recent missed tick, ``none`` runs none;
  ticks before the most recent are never run (the run records how many were missed).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from app.core.domain import JobStatus, new_id
from app.core.errors import InfraError, NotFound, TabjobError, UserError
from app.usecases.job_request import JobRequest
from app.usecases.services import Services
from app.webhooks.notices import schedule_failed

log = logging.getLogger("tabjob.schedules")
CONCURRENCY = ("forbid", "allow")
CATCHUP = ("none", "last")
# A tick fired later than this after its time counts as missed (Argo's startingDeadlineSeconds).
STARTING_DEADLINE_S = 60.0
# A run claimed this long ago and still not submitted belonged to a scheduler that died.
STALLED_AFTER_S = 30.0
# The scheduler lease outlives a few polls, so a holder that stops is replaced within seconds.
LEASE_TTL_S = 10.0
POLL_S = 1.0
MAX_SCHEDULES_PER_TENANT = 100
# How many missed ticks a run counts after an outage (the count stops there).
MAX_COUNTED_MISSES = 10_000


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UserError(
            f"Unknown time zone '{timezone}'.",
            code="schedule.invalid_timezone",
            hint="Use an IANA name such as 'Europe/Paris' or 'UTC'.",
            status=422,
        ) from exc


def check_cron(cron: str, timezone: str) -> None:
    """Refuse a cron expression (five fields: minute hour day month weekday) or time zone that
    cannot be used, naming the problem."""
    zone = _zone(timezone)
    if len(cron.split()) != 5:
        raise UserError(
            f"'{cron}' is not a five-field cron expression (minute hour day-of-month month day-of-week).",
            code="schedule.invalid_cron",
            hint="For every Monday at 06:00 write '0 6 * * 1'.",
            status=422,
        )
    try:
        next(CronSim(cron, datetime.now(zone)))  # a date that never comes (30 February) is refused here
    except (CronSimError, StopIteration) as exc:
        raise UserError(f"'{cron}' is not a valid cron expression: {exc}.", code="schedule.invalid_cron",
                        hint="For every Monday at 06:00 write '0 6 * * 1'.", status=422) from exc  # fmt: skip


def next_tick(cron: str, timezone: str, after: float) -> float:
    """The first tick strictly after ``after`` (Unix seconds), in the schedule's time zone."""
    return next(CronSim(cron, datetime.fromtimestamp(after, _zone(timezone)))).timestamp()


def last_tick(cron: str, timezone: str, at_or_before: float) -> float:
    """The latest tick at or before ``at_or_before`` (ticks fall on whole minutes)."""
    start = datetime.fromtimestamp(int(at_or_before) + 1, _zone(timezone))
    return next(CronSim(cron, start, reverse=True)).timestamp()


def create_schedule(
    svc: Services, tenant: str, *, cron: str, timezone: str, request: JobRequest, concurrency: str, catchup: str,
    webhook: tuple[str, str] | None, by: str, now: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Check and store a schedule; returns its record (with ``next_run_at``).

    The job's references (``sales@latest``, ``churn@champion``) are resolved now, to refuse one
    that names nothing, and again at every firing."""
    check_cron(cron, timezone)
    if concurrency not in CONCURRENCY or catchup not in CATCHUP:
        raise UserError("Unknown concurrency or catchup.", code="schedule.invalid_policy",
                        hint="concurrency: forbid or allow; catchup: none or last.", status=422)  # fmt: skip
    if svc.state.schedules.count(tenant) >= MAX_SCHEDULES_PER_TENANT:
        raise UserError(
            f"You have {MAX_SCHEDULES_PER_TENANT} schedules, the most a tenant may keep.",
            code="schedule.too_many",
            hint="Delete a schedule you no longer need (tabjob schedules delete ID).",
            status=429,
        )
    from app.usecases.submission import check_request  # its data checks import pyarrow: only when used

    check_request(svc, tenant, request)
    now = time.time() if now is None else now
    record = {
        "id": new_id("sch"), "tenant": tenant, "cron": cron, "timezone": timezone, "job": asdict(request),
        "concurrency": concurrency, "catchup": catchup, "paused": False, "created_at": now, "by": by,
        "next_run_at": next_tick(cron, timezone, now), "last_job_id": None,
        "webhook_url": webhook[0] if webhook else None, "webhook_secret": webhook[1] if webhook else None,
    }  # fmt: skip
    svc.state.schedules.create(record)
    return record


def get_schedule(svc: Services, tenant: str, schedule_id: str) -> dict[str, Any]:
    found = svc.state.schedules.get(schedule_id) if schedule_id.startswith("sch_") else None
    if found is None or found["tenant"] != tenant:
        raise NotFound(f"No schedule with id '{schedule_id}'.", code="schedule.not_found",
                       hint="List yours: tabjob schedules.")  # fmt: skip
    return found


def runs_view(svc: Services, schedule_id: str) -> list[dict[str, Any]]:
    """The schedule's runs, newest first; a run that submitted a job shows that job's status."""
    runs = svc.state.schedules.runs(schedule_id)
    for run in runs:
        job = svc.state.jobs.get(run["job_id"]) if run.get("job_id") else None
        run["outcome"] = run["status"]
        if job is not None:
            run["status"] = job.status.value
    return runs


def pause(svc: Services, tenant: str, schedule_id: str) -> dict[str, Any]:
    get_schedule(svc, tenant, schedule_id)
    svc.state.schedules.pause(schedule_id)
    return get_schedule(svc, tenant, schedule_id)


def resume(svc: Services, tenant: str, schedule_id: str, now: float | None = None) -> dict[str, Any]:
    """Resume from the next tick: the ticks of the pause are not caught up."""
    found = get_schedule(svc, tenant, schedule_id)
    now = time.time() if now is None else now
    svc.state.schedules.resume(schedule_id, next_tick(found["cron"], found["timezone"], now))
    return get_schedule(svc, tenant, schedule_id)


def delete(svc: Services, tenant: str, schedule_id: str) -> None:
    get_schedule(svc, tenant, schedule_id)
    svc.state.schedules.delete(tenant, schedule_id)


class Scheduler:
    """Fires due schedules while it holds the lease.

    Parameters:
      svc: the services jobs are submitted through.
      clock: the time now in Unix seconds (tests pass a clock they move).
      token: this scheduler's name in the lease (unique per process by default).
      lease: the lease's name; every scheduler of a deployment shares the default one (tests
        that run schedulers beside a real worker's take their own).
    """

    def __init__(
        self, svc: Services, *, clock: Callable[[], float] = time.time, token: str | None = None, lease: str = "lease"
    ) -> None:
        self.svc, self.clock, self.lease = svc, clock, lease
        self.token = token or secrets.token_hex(8)

    def tick(self) -> int:
        """Fire what is due now if this scheduler holds the lease; how many schedules it handled."""
        if not self.svc.state.schedules.hold_lease(self.token, LEASE_TTL_S, self.lease):
            return 0
        now = self.clock()
        for schedule_id, tick in self.svc.state.schedules.stalled(now - STALLED_AFTER_S):
            self._finish_stalled(schedule_id, tick)
        handled = 0
        for schedule_id in self.svc.state.schedules.due(now):
            try:
                handled += self._fire_due(schedule_id, now)
            except InfraError:
                raise
            except Exception:  # one broken schedule must not stop the others
                log.exception("schedule %s could not be fired", schedule_id)
        return handled

    def run_forever(self, stop: threading.Event, poll_s: float = POLL_S) -> None:
        """Tick every ``poll_s`` seconds until ``stop``; a broker outage is waited out."""
        while not stop.wait(poll_s):
            try:
                self.tick()
            except Exception:
                log.warning("the scheduler could not tick", exc_info=True)

    def _fire_due(self, schedule_id: str, now: float) -> int:
        store = self.svc.state.schedules
        expected = store.raw_next_run_at(schedule_id)
        schedule = store.get(schedule_id)
        if expected is None or schedule is None or schedule.get("paused"):
            return 0
        due_at = float(expected)
        if due_at > now:
            return 0
        cron, zone = schedule["cron"], schedule["timezone"]
        latest = last_tick(cron, zone, now)
        missed = _count_ticks(cron, zone, due_at, latest)
        run: dict[str, Any] = {"scheduled_for": latest, "claimed_at": now, "job_id": None, "missed_before": missed}
        late = now - latest > STARTING_DEADLINE_S
        previous = self.svc.state.jobs.get(schedule["last_job_id"]) if schedule.get("last_job_id") else None
        if late and schedule["catchup"] == "none":
            run |= {"status": "missed", "reason": f"{missed + 1} tick(s) missed while the scheduler was down; "
                    "catchup is none"}  # fmt: skip
        elif schedule["concurrency"] == "forbid" and previous is not None and previous.status.active:
            run |= {"status": "skipped", "reason": f"the previous run's job {previous.id} is still {previous.status}"}
        else:
            run |= {"status": "firing", "late": late}
        firing = run["status"] == "firing"
        if not store.claim(schedule_id, expected, next_tick(cron, zone, now), run, now=now, firing=firing):
            return 0  # another scheduler claimed this tick
        if firing:
            self._submit(schedule, run)
        return 1

    def _finish_stalled(self, schedule_id: str, tick: float) -> None:
        schedule, run = self.svc.state.schedules.get(schedule_id), self.svc.state.schedules.run(schedule_id, tick)
        if schedule is not None and run is not None and run["status"] == "firing":
            log.info("schedule %s: finishing the run of %s a stopped scheduler left", schedule_id, tick)
            self._submit(schedule, run)

    def _submit(self, schedule: dict[str, Any], run: dict[str, Any]) -> None:
        """Submit the run's job (idempotent per schedule and tick) and record how it went."""
        store, schedule_id = self.svc.state.schedules, schedule["id"]
        request = JobRequest(**{**schedule["job"], "actor": f"schedule:{schedule_id}"})
        key = f"schedule:{schedule_id}:{run['scheduled_for']:.0f}"
        from app.usecases.submission import submit  # its data checks import pyarrow: only when one fires

        try:
            done = submit(self.svc, schedule["tenant"], request, idempotency_key=key)
        except TabjobError as exc:
            if exc.retryable:  # the platform failed: the run stays firing and is finished later
                raise
            run |= {"status": "failed", "reason": exc.message, "error": exc.to_dict()}
            store.record_run(schedule_id, run)
            webhook = (schedule["webhook_url"], schedule["webhook_secret"]) if schedule.get("webhook_url") else None
            schedule_failed(self.svc.state, self.svc.settings, schedule["tenant"], schedule_id, run, webhook)
            return
        run |= {"status": "submitted", "job_id": done.job.id, "submitted_at": self.clock()}
        store.record_run(schedule_id, run)
        store.update(schedule_id, last_job_id=done.job.id)
        if done.job.status == JobStatus.FAILED:  # refused after queueing (the broker failed)
            log.warning("schedule %s: job %s failed at once", schedule_id, done.job.id)


def _count_ticks(cron: str, timezone: str, first: float, before: float) -> int:
    """How many ticks fall in [first, before): the ticks missed before the one fired."""
    if first >= before:
        return 0
    count, moment = 0, datetime.fromtimestamp(first, UTC) - timedelta(seconds=1)
    for at in CronSim(cron, moment.astimezone(_zone(timezone))):
        if at.timestamp() >= before or count >= MAX_COUNTED_MISSES:
            break
        count += 1
    return count
