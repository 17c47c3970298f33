"""One way to start a tabjob process and wait until it answers: for the benchmarks and the tests,
which start ``tabjob api``, ``tabjob stack`` or a worker of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from app.core.waiting import wait_until
from app.local.servers import die_with_parent

ROOT = Path(__file__).resolve().parents[2]


def tabjob_command(*args: str) -> list[str]:
    """``tabjob ARGS`` run by this interpreter (``python -m app.cli``: no installed script needed)."""
    return [sys.executable, "-m", "app.cli", *args]


def answers(url: str, path: str = "/healthz") -> Callable[[], bool]:
    """A readiness check: ``url + path`` answers 200."""
    return lambda: httpx.get(url + path, timeout=2).status_code == 200


def spawn(
    args: Sequence[str],
    *,
    ready: Callable[[], Any] | None = None,
    what: str = "the process to answer",
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    log: IO[bytes] | int | None = None,
    timeout_s: float = 60.0,
) -> subprocess.Popen:
    """Start ``args`` (killed with this process, by SIGTERM) and return it once ``ready()`` holds.

    ``env`` adds to this process's environment; ``log`` takes stdout and stderr (the caller's
    own when None). Raises ``PollTimeout`` when it is not ready in time, and ``RuntimeError`` at
    once when it exits first (the process is stopped in both cases).
    """
    process = subprocess.Popen(
        list(args), env={**os.environ, **(env or {})}, cwd=cwd, preexec_fn=die_with_parent,
        stdout=log, stderr=subprocess.STDOUT if log is not None else None,
    )  # fmt: skip
    if ready is None:
        return process
    try:
        wait_until(
            ready, what=what, timeout_s=timeout_s, ignore=(httpx.HTTPError,),
            give_up=lambda: None if process.poll() is None else f"it exited with {process.returncode}",
        )  # fmt: skip
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen, timeout_s: float = 30.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
