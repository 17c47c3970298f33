"""What the client raises: one base class, API errors with the server's fields, and job endings.

``ApiError`` carries the server's error envelope (``code``, ``message``, ``hint``, ``retryable``)
and the HTTP status (0 when the service could not be reached at all). ``wait`` raises
``JobFailed`` or ``JobCanceled`` when a job ends without a result, so a script never mistakes a
canceled job for a finished one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tabjob.results import Dataset, Job


class TabjobClientError(Exception):
    """Base of every error this package raises on purpose."""


class ApiError(TabjobClientError):
    """An error answered by the API, or a transport failure before any answer.

    Attributes:
        status: the HTTP status; 0 when no answer came (service unreachable, client-side timeout).
        code: the stable dotted code (``dataset.missing_target``, ``job.not_found``...).
        message: what went wrong, for people.
        hint: what to do about it, when the server knows.
        retryable: True when the same request may succeed later (the platform failed, not the input).
    """

    def __init__(
        self, status: int, code: str, message: str, hint: str | None = None, *, retryable: bool = False
    ) -> None:
        super().__init__(f"{message} [{code}]" + (f"\nHint: {hint}" if hint else ""))
        self.status, self.code, self.message, self.hint, self.retryable = status, code, message, hint, retryable

    def to_dict(self) -> dict[str, object]:
        """The error as the API's envelope body, plus the HTTP status."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "retryable": self.retryable,
            "status": self.status,
        }


class InvalidDataset(ApiError):
    """The upload arrived but the server's check refused it (not Parquet, no rows, bad types...).

    ``dataset`` is the dataset as the server describes it (state ``invalid`` and its ``problem``).
    """

    def __init__(self, dataset: Dataset) -> None:
        problem = dataset.problem
        assert problem is not None
        super().__init__(422, problem.code, problem.message, problem.hint, retryable=problem.retryable)
        self.dataset = dataset


class WaitTimeout(ApiError):
    """``wait`` gave up before the job ended; the job itself goes on running."""

    def __init__(self, job: Job, timeout_s: float) -> None:
        super().__init__(
            0,
            "client.timeout",
            f"Job {job.id} did not end within {timeout_s:g} s (status {job.status}); it goes on running.",
            f"Wait again, or cancel it: client.cancel({job.id!r}).",
            retryable=True,
        )
        self.job = job


class JobEndedWithoutResult(TabjobClientError):
    """A job ``wait`` followed ended failed or canceled; ``job`` is its final state."""

    def __init__(self, job: Job, message: str) -> None:
        super().__init__(message)
        self.job = job


class JobFailed(JobEndedWithoutResult):
    """The job failed; ``job.error`` says why (its code, message, hint, and whether to retry)."""

    def __init__(self, job: Job) -> None:
        error = job.error
        detail = f"{error.message} [{error.code}]" + (f"\nHint: {error.hint}" if error.hint else "") if error else ""
        super().__init__(job, f"Job {job.id} failed: {detail}" if detail else f"Job {job.id} failed.")


class JobCanceled(JobEndedWithoutResult):
    """The job was canceled (by its owner) before it produced a result."""

    def __init__(self, job: Job) -> None:
        super().__init__(job, f"Job {job.id} was canceled; it has no result.")
