"""What the embedded stack keeps for each process it supervises: its command and its restarts.

Restarts back off (0.25 s, doubling, up to RESTART_BACKOFF_MAX_S), as Kubernetes's CrashLoopBackOff
does, and a process that ran for RESTART_RESET_S before dying starts again at once.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass, field

log = logging.getLogger("tabjob.stack")
RESTART_BACKOFF_MAX_S = 10.0
RESTART_RESET_S = 60.0


@dataclass
class Restarts:
    """Back-off bookkeeping for one supervised process."""

    count: int = 0
    next_start: float = 0.0
    started_at: float = 0.0

    def due(self, name: str, code: int | None) -> bool:
        """True when the dead process ``name`` should be started again now."""
        now = time.monotonic()
        if self.next_start == 0.0:
            if now - self.started_at > RESTART_RESET_S:
                self.count = 0
            self.next_start = now + min(RESTART_BACKOFF_MAX_S, 0.25 * 2**self.count)
            log.warning("%s exited with code %s; restarting", name, code)
        if now < self.next_start:
            return False
        self.count += 1
        self.next_start = 0.0
        self.started_at = now
        return True


@dataclass
class Child:
    """A supervised Python process of ours (the API or a worker): its command and restarts."""

    name: str
    args: list[str]
    lane: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    restarts: Restarts = field(default_factory=Restarts)
