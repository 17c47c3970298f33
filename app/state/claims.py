"""Claims: a key that names the one job holding it (fit deduplication, Idempotency-Key replays).

A claim is taken atomically (SET NX), released only by its holder, and a holder that is gone
(expired) or no longer worth returning (failed, canceled) is replaced, never reused.
"""

from __future__ import annotations

from collections.abc import Callable

from app.core.keys import Keys
from app.state.connection import Conn


class Claims:
    def __init__(self, conn: Conn, keys: Keys) -> None:
        self.conn, self.keys = conn, keys

    def remember(self, name: str, value: str, ttl_s: int | None = None) -> str:
        """Map ``name`` to ``value`` unless already mapped (atomically); return what holds it."""
        existing = self.conn.r.set(self.keys.claim(name), value, nx=True, ex=ttl_s, get=True)
        return value if existing is None else existing

    def claim(self, name: str, value: str, ttl_s: int | None, *, stale: Callable[[str], bool]) -> str:
        """Take ``name`` for ``value``, replacing a holder for which ``stale(holder)`` is true.

        Returns ``value`` when this call holds the claim, else the live holder."""
        while True:
            holder = self.remember(name, value, ttl_s)
            if holder == value or not stale(holder):
                return holder
            self.forget_if(name, holder)  # only that holder: a newer claim stays

    def forget(self, name: str) -> None:
        self.conn.r.delete(self.keys.claim(name))

    def forget_if(self, name: str, value: str) -> None:
        """Delete ``name`` only while it still maps to ``value`` (not a newer claim)."""
        self.conn.script("forget_if")(keys=[self.keys.claim(name)], args=[value])

    def assign(self, name: str, value: str, ttl_s: int | None = None) -> None:
        self.conn.r.set(self.keys.claim(name), value, ex=ttl_s)
