"""The overview behind ``GET /v1/overview``, the dashboard page and ``tabjob top``: lanes and their
load, running and waiting jobs (with phase, progress and why they wait), recent failures grouped
by error code, and the workers with what each runs.

Read from Valkey, the one source of truth for what runs and why it waits. A tenant sees its own
jobs and failures (other tenants' work shows only as load and busy workers); an admin sees all.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from app.observability.failures import recent_failures
from app.observability.queues import lane_snapshot
from app.submission import describe_wait

# At most this many running and this many waiting jobs are listed (the counts are exact).
MAX_LISTED = 100
FAILURE_WINDOW_S = 24 * 3600
_JOB_FIELDS = ("id", "kind", "tenant", "lane", "status", "phase", "progress", "attempts", "created_at")
_JOB_FIELDS += ("queued_at", "started_at", "worker", "message", "cancel_requested", "step")


@dataclass(frozen=True)
class Viewer:
    """Who asks: a tenant, and whether it may see everyone's jobs."""

    tenant: str
    admin: bool = False


def build_overview(
    r: redis.Redis, settings: Any, viewer: Viewer, lanes: tuple[str, ...], *, prefix: str = "tabjob"
) -> dict[str, Any]:
    """The whole picture for ``viewer`` (see the module docstring)."""
    now = time.time()
    snapshots = [lane_snapshot(r, lane, prefix=prefix) for lane in lanes]
    running_ids, waiting_ids = _visible_ids(r, viewer, snapshots, prefix)
    running = [j for j in _jobs(r, running_ids, prefix) if j["status"] == "started"]
    waiting = [j for j in _jobs(r, waiting_ids, prefix) if j["status"] == "queued"]
    waiting.sort(key=lambda j: float(j.get("queued_at") or j["created_at"]))
    by_lane = {s["lane"]: s for s in snapshots}
    waiting = waiting[:MAX_LISTED]
    tenant_running = _tenant_running(r, waiting, prefix)
    pipe = r.pipeline(transaction=False)
    for job in waiting:
        pipe.zrank(f"{prefix}:lane:{job['lane']}:queued", job["id"])
    for job, rank in zip(waiting, pipe.execute(), strict=True):
        job["queue"] = _why_waiting(settings, job, rank, by_lane[job["lane"]], tenant_running)
    return {
        "generated_at": now,
        "viewer": {"tenant": viewer.tenant, "admin": viewer.admin},
        "lanes": [_lane_public(s) for s in snapshots],
        "running": [_job_public(j, viewer, now) for j in running[:MAX_LISTED]],
        "waiting": [_job_public(j, viewer, now) for j in waiting],
        "failures": recent_failures(
            r, tenant=None if viewer.admin else viewer.tenant, since=now - FAILURE_WINDOW_S, prefix=prefix
        ),
        "failure_window_s": FAILURE_WINDOW_S,
        "workers": _workers(snapshots, {j["id"] for j in running}, now),
    }


def _visible_ids(
    r: redis.Redis, viewer: Viewer, snapshots: list[dict[str, Any]], prefix: str
) -> tuple[list[str], list[str]]:
    pipe = r.pipeline(transaction=False)
    if viewer.admin:
        for snap in snapshots:
            pipe.smembers(f"{prefix}:lane:{snap['lane']}:running")
            pipe.zrange(f"{prefix}:lane:{snap['lane']}:queued", 0, MAX_LISTED - 1)
        found = pipe.execute()
        running = [i for chunk in found[0::2] for i in chunk]
        waiting = [i for chunk in found[1::2] for i in chunk]
    else:
        pipe.smembers(f"{prefix}:tenant:{viewer.tenant}:running")
        pipe.smembers(f"{prefix}:tenant:{viewer.tenant}:queued")
        running_set, waiting_set = pipe.execute()
        running, waiting = list(running_set), list(waiting_set)
    return sorted(running), waiting


def _jobs(r: redis.Redis, ids: list[str], prefix: str) -> list[dict[str, Any]]:
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(f"{prefix}:job:{job_id}", _JOB_FIELDS)
    jobs = []
    for values in pipe.execute():
        record = {k: json.loads(v) for k, v in zip(_JOB_FIELDS, values, strict=True) if v is not None}
        if record.get("id"):  # expired meanwhile
            jobs.append(record)
    return jobs


def _tenant_running(r: redis.Redis, waiting: list[dict[str, Any]], prefix: str) -> dict[str, int]:
    tenants = sorted({j["tenant"] for j in waiting})
    pipe = r.pipeline(transaction=False)
    for tenant in tenants:
        pipe.scard(f"{prefix}:tenant:{tenant}:running")
    return dict(zip(tenants, pipe.execute(), strict=True))


def _why_waiting(
    settings: Any, job: dict[str, Any], rank: int | None, snap: dict[str, Any], tenant_running: dict[str, int]
) -> dict[str, Any]:
    load = {
        "position": None if rank is None else rank + 1,
        "queued": snap["queued"],
        "running": snap["running"],
        "workers": len(snap["workers"]),
        "tenant_running": tenant_running.get(job["tenant"], 0),
    }
    return describe_wait(settings, job, load)


def _lane_public(snap: dict[str, Any]) -> dict[str, Any]:
    fields = ("lane", "queued", "running", "messages", "pending_messages", "delayed_messages", "oldest_queued_age_s")
    return {
        **{k: snap[k] for k in fields},
        "workers": len(snap["workers"]),
        "busy_workers": len(snap["busy_workers"]),
    }


def _job_public(job: dict[str, Any], viewer: Viewer, now: float) -> dict[str, Any]:
    since = job.get("started_at") if job["status"] == "started" else job.get("queued_at") or job["created_at"]
    public = {
        "id": job["id"],
        "kind": job.get("kind"),
        "lane": job.get("lane"),
        "status": job["status"],
        "step": job.get("step") or job.get("kind"),
        "phase": job.get("phase"),
        "progress": job.get("progress"),
        "attempts": int(job.get("attempts") or 0),
        "for_s": max(0.0, now - float(since or now)),
        "worker": job.get("worker") if job["status"] == "started" else None,
        "cancel_requested": bool(job.get("cancel_requested")),
        "queue": job.get("queue"),
    }
    if viewer.admin:
        public["tenant"] = job.get("tenant")
    return public


def _workers(snapshots: list[dict[str, Any]], visible_jobs: set[str], now: float) -> list[dict[str, Any]]:
    """Every live worker; the job it runs is named only when the viewer may see that job."""
    workers = []
    for snap in snapshots:
        runs = {worker: job_id for job_id, worker in snap["runs_on"].items()}
        for worker, seen in sorted(snap["workers"].items()):
            job_id = runs.get(worker)
            workers.append(
                {
                    "id": worker,
                    "lane": snap["lane"],
                    "busy": job_id is not None,
                    "job_id": job_id if job_id in visible_jobs else None,
                    "heartbeat_age_s": max(0.0, now - seen),
                }
            )
    return workers
