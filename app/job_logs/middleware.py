"""Opens a job's log when its worker starts an attempt and closes it when the attempt is over, as
Dramatiq middleware around the job lifecycle (``app.jobs.consumers`` lists it).

Listed first, its ``after_*`` hooks run last (Dramatiq runs them in reverse): the lines logged
while the lifecycle records a failure, or the job's end, are in the log before it is closed. Its
``start_hook`` is listed right after the lifecycle middleware, whose ``before`` hook picks the job,
and before the observer's, which logs the start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dramatiq import Broker, MessageProxy
from dramatiq.middleware import Middleware

from app.core.domain import Job
from app.job_logs.sink import JobLogSink

log = logging.getLogger("tabjob.job_logs")


class JobLogs(Middleware):
    """Parameters:
    sink: the worker process's job log sink.
    picked: the job the lifecycle middleware started for the message in progress, if any.
    """

    def __init__(self, sink: JobLogSink, picked: Callable[[], Job | None]) -> None:
        self.sink, self.picked = sink, picked
        self.opened: dict[str, str] = {}  # message id -> job id
        self.start_hook = _Open(self)

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        job_id = self.opened.pop(message.message_id, None)
        if job_id is not None:
            self.sink.end_attempt(job_id)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)


class _Open(Middleware):
    def __init__(self, owner: JobLogs) -> None:
        self.owner = owner

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        job = self.owner.picked()
        if job is None:
            return
        try:
            self.owner.sink.open(job)
        except Exception:  # the job runs without a stored log rather than not at all
            log.warning("could not open the log of job %s", job.id, exc_info=True)
            return
        self.owner.opened[message.message_id] = job.id
