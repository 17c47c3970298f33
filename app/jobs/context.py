"""What a worker process shares between its middleware and its actor, set once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from app.jobs.runner import JobRunner
from app.settings import Settings
from app.state import StateStore
from app.storage import Store


@dataclass
class WorkerContext:
    settings: Settings
    state: StateStore
    store: Store
    runner: JobRunner
    worker_id: str
    lane: str
    jobs_done: int = 0
    jobs_started: int = 0
    # A one-shot worker (KEDA ScaledJob pod) starts at most this many jobs; None: no limit.
    max_jobs: int | None = None


_current: WorkerContext | None = None


def set_context(context: WorkerContext | None) -> None:
    global _current
    _current = context


def get_context() -> WorkerContext:
    if _current is None:
        raise RuntimeError("no worker context: run jobs through `tabjob worker`")
    return _current
