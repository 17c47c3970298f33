"""Settings of the job logs kept in the object store (``app.job_logs``).

Part of ``app.core.settings.Settings`` (inherited with its ``TABJOB_`` prefix), kept apart so the
settings module stays small; docs/configuration.md lists them with the others.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class JobLogSettings(BaseSettings):
    """How much of each job's log is kept, and how often a worker writes it to the store."""

    job_log_max_bytes: int = Field(
        2 * 1024**2,
        ge=2048,
        le=1024**3,
        description="Most bytes of log lines kept per job (every attempt and step together) under "
        "`tenants/<t>/jobs/<job>/logs/`; past it one `truncated` line says how much was dropped.",
    )
    job_log_flush_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="How often a worker writes a running job's new log lines to the store: a killed worker "
        "loses at most this many seconds of them.",
    )
    job_log_lines_per_s: int = Field(
        50,
        ge=1,
        le=10_000,
        description="Lines per second a job process may log (its model's own output included); more are "
        "counted and dropped, and one line says how many.",
    )
