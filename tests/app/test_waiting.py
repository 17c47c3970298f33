"""The one wait loop: returns what the check found, gives up with a reason, times out clearly."""

from __future__ import annotations

import itertools

import pytest

from app.core.waiting import PollTimeout, wait_until


def test_returns_the_first_truthy_result() -> None:
    calls = itertools.count()
    assert wait_until(lambda: next(calls) >= 2 and "ready", what="three calls", timeout_s=5, interval_s=0) == "ready"


def test_ignored_exceptions_mean_not_yet() -> None:
    attempts = iter([ConnectionError(), ConnectionError(), "up"])

    def check() -> str:
        value = next(attempts)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_until(check, what="a server", timeout_s=5, interval_s=0, ignore=(ConnectionError,)) == "up"


def test_other_exceptions_propagate() -> None:
    def check() -> bool:
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        wait_until(check, what="anything", timeout_s=5, interval_s=0)


def test_give_up_ends_the_wait_with_its_reason() -> None:
    with pytest.raises(RuntimeError, match="exited with code 1"):
        wait_until(lambda: False, what="a child", timeout_s=60, interval_s=0, give_up=lambda: "exited with code 1")


def test_timeout_names_what_was_awaited() -> None:
    with pytest.raises(PollTimeout, match="the API to answer"):
        wait_until(lambda: False, what="the API to answer", timeout_s=0, interval_s=0)
