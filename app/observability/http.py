"""Request latency by route template and status, and the log context of each request.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware, which runs the app in another task
and costs a task switch per request): it times the request, labels it with the route template
FastAPI matched (``/v1/jobs/{job_id}``, never the raw path, so ids never become label values),
and sets the log context so every line logged for the request carries its job id and, once the
key is checked, its tenant.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from app.core.logging_setup import log_context
from app.observability.metrics import HTTP_DURATION

log = logging.getLogger("tabjob.api.access")
UNMATCHED_ROUTE = "<unmatched>"
# Methods a label may name; any other (a client may send any token) counts as ``other``, so a
# made-up method never makes a new series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_JOB_IN_PATH = re.compile(r"/jobs/(job_[0-9a-f]{1,40})(?:/|$)")


class RequestMetrics:
    """ASGI middleware: ``tabjob_http_request_duration_seconds`` and the per-request log context."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before answering
        started = time.perf_counter()

        async def send_and_record(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        found = _JOB_IN_PATH.search(scope.get("path", ""))
        with log_context(job_id=found.group(1) if found else None):
            try:
                await self.app(scope, receive, send_and_record)
            finally:
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
                method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
                HTTP_DURATION.labels(method, route, str(status)).observe(elapsed)
                # Mutations and errors are worth a line; the polls of a status page are not.
                level = logging.INFO if scope["method"] != "GET" or status >= 400 else logging.DEBUG
                if log.isEnabledFor(level):
                    log.log(
                        level,
                        "%s %s %d %.1f ms",
                        method,
                        route,
                        status,
                        elapsed * 1000,
                        extra={"route": route},
                    )
