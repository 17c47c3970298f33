"""Following a job live: a spinner with the time spent in the current phase, a bar only when the
phase reports a fraction, the job's messages as they come, and a clear word on Ctrl-C."""

from __future__ import annotations

import time

from rich.console import RenderableType
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

import tabjob
from tabjob.cli.output import EXIT_INTERRUPTED, console
from tabjob.cli.show import seconds

POLL_S = 0.5


class PhaseColumn(ProgressColumn):
    """The phase and how long it has lasted, counted locally so it moves between polls."""

    def render(self, task: Task) -> Text:
        since = task.fields.get("since")
        spent = f" for {seconds(time.monotonic() - since)}" if since else ""
        return Text(f"{task.fields.get('phase', '')}{spent}")


class FractionBar(BarColumn):
    """A bar and a percentage only while the phase has a fraction; nothing (the spinner runs) otherwise."""

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("fraction") is None:
            return Text("")
        return super().render(task)


def follow(client: tabjob.Client, job_id: str, *, show: bool, timeout_s: float | None = None) -> tabjob.Job:
    """Wait for the job to end, showing it live (unless ``show`` is False); return its final state.

    Ctrl-C stops waiting only: the message says the job goes on and how to cancel it.
    """
    progress = Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}[/]"), PhaseColumn(), FractionBar(),
        TextColumn("{task.fields[percent]}"), TimeElapsedColumn(), console=console, disable=not show, transient=True,
    )  # fmt: skip
    task = progress.add_task(job_id, total=1.0, phase="", since=None, fraction=None, percent="")

    def update(job: tabjob.Job, events: list[tabjob.JobEvent]) -> None:
        for event in events:
            if event.message:
                progress.console.print(
                    f"[dim]{event.at.astimezone():%H:%M:%S}[/] {event.type}: {escape(event.message)}", highlight=False
                )
        phase = job.phase if job.status == "started" and job.phase else job.status
        if job.status == "queued" and job.queue and job.queue.position:
            phase = f"queued, position {job.queue.position}"
        fields = progress.tasks[0].fields
        since = fields["since"] if fields["phase"] == phase else time.monotonic()
        fraction = job.progress if job.status == "started" else None
        progress.update(
            task,
            completed=fraction or 0.0,
            phase=phase,
            since=since,
            fraction=fraction,
            percent=f"{fraction:.0%}" if fraction is not None else "",
        )

    try:
        with progress:
            return client.wait(job_id, timeout_s=timeout_s, poll_s=POLL_S, raise_on_failure=False, on_update=update)
    except KeyboardInterrupt:
        console.print(
            f"\nStopped waiting. Job {job_id} goes on running on the server.\n"
            f"  Follow it again: tabjob wait {job_id}\n"
            f"  Cancel it:       tabjob cancel {job_id}",
            highlight=False,
        )
        raise SystemExit(EXIT_INTERRUPTED) from None
