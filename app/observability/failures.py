"""Recent failures, kept in Valkey so the dashboard can group them by error code.

A failed job leaves the lane sets at once, and its record is found only by id: without an index
"what failed in the last hour, and why" would mean scanning every job. Each failure is pushed,
as a short summary, onto two capped lists: one for everyone (admins read it) and one per tenant
(so a tenant's failures are never crowded out by another's).
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from app.core.domain import Job
from app.state import KEYS, Keys

ALL_KEPT = 1000
TENANT_KEPT = 200
KEEP_S = 7 * 24 * 3600


def record_failure(r: redis.Redis, job: Job, *, keys: Keys = KEYS) -> None:
    """Remember a failed job: when, where, and its error's code, message and hint."""
    error = job.error or {}
    entry = json.dumps(
        {
            "at": job.ended_at or time.time(),
            "job_id": job.id,
            "tenant": job.tenant,
            "lane": job.lane,
            "kind": job.kind,
            "code": error.get("code") or "unknown",
            "message": error.get("message"),
            "hint": error.get("hint"),
        }
    )
    pipe = r.pipeline(transaction=False)
    for key, kept in ((keys.failures(), ALL_KEPT), (keys.failures(job.tenant), TENANT_KEPT)):
        pipe.lpush(key, entry)
        pipe.ltrim(key, 0, kept - 1)
        pipe.expire(key, KEEP_S)
    pipe.execute()


def recent_failures(r: redis.Redis, *, tenant: str | None, since: float, keys: Keys = KEYS) -> list[dict[str, Any]]:
    """Failures after ``since`` (Unix seconds) grouped by error code, most frequent first.

    Parameters:
      tenant: only this tenant's failures; None for everyone's (admins).
    """
    groups: dict[str, dict[str, Any]] = {}
    for raw in r.lrange(keys.failures(tenant), 0, -1):  # newest first
        entry = json.loads(raw)
        if entry["at"] < since:
            break
        group = groups.setdefault(
            entry["code"],
            {
                "code": entry["code"],
                "count": 0,
                "last_at": entry["at"],
                "message": entry["message"],
                "hint": entry["hint"],
                "lanes": [],
                "job_ids": [],
            },
        )
        group["count"] += 1
        if entry["lane"] not in group["lanes"]:
            group["lanes"].append(entry["lane"])
        if len(group["job_ids"]) < 5:
            group["job_ids"].append(entry["job_id"])
    return sorted(groups.values(), key=lambda g: (-g["count"], -g["last_at"]))
