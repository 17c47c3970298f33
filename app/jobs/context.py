"""What a worker process shares between its middleware and its actor: built once at start-up
and passed to both (never a module global)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.domain import Job, JobStatus, Lane
from app.core.settings import Settings
from app.core.storage import Store
from app.jobs.checkpoints import delete_checkpoint
from app.jobs.cpu_pool import CorePool
from app.jobs.ending import end_job
from app.jobs.runner import JobRunner
from app.state import State
from app.webhooks.outbox import Notifier


@dataclass
class WorkerContext:
    settings: Settings
    state: State
    store: Store
    runner: JobRunner
    worker_id: str
    lane: Lane
    # The cores this worker's jobs take from (app.jobs.cpu_pool): the process's, or the machine's.
    cores: CorePool
    jobs_done: int = 0
    jobs_started: int = 0
    # A one-shot worker (KEDA ScaledJob pod) starts at most this many jobs; None: no limit.
    max_jobs: int | None = None
    # The job the middleware picked for the message in progress (a message is only a slot
    # token of its lane; one consumer thread per worker, so one at a time).
    current: Job | None = None
    # Notifies the webhooks of jobs it ends; None when webhooks are off.
    notifier: Notifier | None = None

    def end(self, job: Job, status: JobStatus, text: str, **fields: Any) -> bool:
        """End ``job`` (see ``end_job``) and count it as done by this worker."""
        self.jobs_done += 1
        ended = end_job(self.state, self.store, job, status, text, notifier=self.notifier, **fields)
        # After the end (a worker lost between the two leaves a checkpoint for the retention
        # sweep, never a redone job without one): nothing will resume it now.
        delete_checkpoint(self.store, job, self.settings)
        return ended
