"""The one exception tree of tabjob.

``UserError`` is bad input: never retried, answered with a 4xx, its message says what to fix.
``InfraError`` is the platform's fault: retried with backoff, and says so.
Every error has a stable dotted ``code`` that clients may match on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.domain import ErrorInfo


class TabjobError(Exception):
    """Base of every error tabjob raises on purpose."""

    code: str = "internal"
    status: int = 500
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.hint = hint
        self.headers = headers or {}

    def to_dict(self) -> ErrorInfo:
        """The error as stored on a job and sent in the API's error envelope."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "retryable": self.retryable,
        }


class UserError(TabjobError):
    """The request or the data is wrong; retrying the same thing fails the same way."""

    status = 400


class NotFound(UserError):
    status = 404


class ModelDeleted(UserError):
    """A predict names a model whose file was deleted: refused at submission, or failed by the
    worker when the model was deleted while the predict waited."""

    code = "model.deleted"
    status = 410

    def __init__(self, model_id: str) -> None:
        super().__init__(
            f"Model '{model_id}' was deleted.", hint="Train a new model (tabjob fit DATASET_ID) and use its id."
        )


class Conflict(UserError):
    status = 409


class Unauthorized(UserError):
    status = 401
    code = "auth.unauthorized"


class TooLarge(UserError):
    status = 413


class TooManyJobs(UserError):
    status = 429


class CanceledWhileRunning(UserError):
    """The owner canceled the job while it ran (its process is stopped); not a failure to retry."""

    code = "job.canceled"
    status = 409


class JobTimeout(UserError):
    """An attempt ran past its lane's time limit. Retrying would take as long again."""

    code = "job.timeout"
    status = 408


class InfraError(TabjobError):
    """The platform failed (store, broker, a lost worker); retried a bounded number of times."""

    code = "platform.unavailable"
    status = 503
    retryable = True
