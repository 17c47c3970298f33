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
