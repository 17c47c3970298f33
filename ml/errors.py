"""Problems with a user's data, found by ``ml``. ``app`` maps them to its own user errors."""

from __future__ import annotations


class DataProblem(ValueError):
    """The data cannot be used as given. ``code`` is stable; ``message`` and ``hint`` are for people.

    Parameters:
      code: a dotted identifier such as ``dataset.missing_target``.
      message: what is wrong, in the user's terms (names the column or the problem).
      hint: what to do about it.
    """

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
