"""The part of ``tabjob.Client`` about a job's log: its lines from the worker and the job process,
kept by the service in its object store (``GET /v1/jobs/{id}/logs``), read as pages or followed
while the job runs (newline-delimited JSON)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from tabjob.errors import ApiError

# A followed log sends an empty line at least every 15 s: a read waits this long before the
# connection counts as lost (it is then opened again from the last line read).
FOLLOW_READ_TIMEOUT_S = 60.0
FOLLOW_RECONNECTS = 5


@dataclass(frozen=True)
class LogLine:
    """One line of a job's log: when, how severe, what; its ``attempt`` and ``step``; ``source``
    ``worker`` or ``job`` (the job process, the model's own output included); ``truncated`` on the
    line saying the job's log reached its size cap. ``cursor`` resumes after it (``since=``)."""

    time: datetime | None
    level: str
    message: str
    attempt: int
    cursor: str
    source: str = "worker"
    step: str | None = None
    logger: str | None = None
    exc: str | None = None
    truncated: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> LogLine:
        when = data.get("time")
        return cls(
            time=datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None,
            level=data.get("level") or "info",
            message=data.get("message") or "",
            attempt=int(data.get("attempt") or 0),
            cursor=data["cursor"],
            source=data.get("source") or "worker",
            step=data.get("step"),
            logger=data.get("logger"),
            exc=data.get("exc"),
            truncated=bool(data.get("truncated")),
            raw=data,
        )


@dataclass(frozen=True)
class LogPage:
    """Lines of a job's log, oldest first; pass ``next_since`` as ``since`` for the lines after.
    ``complete``: the job has ended and no line of it is still to come."""

    items: list[LogLine]
    next_since: str | None
    complete: bool

    def __iter__(self) -> Iterator[LogLine]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class LogMethods:
    """``logs()`` and ``log_page()`` (``Client`` inherits them)."""

    # Provided by Client: the API's connection, the API call and its error reading.
    http: httpx.Client
    url: str
    _call: Callable[..., Any]
    _error: Callable[[httpx.Response], ApiError]

    def log_page(self, job_id: str, *, since: str | None = None, limit: int = 1000) -> LogPage:
        """Up to ``limit`` lines of the job's log after ``since`` (a ``next_since`` or a line's ``cursor``)."""
        params: dict[str, Any] = {"limit": limit} | ({"since": since} if since else {})
        body = self._call("GET", f"/v1/jobs/{job_id}/logs", params=params)
        return LogPage([LogLine.from_api(i) for i in body["items"]], body.get("next_since"), bool(body["complete"]))

    def logs(self, job_id: str, *, follow: bool = False, since: str | None = None) -> Iterator[LogLine]:
        """The job's log lines, oldest first: those written so far, or with ``follow`` every line
        as it is written until the job has ended (a lost connection is opened again from the last
        line read). The service keeps the lines of every attempt, after the worker is gone too."""
        if follow:
            yield from self._follow(job_id, since)
            return
        while True:
            page = self.log_page(job_id, since=since)
            yield from page.items
            if not page.items or page.next_since in (None, since):
                return
            since = page.next_since

    def _follow(self, job_id: str, since: str | None) -> Iterator[LogLine]:
        timeout = httpx.Timeout(self.http.timeout.connect, read=FOLLOW_READ_TIMEOUT_S)
        lost = 0
        while True:
            params = {"follow": "true"} | ({"since": since} if since else {})
            try:
                with self.http.stream("GET", f"/v1/jobs/{job_id}/logs", params=params, timeout=timeout) as answer:
                    if answer.status_code >= 400:
                        answer.read()
                        raise self._error(answer)
                    for raw in answer.iter_lines():
                        if raw.strip():
                            line = LogLine.from_api(json.loads(raw))
                            since, lost = line.cursor, 0
                            yield line
                return  # the service ended the stream: the job has ended
            except httpx.TransportError as exc:
                lost += 1
                if lost > FOLLOW_RECONNECTS:
                    raise ApiError(
                        0, "client.unreachable", f"Lost the log stream of {job_id} from {self.url}: {exc}",
                        "Run it again; it resumes from the last line read with since=.", retryable=True,
                    ) from exc  # fmt: skip
                time.sleep(min(2.0**lost, 10.0))
