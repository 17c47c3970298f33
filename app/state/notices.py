"""A tenant's notices: alias moves and schedule failures, newest last, numbered like a job's
timeline so a follower (``GET /v1/notices?after=N``) never loses its place."""

from __future__ import annotations

import json
import time
from typing import Any

from app.core.keys import Keys
from app.state.connection import Conn

MAX_NOTICES = 1000


class Notices:
    def __init__(self, conn: Conn, keys: Keys) -> None:
        self.conn, self.keys = conn, keys

    def add(self, tenant: str, kind: str, message: str, **extra: Any) -> dict[str, Any]:
        notice = {"at": time.time(), "type": kind, "message": message, **extra}
        key = self.keys.tenant(tenant, "notices")
        pipe = self.conn.r.pipeline()
        pipe.rpush(key, json.dumps(notice, default=str))
        pipe.ltrim(key, -MAX_NOTICES, -1)
        pipe.incr(key + ":total")
        pipe.execute()
        return notice

    def since(self, tenant: str, *, after: int = 0) -> list[dict[str, Any]]:
        key = self.keys.tenant(tenant, "notices")
        pipe = self.conn.r.pipeline()
        pipe.get(key + ":total")
        pipe.lrange(key, 0, -1)
        total, raw = pipe.execute()
        first = int(total or len(raw)) - len(raw)
        return [{"seq": first + i, **json.loads(e)} for i, e in enumerate(raw) if first + i >= after]
