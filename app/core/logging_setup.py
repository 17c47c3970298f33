"""One logging setup for the API and the workers: JSON lines a machine can read.

Every line carries the fields of the current log context (``job_id``, ``tenant``, ``lane``,
``step``): the worker sets them around each job, the API per request. They live in a
``ContextVar``, so the API's concurrent requests and the worker's job thread never see each
other's fields. ``tabjob logs JOB`` filters the embedded stack's log files on ``job_id``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

# The fields a log line about a job carries; also accepted as ``extra=`` on a single call.
CONTEXT_FIELDS: tuple[str, ...] = ("job_id", "tenant", "lane", "step", "worker", "route")
_context: ContextVar[dict[str, Any] | None] = ContextVar("tabjob_log_context", default=None)


def current_context() -> dict[str, Any]:
    """The fields every line logged now carries."""
    return dict(_context.get() or {})


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None values left out) to every line logged inside the block."""
    token = _context.set({**current_context(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add ``fields`` to the current context until :func:`clear` (for hooks that open and close
    a job in two separate calls, like Dramatiq's before/after middleware hooks)."""
    _context.set({**current_context(), **{k: v for k, v in fields.items() if v is not None}})


def clear() -> None:
    _context.set(None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, message, context fields,
    and the traceback when there is one."""

    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process_name = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.process_name:
            line["process"] = self.process_name
        line.update(current_context())
        for name in CONTEXT_FIELDS:  # extra={...} on one call wins over the context
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup_logging(level: str, *, fmt: Literal["json", "text"] = "json", process: str | None = None) -> None:
    """Configure the root logger once for this process (stderr, which the embedded stack and
    Kubernetes collect). ``process`` names the process in each line (``api``, ``worker-small``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request's full URL at INFO: webhook URLs carry their receivers' tokens,
    # presigned URLs their signatures. Their failures still surface as our own messages.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's own loggers would print their own format: route them through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "dramatiq"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
