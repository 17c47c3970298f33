"""The overview behind ``GET /v1/overview``, the dashboard page and ``tabjob top``: lanes and their
load, running and waiting jobs (with phase, progress and why they wait), recent failures grouped
by error code, and the workers with what each runs.

Read from Valkey, the one source of truth for what runs and why it waits. A tenant sees its own
jobs and failures (other tenants' work shows only as load and busy workers); an admin sees all.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import redis

from app.core.domain import Job, JobStatus, decode_fields
from app.core.settings import Settings
from app.observability.failures import recent_failures
from app.observability.queues import lane_snapshot
from app.state import KEYS, Keys, Waiting
from app.usecases.queueing import queue_view

# At most this many running and this many waiting jobs are listed (the lane counts are exact).
MAX_LISTED = 100
FAILURE_WINDOW_S = 24 * 3600


@dataclass(frozen=True)
class Viewer:
    """Who asks: a tenant, and whether it may see everyone's jobs."""

    tenant: str
    admin: bool = False


def build_overview(
    r: redis.Redis, settings: Settings, viewer: Viewer, lanes: tuple[str, ...], *, keys: Keys = KEYS
) -> dict[str, Any]:
    """The whole picture for ``viewer`` (see the module docstring)."""
    now = time.time()
    snapshots = [lane_snapshot(r, lane, keys=keys) for lane in lanes]
    running_ids, waiting_ids = _visible_ids(r, viewer, snapshots, keys)
    running = [j for j in _jobs(r, running_ids, keys) if j.status == JobStatus.STARTED]
    waiting = [j for j in _jobs(r, waiting_ids, keys) if j.status == JobStatus.QUEUED]
    waiting = sorted(waiting, key=lambda j: j.enqueued_at)[:MAX_LISTED]
    reasons = _why_waiting(r, settings, waiting, {s["lane"]: s for s in snapshots}, keys)
    scope = None if viewer.admin else viewer.tenant
    failures = recent_failures(r, tenant=scope, since=now - FAILURE_WINDOW_S, keys=keys)
    return {
        "generated_at": now,
        "viewer": {"tenant": viewer.tenant, "admin": viewer.admin},
        "lanes": [_lane_public(s) for s in snapshots],
        "running": [_job_public(j, viewer, now) for j in running[:MAX_LISTED]],
        "waiting": [_job_public(j, viewer, now, queue) for j, queue in zip(waiting, reasons, strict=True)],
        "failures": failures,
        "failure_window_s": FAILURE_WINDOW_S,
        "workers": _workers(snapshots, {j.id for j in running}, now, viewer),
    }


def _visible_ids(r: redis.Redis, viewer: Viewer, snapshots: list[dict[str, Any]], keys: Keys) -> tuple[list, list]:
    pipe = r.pipeline(transaction=False)
    if viewer.admin:
        for snap in snapshots:
            pipe.smembers(keys.lane(snap["lane"], "running"))
            pipe.zrange(keys.lane(snap["lane"], "queued"), 0, MAX_LISTED - 1)
        found = pipe.execute()
        return sorted(i for chunk in found[0::2] for i in chunk), [i for chunk in found[1::2] for i in chunk]
    pipe.smembers(keys.tenant(viewer.tenant, "running"))
    pipe.smembers(keys.tenant(viewer.tenant, "queued"))
    running, waiting = pipe.execute()
    return sorted(running), list(waiting)


def _jobs(r: redis.Redis, ids: list[str], keys: Keys) -> list[Job]:
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hgetall(keys.job(job_id))
    return [Job.from_fields(decode_fields(raw)) for raw in pipe.execute() if raw]  # expired ones left out


def _why_waiting(
    r: redis.Redis, settings: Settings, waiting: list[Job], lanes: dict[str, dict[str, Any]], keys: Keys
) -> list[dict[str, Any] | None]:
    """The same "why it waits" as ``GET /v1/jobs/{id}``, for each waiting job, in two round trips."""
    tenants = sorted({j.tenant for j in waiting})
    pipe = r.pipeline(transaction=False)
    for job in waiting:
        pipe.zrank(keys.lane(job.lane, "queued"), job.id)
    for tenant in tenants:
        pipe.scard(keys.tenant(tenant, "running"))
    found = pipe.execute()
    ranks, tenant_running = found[: len(waiting)], dict(zip(tenants, found[len(waiting) :], strict=True))
    reasons = []
    for job, rank in zip(waiting, ranks, strict=True):
        snap = lanes[job.lane]
        position = None if rank is None else rank + 1
        load = Waiting(position, snap["queued"], snap["running"], len(snap["workers"]), tenant_running[job.tenant])
        reasons.append(queue_view(settings, job, load))
    return reasons


def _lane_public(snap: dict[str, Any]) -> dict[str, Any]:
    fields = ("lane", "queued", "running", "messages", "pending_messages", "delayed_messages", "oldest_queued_age_s")
    return {
        **{k: snap[k] for k in fields},
        "workers": len(snap["workers"]),
        "busy_workers": len(snap["busy_workers"]),
    }


def _job_public(job: Job, viewer: Viewer, now: float, queue: dict[str, Any] | None = None) -> dict[str, Any]:
    running = job.status == JobStatus.STARTED
    since = (job.started_at if running else job.enqueued_at) or now
    public = {
        "id": job.id,
        "kind": job.kind,
        "lane": job.lane,
        "status": job.status.value,
        "step": getattr(job, "step", None) or job.kind,
        "phase": job.phase,
        "progress": job.progress,
        "attempts": job.attempts,
        "for_s": max(0.0, now - since),
        "worker": worker_label(job.worker, viewer) if running else None,
        "cancel_requested": job.cancel_requested,
        "queue": queue,
    }
    if viewer.admin:
        public["tenant"] = job.tenant
    return public


def worker_label(worker: str | None, viewer: Viewer) -> str | None:
    """A worker as ``viewer`` may see it: its id (host name and process) for an admin; for a
    tenant, a stable pseudonym, since host names map the cluster for someone probing it."""
    if worker is None or viewer.admin:
        return worker
    return "worker-" + hashlib.sha256(worker.encode()).hexdigest()[:10]


def _workers(
    snapshots: list[dict[str, Any]], visible_jobs: set[str], now: float, viewer: Viewer
) -> list[dict[str, Any]]:
    """Every live worker; the job it runs is named only when the viewer may see that job."""
    workers = []
    for snap in snapshots:
        runs = {worker: job_id for job_id, worker in snap["runs_on"].items()}
        for worker, seen in sorted(snap["workers"].items()):
            job_id = runs.get(worker)
            workers.append(
                {
                    "id": worker_label(worker, viewer),
                    "lane": snap["lane"],
                    "busy": job_id is not None,
                    "job_id": job_id if job_id in visible_jobs else None,
                    "heartbeat_age_s": max(0.0, now - seen),
                }
            )
    return workers
