"""The job process's half of job logs: its log records and what the model prints go to the worker.

The job process holds no store credentials (``app.jobs.job_env``), so it never writes a log
itself: during a job, each record of its loggers, Python warnings, and each line the model
writes to ``sys.stdout`` or ``sys.stderr`` (XGBoost's and scikit-learn's verbose output) is sent
over the job's pipe as ``("log", fields)``, at most ``lines_per_s`` a second (a loop printing
without end costs one line saying how many were dropped). The worker logs them under the job's
context (``app.job_logs.relay``), so they reach its stderr and the job's log in the store.
Outside a job nothing is sent: a late line would otherwise be read as the next job's.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Longest line kept from a job process (a progress bar redrawn without newlines is one line).
MAX_LINE_CHARS = 4000
log = logging.getLogger("tabjob.job")


class Forwarder(logging.Handler):
    """Sends the job process's records to its worker, at a bounded rate, only while a job runs.

    Parameters:
      send: the job pipe's ``send``; every message of the process goes through ``self.send``
        (one lock: two threads writing to one pipe would interleave their bytes).
      lines_per_s: lines a second on average, with as many again in a burst.
    """

    def __init__(self, send: Callable[[Any], None], lines_per_s: int) -> None:
        super().__init__(level=logging.INFO)
        self._send, self._send_lock = send, threading.Lock()
        self.rate = float(lines_per_s)
        self._tokens, self._refilled = self.rate, time.monotonic()
        self._dropped = 0
        self.active = False

    def send(self, message: Any) -> None:
        with self._send_lock:
            self._send(message)

    def _allowed(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.rate, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if not self.active:
            return
        try:
            with self.lock:  # logging.Handler's own lock: the bucket is shared by the job's threads
                if not self._allowed():
                    self._dropped += 1
                    return
                dropped, self._dropped = self._dropped, 0
            if dropped:
                self.send(("log", _fields(_dropped_record(dropped, self.rate))))
            self.send(("log", _fields(record)))
        except Exception:  # never let a log line break the job
            self.handleError(record)

    @contextmanager
    def job(self) -> Iterator[None]:
        """While a job runs: forward, and read what it prints to stdout and stderr as lines."""
        saved = sys.stdout, sys.stderr
        out, err = (
            _Lines(logging.getLogger("tabjob.job.stdout"), logging.INFO),
            _Lines(logging.getLogger("tabjob.job.stderr"), logging.WARNING),
        )
        sys.stdout, sys.stderr = out, err  # type: ignore[assignment]
        self.active = True
        try:
            yield
        finally:
            out.finish()
            err.finish()
            sys.stdout, sys.stderr = saved
            with self.lock:
                dropped, self._dropped = self._dropped, 0
            if dropped:
                self.send(("log", _fields(_dropped_record(dropped, self.rate))))
            self.active = False


def install(send: Callable[[Any], None], lines_per_s: int) -> Forwarder:
    """Route the job process's logging (and warnings) to its worker; the handler, whose ``send``
    every message of the process must use."""
    forwarder = Forwarder(send, lines_per_s)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(forwarder)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.raiseExceptions = False  # a failed send must not print (stderr is itself forwarded)
    return forwarder


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {"logger": record.name, "level": record.levelno, "msg": record.getMessage(), "created": record.created}
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return fields


def _dropped_record(count: int, rate: float) -> logging.LogRecord:
    return logging.makeLogRecord({
        "name": "tabjob.job", "levelno": logging.WARNING, "levelname": "WARNING",
        "msg": f"{count:,} line(s) of the job process dropped: more than {rate:g} lines a second "
        "(TABJOB_JOB_LOG_LINES_PER_S).",
    })  # fmt: skip


class _Lines(io.TextIOBase):
    """A text stream whose lines become log records of ``logger`` at ``level``."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger, self.level, self._buffer = logger, level, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text.replace("\r", "\n")
        *lines, self._buffer = self._buffer.split("\n")
        if len(self._buffer) > MAX_LINE_CHARS:
            lines.append(self._buffer)
            self._buffer = ""
        for line in lines:
            if line.strip():
                self.logger.log(self.level, line[:MAX_LINE_CHARS])
        return len(text)

    def finish(self) -> None:
        """Log what is left of an unfinished last line."""
        if self._buffer.strip():
            self.logger.log(self.level, self._buffer[:MAX_LINE_CHARS])
        self._buffer = ""


def progress_reporter(send: Callable[[Any], None]) -> Callable[[str, float | None, str | None], None]:
    """The ``progress`` callback of a job process's ``ml`` call: each report goes to the worker
    (``("progress", ...)``), and a new phase or a message is a line of the job's log too."""
    last_phase: list[str] = [""]

    def progress(phase: str, fraction: float | None, message: str | None) -> None:
        send(("progress", phase, fraction, message))
        if message or phase != last_phase[0]:
            last_phase[0] = phase
            log.info("%s: %s", phase, message) if message else log.info("%s", phase)

    return progress


def print_if_asked() -> None:
    """A test hook: with ``TABJOB_TEST_PRINT_LINES`` set to N, the job prints N lines to stdout
    first, as a model printing in a loop would (tests of the rate limit and the size cap)."""
    import os

    for n in range(int(os.environ.get("TABJOB_TEST_PRINT_LINES") or 0)):
        print(f"test line {n} of a job printing in a loop")  # noqa: T201 (the job's own output, read back)
