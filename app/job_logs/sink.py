"""A worker's job logs: every record logged about a job it runs goes to that job's log in the
store (``app.job_logs.writer``), whichever thread logged it.

A record belongs to a job when it carries a ``job_id`` (the worker binds it around each job,
``app.observability.worker``, or a call passes ``extra=``) of a job this process opened with
:meth:`JobLogSink.open`. One sink per worker process, installed on the root logger beside the
stderr handler; one thread writes the open logs every ``TABJOB_JOB_LOG_FLUSH_S``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from app.core.domain import Job
from app.core.logging_setup import current_context
from app.core.settings import Settings
from app.core.storage import Store
from app.job_logs.writer import AttemptLog

log = logging.getLogger("tabjob.job_logs")
# Tries of an attempt's last chunk, this far apart, before its last lines are given up.
FINAL_TRIES, FINAL_RETRY_S = 3, 0.5
_install_lock = threading.Lock()


class JobLogSink(logging.Handler):
    """Routes records about open jobs to their logs, and writes those logs to the store.

    Parameters:
      store: where the logs go.
      max_bytes: each job's cap; flush_s: seconds between two writes of a running job's lines.
    """

    def __init__(self, store: Store, *, max_bytes: int, flush_s: float) -> None:
        super().__init__(level=logging.DEBUG)
        self.store, self.max_bytes, self.flush_s = store, max_bytes, flush_s
        self._open: dict[str, AttemptLog] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._formatter = logging.Formatter()
        threading.Thread(target=self._flush_loop, daemon=True, name="job-logs").start()

    def open(self, job: Job) -> None:
        """Start the log of ``job``'s attempt that this worker just started."""
        step = getattr(job, "step", None) or job.kind
        # Only this worker writes a job's log chunks, one attempt at a time: before the first
        # attempt of a one-step job (attempts counts starts, 1 for the first) none exist.
        first = job.attempts == 1 and not job.steps
        attempt = AttemptLog(
            self.store, tenant=job.tenant, job_id=job.id, attempt=job.attempts, step=step,
            max_bytes=self.max_bytes, first=first,
        )  # fmt: skip
        with self._guard:
            self._open[job.id] = attempt

    def end_attempt(self, job_id: str) -> None:
        """Write the attempt's last lines and its end chunk (tried a few times on a store error)."""
        with self._guard:
            attempt = self._open.pop(job_id, None)
        if attempt is None:
            return
        for n in range(FINAL_TRIES):
            try:
                attempt.flush(last=True)
                return
            except Exception:
                if n + 1 == FINAL_TRIES:
                    log.warning("could not write the last log lines of job %s", job_id, exc_info=True)
                else:
                    time.sleep(FINAL_RETRY_S)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("tabjob.job_logs"):  # its own failures would loop back here
            return
        context = current_context()
        job_id = record.__dict__.get("job_id") or context.get("job_id")
        attempt = self._open.get(job_id) if isinstance(job_id, str) else None
        if attempt is None:
            return
        try:
            attempt.add(self._line(record, context, attempt.step))
        except Exception:
            self.handleError(record)

    def _line(self, record: logging.LogRecord, context: dict[str, Any], step: str) -> dict[str, Any]:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "source": record.__dict__.get("job_source", "worker"),
            "step": context.get("step") or step,
        }
        if record.exc_info:
            line["exc"] = self._formatter.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return line

    def flush_open(self) -> None:
        """Write every open log's new lines (a failure is retried on the next round)."""
        with self._guard:
            attempts = list(self._open.values())
        for attempt in attempts:
            try:
                attempt.flush()
            except Exception:
                log.warning("could not write the log lines of job %s; retried", attempt.job_id, exc_info=True)

    def close(self) -> None:
        """At the process's exit (``logging.shutdown``): write what the open logs still hold."""
        self._stop.set()
        self.flush_open()
        super().close()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush_open()


def installed_sink(store: Store, settings: Settings) -> JobLogSink:
    """This process's sink, added to the root logger the first time (the consumers of one worker
    process share it)."""
    root = logging.getLogger()
    with _install_lock:
        for handler in root.handlers:
            if isinstance(handler, JobLogSink):
                return handler
        sink = JobLogSink(store, max_bytes=settings.job_log_max_bytes, flush_s=settings.job_log_flush_s)
        root.addHandler(sink)
        return sink
