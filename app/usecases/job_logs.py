"""Reading a job's log from the store (``app.job_logs.chunks``): a page from a cursor, or a
follow that yields new lines while the job runs and ends when it has ended.

Only the tenant's own prefix is ever read, and only for a job the tenant owns: its record, or,
once the record has expired (``TABJOB_JOB_RETENTION_S``), its manifest in the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from app.core import ids
from app.core.domain import JobStatus
from app.core.errors import NotFound
from app.core.storage import manifest_key
from app.job_logs.chunks import Cursor, LogRead, read_lines
from app.usecases.services import Services

# How often a follow looks for new lines, and how long after the job's end it waits for the
# last chunk of a worker that died before writing it.
FOLLOW_POLL_S = 1.0
END_GRACE_S = 10.0
# A follow sends an empty line when it has sent nothing for this long (proxies close idle streams).
KEEPALIVE_S = 15.0
FOLLOW_PAGE_LINES = 1000


@dataclass(frozen=True)
class JobState:
    """What a reader of the log needs of the job: whether it ended, and when."""

    status: JobStatus
    ended_at: float | None

    @property
    def ended(self) -> bool:
        return self.status.terminal


def job_state(svc: Services, tenant: str, job_id: str) -> JobState:
    """The tenant's job's status; NotFound when it is not the tenant's (or never existed)."""
    ids.require("job", job_id)  # a malformed id never reaches a key (nor the manifest's below)
    try:
        job = svc.state.conn.run(svc.state.jobs.owned(tenant, job_id))
        return JobState(job.status, job.ended_at)
    except NotFound:
        # The record expired: the manifest, under the tenant's own prefix, says the job was theirs.
        if svc.store.stat(manifest_key(tenant, job_id)) is None:
            raise
        return JobState(JobStatus.FINISHED, 0.0)


def complete(state: JobState, read: LogRead, now: float) -> bool:
    """No line of the job is still to come: it ended, and its last attempt's final chunk is in
    (or its worker died without writing it, and the grace period is over)."""
    if not state.ended:
        return False
    if read.chunks and read.chunks[-1].last:
        return True
    return now - (state.ended_at or 0.0) >= END_GRACE_S


def page(svc: Services, tenant: str, job_id: str, since: str | None, limit: int) -> tuple[LogRead, bool]:
    """Up to ``limit`` lines after ``since``, and whether the log is complete."""
    state = job_state(svc, tenant, job_id)
    read = read_lines(svc.store, tenant, job_id, Cursor.parse(since) if since else None, limit)
    return read, len(read.lines) < limit and complete(state, read, time.time())


async def follow(
    svc: Services, tenant: str, job_id: str, since: str | None, disconnected: Callable[[], Any]
) -> AsyncIterator[dict[str, Any] | None]:
    """The job's lines after ``since`` as they are written, until the log is complete (or the
    reader left); None now and then when there was nothing to send (a keep-alive)."""
    cursor = Cursor.parse(since) if since else None
    quiet_since = time.monotonic()
    while True:
        state = await asyncio.to_thread(job_state, svc, tenant, job_id)
        read = await asyncio.to_thread(read_lines, svc.store, tenant, job_id, cursor, FOLLOW_PAGE_LINES)
        for line in read.lines:
            yield line
        cursor = read.next_since or cursor
        if read.lines:
            quiet_since = time.monotonic()
            if len(read.lines) == FOLLOW_PAGE_LINES:
                continue  # more are already there
        if complete(state, read, time.time()) or await disconnected():
            return
        if time.monotonic() - quiet_since >= KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield None
        await asyncio.sleep(FOLLOW_POLL_S)


def shown(line: dict[str, Any]) -> dict[str, Any]:
    """A stored line as the API shows it (``LogLinePublic``)."""
    return {
        "time": line.get("ts"),
        "level": line.get("level") or "info",
        "message": line.get("msg") or "",
        "attempt": int(line.get("attempt") or 0),
        "step": line.get("step"),
        "source": line.get("source") or "worker",
        "logger": line.get("logger"),
        "exc": line.get("exc"),
        "truncated": bool(line.get("truncated")),
        "cursor": line["cursor"],
    }
