"""One way to wait for something to become true: a server answering, a job ending, a stack ready.

The stack, the client, the benchmarks and the tests all poll; they share this loop so each wait
has a deadline, a reason to give up early, and a message that says what did not happen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class PollTimeout(TimeoutError):
    """What was waited for did not happen within the deadline."""


def wait_until(
    check: Callable[[], T],
    *,
    what: str,
    timeout_s: float,
    interval_s: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
    give_up: Callable[[], str | None] | None = None,
) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    Parameters:
      check: the condition; a falsy result (or one of ``ignore`` raised) means "not yet".
      what: what is awaited, for the error message ("the API to answer /healthz").
      timeout_s: the deadline, in seconds from now.
      interval_s: the pause between calls, in seconds.
      ignore: exceptions that mean "not yet" (a connection refused while a server starts).
      give_up: called after each miss; a string it returns ends the wait early with a
        RuntimeError carrying that text (a child process that exited, say).

    Raises:
      PollTimeout: the deadline passed first.
      RuntimeError: ``give_up`` returned a reason.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = check()
        except ignore:
            found = None
        if found:
            return found
        if give_up is not None and (reason := give_up()):
            raise RuntimeError(reason)
        if time.monotonic() >= deadline:
            raise PollTimeout(f"Timed out after {timeout_s:g} s waiting for {what}.")
        time.sleep(interval_s)
