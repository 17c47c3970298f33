"""How the CLI shows things: rich tables and progress bars for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from app.client import ApiError

console = Console(stderr=True)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    """Print ``data`` as JSON on stdout, or ``human`` (rich markup) for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif human is not None:
        Console().print(human)


def fail(exc: ApiError, as_json: bool) -> None:
    """Report an API error and exit non-zero (2 for refusals, 1 for the rest)."""
    if as_json:
        sys.stdout.write(
            json.dumps({"error": {"code": exc.code, "message": exc.message, "hint": exc.hint, "status": exc.status}})
            + "\n"
        )
    else:
        console.print(f"[bold red]Error[/] [dim]{exc.code}[/]: {exc.message}")
        if exc.hint:
            console.print(f"[yellow]Hint:[/] {exc.hint}")
    raise SystemExit(2 if 400 <= exc.status < 500 else 1)


def transfer_progress(description: str, enabled: bool) -> tuple[Progress, Any]:
    """A byte progress bar (disabled for --json) and a callback ``(done, total)`` for it."""
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=console, disable=not enabled, transient=False,
    )  # fmt: skip
    task = progress.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total or None)

    return progress, update
