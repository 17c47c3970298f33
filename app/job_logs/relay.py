"""The worker's half of the job process's lines (``app.job_logs.job_side``): each becomes a
record of the worker's own logging, in the thread running the job, so it carries the job's log
context (``job_id``, ``tenant``, ``step``), goes to the worker's stderr with its other lines, and
into the job's log in the store (``app.job_logs.sink``)."""

from __future__ import annotations

import logging
import time
from typing import Any


def relay(fields: dict[str, Any]) -> None:
    """Log one line the job process sent, as the job process logged it (its logger, level, time)."""
    level = int(fields.get("level") or logging.INFO)
    created = float(fields.get("created") or time.time())
    record = logging.makeLogRecord({
        "name": str(fields.get("logger") or "tabjob.job"), "levelno": level, "levelname": logging.getLevelName(level),
        "msg": str(fields.get("msg", "")), "created": created, "msecs": (created % 1) * 1000,
        "exc_text": fields.get("exc"), "job_source": "job",
    })  # fmt: skip
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(level):
        logger.handle(record)
