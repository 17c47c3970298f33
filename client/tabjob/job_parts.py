"""Parts of a job the API reports beside its status: the steps of a two-step job and its webhook."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Step:
    """One step of a job that runs in steps (xgboost: ``prepare`` on a CPU lane, then ``model``
    on the gpu lane): where it runs, how far it got, and on which ``device``."""

    name: str
    lane: str
    status: str
    attempts: int = 0
    device: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Step:
        return cls(
            name=data["name"],
            lane=data["lane"],
            status=data["status"],
            attempts=int(data.get("attempts") or 0),
            device=data.get("device"),
            started_at=_time(data.get("started_at")),
            ended_at=_time(data.get("ended_at")),
        )


@dataclass(frozen=True)
class Webhook:
    """Where the job's end is notified, and how the last delivery went (None until it ends)."""

    url: str
    outcome: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Webhook | None:
        return cls(url=data["url"], outcome=data.get("outcome")) if data else None


@dataclass(frozen=True)
class Estimate:
    """How long the job should run, from finished jobs like it: ``duration_s`` and the interval
    ``low_s``..``high_s``; ``basis`` says which jobs it was learned from."""

    duration_s: float
    low_s: float
    high_s: float
    basis: str

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Estimate | None:
        if not data:
            return None
        return cls(float(data["duration_s"]), float(data["low_s"]), float(data["high_s"]), data.get("basis", ""))


@dataclass(frozen=True)
class ExpectedStart:
    """When a queued job should start (``at``, between ``low`` and ``high``; ``in_s`` seconds from
    the answer): the ``jobs_ahead`` of it on its lane and the running ones, each taking its duration
    estimate, on the lane's ``workers``. ``unestimated`` of them had no estimate yet (counted as
    taking no time). With no worker on the lane ``at`` is None and ``reason`` says why."""

    at: datetime | None
    low: datetime | None
    high: datetime | None
    in_s: float | None
    jobs_ahead: int
    workers: int
    unestimated: int = 0
    reason: str | None = None
    basis: str = ""

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> ExpectedStart | None:
        if not data:
            return None
        return cls(
            at=_time(data.get("at")), low=_time(data.get("low")), high=_time(data.get("high")),
            in_s=data.get("in_s"), jobs_ahead=int(data.get("jobs_ahead") or 0), workers=int(data.get("workers") or 0),
            unestimated=int(data.get("unestimated") or 0), reason=data.get("reason"), basis=data.get("basis") or "",
        )  # fmt: skip
