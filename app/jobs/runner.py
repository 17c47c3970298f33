"""Runs ``ml`` operations in a warm child process that can be killed: cancellation and time limits.

The child is forked by a forkserver that has already imported pandas and scikit-learn, so a new
one (after a kill) costs milliseconds, not the seconds of a fresh interpreter; between jobs the
same child is reused.

A job process that grew while it worked (the Python objects, Arrow and glibc pages a big fit
left behind, which trimming cannot give back) is replaced once it has been idle for a while, as
Celery replaces a child over ``worker_max_memory_per_child``: each process reports its own
memory (USS) when its warm-up is done, and one found idle ``IDLE_BEFORE_REPLACE_S`` after a job
with more than ``max_growth_mib`` over that is killed and, on a warm lane, forked again. Not at
the end of the job itself: in a burst the next job follows at once and must not wait for a
warm-up. Measured on the embedded stack (2 vCPUs): after four 40,000 x 50 fits and their
predicts, two of its three job processes idled at 31.5 and 43.8 MiB USS against 16.5 MiB fresh.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

import psutil

from app.core.errors import CanceledWhileRunning, InfraError, JobTimeout, UserError
from app.job_logs.relay import relay

# What asks a job process to checkpoint and stop (app.jobs.child.STOP_SIGNAL; named here so the
# worker never imports app.jobs.child).
STOP_SIGNAL = signal.SIGUSR1
Progress = Callable[[str, float | None, str | None], None]
# How long a job process must have been idle before a grown one is replaced.
IDLE_BEFORE_REPLACE_S = 5.0
MIB = 2**20
log = logging.getLogger("tabjob.worker")

_context: multiprocessing.context.ForkServerContext | None = None


def _forkserver() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["app.jobs.child", "app.jobs.preload"])
    return _context


def _serve(*args: Any) -> None:
    """The job process's entry point, named here so the worker never imports ``app.jobs.child``
    (pandas, scikit-learn: about 90 MiB and seconds per worker); the forkserver preloaded it."""
    from app.jobs import child

    child.serve(*args)


class JobRunner:
    """One job process for one worker thread.

    Parameters:
      threads: OpenMP/BLAS threads the job may use (the cores this worker owns).
      warm: how the job process warms up (``app.jobs.child``: ``cpu``, or ``model`` on the gpu
        lane: XGBoost loaded and its device opened in the job process, kept for every job).
      log_lines_per_s: lines a second the job process may send to the job's log (``app.job_logs``).
      max_growth_mib: private memory (USS) an idle job process may hold over what it held once
        warm before it is replaced (0: never replaced).
      keep_warm: start a replaced job process again at once (warm lanes) or with the next job.
    """

    def __init__(
        self, *, threads: int, warm: str = "cpu", log_lines_per_s: int = 50,
        max_growth_mib: float = 0, keep_warm: bool = True,
    ) -> None:  # fmt: skip
        self.threads, self.warm, self.log_lines_per_s = threads, warm, log_lines_per_s
        self.max_growth_mib, self.keep_warm = max_growth_mib, keep_warm
        self._warm_uss: int | None = None  # what the job process held once warm (its "warm" message)
        self._busy = threading.Lock()  # held by a job; the idle check never waits for it
        self._idle_check: threading.Timer | None = None
        self._process: multiprocessing.Process | None = None
        self._conn: Any = None
        self._lifeline: Any = None
        self._abort_reason: str | None = None
        # The worker is shutting down (SIGTERM): a job still waiting for a core is handed back.
        self.stopping = False

    def start(self) -> None:
        """Start the job process now (otherwise the first job pays for it)."""
        if self._process is not None and self._process.is_alive():
            return
        ctx = _forkserver()
        parent_conn, child_conn = ctx.Pipe()
        lifeline_r, lifeline_w = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_serve,
            args=(child_conn, lifeline_r, self.threads, self.warm, self.log_lines_per_s),
            name="tabjob-job",
            daemon=True,
        )
        self._process.start()
        self._warm_uss = None
        child_conn.close()
        lifeline_r.close()
        self._conn, self._lifeline = parent_conn, lifeline_w

    def kill(self) -> None:
        """Stop the job process at once (a native call in progress included)."""
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
            self._process = None
        for end in (self._conn, self._lifeline):
            if end is not None:
                end.close()
        self._conn = self._lifeline = None

    def request_checkpoint(self) -> None:
        """Ask the job in progress to checkpoint and stop at the end of its chunk (a chunked fit
        then fails with ``platform.worker_shutdown`` and is retried from its checkpoint; any other
        job runs on). For SIGTERM: the worker hands the job back within its grace period."""
        self.stopping = True
        if self._process is not None and self._process.pid is not None and self._process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, STOP_SIGNAL)

    def abort(self, reason: str) -> None:
        """Make the job in progress fail as a platform error (it is retried): for shutdown."""
        self._abort_reason = reason

    def run(
        self,
        operation: str,
        kwargs: dict[str, Any],
        *,
        time_limit_s: float,
        should_cancel: Callable[[], bool],
        cancel_poll_s: float,
        on_progress: Progress,
        threads: int | None = None,
    ) -> dict[str, Any]:
        """Run ``operation`` with ``kwargs`` in the job process and return its summary.

        Parameters:
          threads: OpenMP threads for this job (at most the worker's; default all of them).

        Raises:
          CanceledWhileRunning: ``should_cancel()`` became true (the process is killed).
          JobTimeout: the operation ran past ``time_limit_s`` seconds (the process is killed).
          UserError: the data was refused.
          InfraError: the store failed, or the job process died (killed, out of memory).
        """
        with self._busy:
            if self._idle_check is not None:
                self._idle_check.cancel()
            self.start()
            assert self._process is not None
            self._abort_reason = None
            self._conn.send((operation, kwargs, threads or self.threads))
            try:
                reply = self._follow(time_limit_s, should_cancel, cancel_poll_s, on_progress)
            except BaseException:
                # Whatever ended the wait (a cancel, a limit, or a Valkey error in a callback), the
                # child must not live on with this job: its late reply would answer the next one.
                self.kill()
                raise
            if self.max_growth_mib > 0:
                self._idle_check = threading.Timer(IDLE_BEFORE_REPLACE_S, self.replace_if_grown)
                self._idle_check.daemon = True
                self._idle_check.start()
        return self._outcome(reply)

    def replace_if_grown(self) -> bool:
        """Replace the job process if it is idle and holds more than ``max_growth_mib`` over what it
        held once warm; True when it was replaced. A job that starts meanwhile wins: no wait."""
        if self.stopping or not self._busy.acquire(blocking=False):
            return False
        try:
            process, warm = self._process, self._warm_uss
            if process is None or process.pid is None or warm is None:
                return False
            try:
                grown = (psutil.Process(process.pid).memory_full_info().uss - warm) / MIB
            except psutil.Error:
                return False
            if grown <= self.max_growth_mib:
                return False
            log.info("job process %d holds %.0f MiB more than when warm: replaced", process.pid, grown)
            self.kill()
            if self.keep_warm:
                self.start()
            return True
        finally:
            self._busy.release()

    def _follow(
        self,
        time_limit_s: float,
        should_cancel: Callable[[], bool],
        cancel_poll_s: float,
        on_progress: Progress,
    ) -> tuple:
        """Relay progress until the job process replies; return its final reply."""
        assert self._process is not None
        deadline = time.monotonic() + time_limit_s
        next_check = time.monotonic() + cancel_poll_s
        while True:
            ready = wait([self._conn, self._process.sentinel], timeout=min(cancel_poll_s, 0.25))
            if self._conn in ready:
                try:
                    message = self._conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None:
                    if message[0] == "progress":
                        on_progress(*message[1:])
                        continue
                    if message[0] == "log":  # a line of the job process, logged here under the job
                        relay(message[1])
                        continue
                    if message[0] == "warm":  # sent once, before its first job: its memory then
                        self._warm_uss = message[1]
                        continue
                    return message
            if self._process.sentinel in ready or not self._process.is_alive():
                code = self._process.exitcode
                self.kill()
                hint = " (it was probably out of memory)" if code == -9 else ""
                raise InfraError(
                    f"The job process stopped unexpectedly with exit code {code}{hint}.",
                    code="platform.worker_lost",
                    hint="This is retried automatically; if it keeps failing, try a smaller dataset.",
                )
            now = time.monotonic()
            if self._abort_reason is not None:
                self.kill()
                raise InfraError(self._abort_reason, code="platform.worker_shutdown")
            if now >= deadline:
                self.kill()
                raise JobTimeout(
                    f"The job ran longer than its lane's time limit of {round(time_limit_s, 1):g} seconds.",
                    hint="Use a smaller dataset or fewer iterations (max_iter), or ask an operator for a longer limit.",
                )
            if now >= next_check:
                next_check = now + cancel_poll_s
                if should_cancel():
                    self.kill()
                    raise CanceledWhileRunning("The job was canceled.")

    @staticmethod
    def _outcome(message: tuple) -> dict[str, Any]:
        if message[0] == "ok":
            return message[1]
        _, kind, code, text, hint = message
        if kind == "data":
            raise UserError(text, code=code, hint=hint, status=422)
        if kind == "preempted":
            raise InfraError(
                f"The worker was shut down during the fit, which {text}; it resumes from there on another worker.",
                code=code,
            )
        if kind == "transport":
            raise InfraError(f"The object store failed during the job: {text}", code=code)
        raise InfraError(text, code=code, hint=None)
