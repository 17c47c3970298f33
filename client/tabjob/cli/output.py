"""How the CLI shows things: plain ids for scripts (``-q``), JSON (``--json``), rich text for people.

Results go to stdout; progress, notes and errors go to stderr, so ``ID=$(tabjob upload f -q)``
and ``tabjob jobs --json | jq`` see only the result.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from tabjob import ApiError

# soft_wrap: messages are not cut into lines by rich (the terminal wraps them; logs keep them whole).
console = Console(stderr=True, soft_wrap=True)
# Exit codes: 2 for a mistake in what was asked (bad input, unknown id, refused data), 1 for a
# job that did not finish or a service that failed, 130 for Ctrl-C.
EXIT_MISTAKE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130
# Piped output has no terminal width: tables are printed this wide so no id is ever cut.
PIPE_WIDTH = 250


class Mistake(Exception):
    """Something the user asked cannot be done as asked; said before (or instead of) calling the API."""

    def __init__(self, message: str, hint: str | None = None, code: str = "cli.invalid") -> None:
        super().__init__(message)
        self.message, self.hint, self.code = message, hint, code


def stdout_console() -> Console:
    """A console on stdout, wide enough when piped that tables keep every id whole."""
    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)


def emit(data: Any, as_json: bool, human: Any = None) -> None:
    """Print ``data`` as JSON on stdout, or ``human`` (rich markup or a renderable) for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif human is not None:
        stdout_console().print(human)


def plain(line: str) -> None:
    """One line on stdout exactly as given (ids for ``-q``): no markup, no wrapping."""
    sys.stdout.write(line + "\n")


class Invocation:
    """The command being run (``tabjob fit``), set by the root callback, for hints that name it."""

    command = "tabjob"


def cli_hint(hint: str | None, code: str) -> str | None:
    """The server's hint, pointed at the CLI: users of the command get its --help, not /docs."""
    if code == "request.invalid" or (hint and "/docs" in hint):
        return f"Check the arguments: {Invocation.command} --help"
    return hint


def fail(exc: ApiError | Mistake, as_json: bool) -> NoReturn:
    """Report an error and exit: 2 for a refusal or a mistake, 1 for the rest."""
    status = getattr(exc, "status", 400)
    hint = cli_hint(exc.hint, exc.code)
    if as_json:
        body = {"code": exc.code, "message": exc.message, "hint": hint, "status": status}
        body["retryable"] = bool(getattr(exc, "retryable", False))
        sys.stdout.write(json.dumps({"error": body}) + "\n")
    else:
        console.print(f"[bold red]Error[/] [dim]{exc.code}[/]: {exc.message}", highlight=False)
        if hint:
            console.print(f"[yellow]Hint:[/] {hint}", highlight=False)
    raise SystemExit(EXIT_MISTAKE if isinstance(exc, Mistake) or 400 <= status < 500 else EXIT_FAILED)


def transfer_progress(description: str, enabled: bool) -> tuple[Progress, Any]:
    """A byte progress bar on stderr (off for -q and --json) and a callback ``(done, total)`` for it."""
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=console, disable=not enabled, transient=True,
    )  # fmt: skip
    task = progress.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total or None)

    return progress, update
