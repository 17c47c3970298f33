"""A job's timeline: what happened to it, numbered so a follower never loses its place."""

from __future__ import annotations

import json
import time
from typing import Any

from app.core.keys import Keys
from app.state.connection import Conn

MAX_EVENTS = 500


def event(kind: str, message: str | None = None, **extra: Any) -> dict[str, Any]:
    """One timeline entry as stored: when (Unix seconds), its type, a message, and extras."""
    return {"at": time.time(), "type": kind, "message": message, **extra}


class Events:
    """Appends to and reads job timelines, which keep their last MAX_EVENTS events."""

    def __init__(self, conn: Conn, keys: Keys) -> None:
        self.conn, self.keys = conn, keys

    def add(self, job_id: str, kind: str, message: str | None = None, **extra: Any) -> None:
        pipe = self.conn.r.pipeline()
        pipe.rpush(self.keys.events(job_id), json.dumps(event(kind, message, **extra), default=str))
        pipe.ltrim(self.keys.events(job_id), -MAX_EVENTS, -1)
        pipe.incr(self.keys.events_total(job_id))
        pipe.execute()

    def since(self, job_id: str, *, after: int = 0) -> list[dict[str, Any]]:
        """Events numbered from ``after`` on. ``seq`` counts every event ever added, so a
        follower's position stays right after older events were trimmed."""
        pipe = self.conn.r.pipeline()
        pipe.get(self.keys.events_total(job_id))
        pipe.lrange(self.keys.events(job_id), 0, -1)
        total, raw = pipe.execute()
        first = int(total or len(raw)) - len(raw)  # the seq of the oldest event kept
        return [{"seq": first + i, **json.loads(e)} for i, e in enumerate(raw) if first + i >= after]
