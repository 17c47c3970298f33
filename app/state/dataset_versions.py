"""Dataset names and their versions: each upload under a name is its next version (1, 2, …).

A name's versions are a sorted set (score: the version, member: the dataset id) beside a counter
that only grows, so a deleted version's number is never given again.
"""

from __future__ import annotations

from typing import Any

from app.core.keys import Keys
from app.state.connection import Conn


class DatasetVersions:
    def __init__(self, conn: Conn, keys: Keys) -> None:
        self.conn, self.keys = conn, keys

    def _versions(self, tenant: str, name: str) -> str:
        return self.keys.tenant(tenant, f"dsname:{name}")

    def next_version(self, tenant: str, name: str) -> int:
        """Take the name's next version number (atomic: two uploads never share one)."""
        return int(self.conn.r.incr(self._versions(tenant, name) + ":next"))

    def add(self, pipe: Any, tenant: str, name: str, version: int, dataset_id: str) -> None:
        """Queue on ``pipe`` the version's entry (written with the dataset's record)."""
        pipe.zadd(self._versions(tenant, name), {dataset_id: version})
        pipe.sadd(self.keys.tenant(tenant, "dsnames"), name)

    def remove(self, pipe: Any, tenant: str, name: str, dataset_id: str) -> None:
        pipe.zrem(self._versions(tenant, name), dataset_id)

    def of_version(self, tenant: str, name: str, version: int) -> str | None:
        """The dataset id of ``name``'s version ``version``, or None."""
        found = self.conn.r.zrangebyscore(self._versions(tenant, name), version, version)
        return found[0] if found else None

    def newest(self, tenant: str, name: str, count: int) -> list[str]:
        """The ids of the name's ``count`` newest versions, newest first."""
        return self.conn.r.zrevrange(self._versions(tenant, name), 0, count - 1)

    def known(self, tenant: str, name: str) -> bool:
        return bool(self.conn.r.exists(self._versions(tenant, name) + ":next"))
