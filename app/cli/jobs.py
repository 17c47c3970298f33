"""User commands: upload, fit, predict, status, wait, download, cancel, jobs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.output import console, emit, fail, transfer_progress
from app.client import ApiError, TabjobClient
from app.domain import JobStatus

URL = Annotated[str | None, typer.Option("--url", envvar="TABJOB_URL", help="API base URL.")]
KEY = Annotated[
    str | None, typer.Option("--api-key", envvar="TABJOB_API_KEY", help="Bearer API key.", show_default=False)
]
JSON = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
STATUS_STYLE = {
    JobStatus.QUEUED: "yellow",
    JobStatus.STARTED: "cyan",
    JobStatus.FINISHED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELED: "magenta",
}


def _client(url: str | None, key: str | None) -> TabjobClient:
    return TabjobClient(url, key)


def _params(pairs: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"'{pair}' is not NAME=VALUE")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    return params


def _summary(job: dict[str, Any]) -> str:
    style = STATUS_STYLE.get(job["status"], "white")
    line = f"[bold]{job['id']}[/] {job['kind']} [{style}]{job['status']}[/] lane={job['lane']} phase={job.get('phase')}"
    if job.get("deduplicated"):
        line += (
            "\n[dim]An identical fit (same bytes, same parameters) exists: returning it instead of training again.[/]"
        )
    if job.get("queue"):
        line += f"\n[dim]{job['queue']['reason']}[/]"
    if job.get("error"):
        line += f"\n[red]{job['error']['code']}[/]: {job['error']['message']}"
        if job["error"].get("hint"):
            line += f"\n[yellow]Hint:[/] {job['error']['hint']}"
    return line


def upload(path: Path, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Upload a Parquet file as a new dataset; prints its id."""
    with _client(url, api_key) as client:
        progress, update = transfer_progress(f"upload {path.name}", not as_json)
        try:
            with progress:
                created = client.upload(path, on_bytes=update)
        except ApiError as exc:
            fail(exc, as_json)
        emit(
            {"id": created["id"], "name": created.get("name")},
            as_json,
            f"dataset [bold]{created['id']}[/] uploaded",
        )


def fit(
    dataset_id: str,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Model parameter NAME=VALUE, e.g. max_iter=200.")
    ] = None,
    lane: Annotated[str, typer.Option(help="auto, small, large or gpu.")] = "auto",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job to end.")] = False,
    url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Train a model on a dataset (target column y); prints the job id, which is the model id."""
    params = _params(param) or None
    _show_job(url, api_key, as_json, lambda c: c.fit(dataset_id, params=params, lane=lane), wait=wait)


def predict(
    dataset_id: str, model_id: str,
    lane: Annotated[str, typer.Option(help="auto, small, large or gpu.")] = "auto",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job to end.")] = False,
    url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Predict a dataset with a fitted model (a finished fit job's id)."""
    _show_job(url, api_key, as_json, lambda c: c.predict(dataset_id, model_id, lane=lane), wait=wait)


def status(job_id: str, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Show a job: status, phase, progress, error, and why it waits."""
    _show_job(url, api_key, as_json, lambda c: c.job(job_id))


def wait(
    job_id: str,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """Follow a job live (phase, progress, events) until it ends; exit 1 unless it finished."""
    with _client(url, api_key) as client:
        try:
            job = _wait(client, job_id, as_json, timeout)
        except ApiError as exc:
            fail(exc, as_json)
        emit(job, as_json, _summary(job))
        if job["status"] != JobStatus.FINISHED:
            raise SystemExit(1)


def download(job_id: str, dest: Path, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Download a finished prediction (Parquet, one column y) to DEST."""
    with _client(url, api_key) as client:
        progress, update = transfer_progress(f"download {job_id}", not as_json)
        try:
            with progress:
                client.download(job_id, dest, on_bytes=update)
        except ApiError as exc:
            fail(exc, as_json)
        emit({"id": job_id, "path": str(dest)}, as_json, f"saved [bold]{dest}[/]")


def cancel(job_id: str, url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Cancel a queued or running job."""
    _show_job(url, api_key, as_json, lambda c: c.cancel(job_id))


def jobs(
    status: Annotated[str | None, typer.Option(help=f"One of: {', '.join(JobStatus)}.")] = None,
    kind: Annotated[str | None, typer.Option(help="fit or predict.")] = None,
    limit: int = 20, url: URL = None, api_key: KEY = None, as_json: JSON = False,
) -> None:  # fmt: skip
    """List your jobs, newest first."""
    with _client(url, api_key) as client:
        try:
            page = client.jobs(status=status, kind=kind, limit=limit)
        except ApiError as exc:
            fail(exc, as_json)
        if as_json:
            emit(page, True)
            return
        table = Table("id", "kind", "status", "lane", "phase", "created", "error")
        for job in page["items"]:
            style = STATUS_STYLE.get(job["status"], "white")
            error = job["error"]["code"] if job.get("error") else ""
            table.add_row(
                job["id"],
                job["kind"],
                f"[{style}]{job['status']}[/]",
                job["lane"],
                job.get("phase") or "",
                job["created_at"][:19],
                error,
            )
        console.print(table)


def register(app: typer.Typer) -> None:
    for command in (upload, fit, predict, status, wait, download, cancel, jobs):
        app.command()(command)


def _show_job(
    url: str | None,
    api_key: str | None,
    as_json: bool,
    call: Callable[[TabjobClient], dict[str, Any]],
    *,
    wait: bool = False,
) -> None:
    """Run one job call (optionally waiting for the job to end) and show the job or the error."""
    with _client(url, api_key) as client:
        try:
            job = call(client)
            job = _wait(client, job["id"], as_json) if wait else job
        except ApiError as exc:
            fail(exc, as_json)
        emit(job, as_json, _summary(job))


def _wait(client: TabjobClient, job_id: str, as_json: bool, timeout: float | None = None) -> dict[str, Any]:
    """Wait with a live phase/progress bar and the job's events printed as they come."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[phase]}"),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    )
    task = progress.add_task(job_id, total=None, phase="")

    def update(job: dict[str, Any], events: list[dict[str, Any]]) -> None:
        for event in events:
            if event.get("message"):
                progress.console.print(f"[dim]{event['at'][11:19]}[/] {event['type']}: {event['message']}")
        fraction = job.get("progress")
        phase = job.get("phase") or job["status"]
        if job["status"] == JobStatus.QUEUED and job.get("queue"):
            phase = f"queued (position {job['queue']['position']})"
        progress.update(task, total=1.0 if fraction is not None else None, completed=fraction or 0, phase=phase)

    with progress:
        return client.wait(job_id, timeout_s=timeout, on_update=update)
