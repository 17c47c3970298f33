"""``tabjob logs JOB [-f]``: one job's log lines, as the service keeps them in its object store
(``GET /v1/jobs/{id}/logs``): the worker's and the job process's, every attempt, after the worker
is gone too; ``-f`` follows them until the job ends.

``--data-dir DIR`` reads a local stack's own process logs instead (``DIR/logs/<name>.log``, JSON
lines from ``app.core.logging_setup``; the lines about a job carry its ``job_id``): the API's lines
too, and lines that are not JSON (a library's traceback, Valkey's log) when they name the job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

import tabjob
from tabjob.cli.common import KEY, URL, connected, expect_id, reported
from tabjob.cli.output import console

FOLLOW_HELP = "Show new lines as they come, until the job ends."
LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "red", "critical": "bold red"}


def job_lines(logs_dir: Path, job_id: str) -> list[dict[str, Any]]:
    """Every line about ``job_id`` in ``logs_dir/*.log``, oldest first (lines without a time
    keep their place after the timed ones of the same file)."""
    found: list[tuple[str, int, dict[str, Any]]] = []
    for path in sorted(logs_dir.glob("*.log")):
        last_ts = ""
        for n, line in enumerate(_read(path)):
            entry = _parse(line)
            if entry is None:
                if job_id in line:
                    found.append((last_ts, n, {"process": path.stem, "msg": line, "raw": True}))
                continue
            last_ts = entry.get("ts", last_ts)
            if entry.get("job_id") == job_id:
                entry.setdefault("process", path.stem)
                found.append((last_ts, n, entry))
    found.sort(key=lambda item: (item[0], item[2].get("process", ""), item[1]))
    return [entry for _, _, entry in found]


def _read(path: Path) -> Iterator[str]:
    with path.open(errors="replace") as f:
        for line in f:
            yield line.rstrip("\n")


def _parse(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None


def _human(entry: dict[str, Any]) -> str:
    if entry.get("raw"):
        return f"[dim]{escape(entry['process'])}[/] {escape(entry['msg'])}"
    style = LEVEL_STYLE.get(entry.get("level", ""), "")
    where = " ".join(f"{k}={entry[k]}" for k in ("lane", "step", "tenant") if entry.get(k))
    text = f"{entry.get('ts', '')} [cyan]{escape(entry['process'])}[/] {escape(entry.get('msg', ''))} [dim]{where}[/]"
    if entry.get("exc"):
        text += "\n" + escape(entry["exc"])
    return f"[{style}]{text}[/]" if style else text


def _stored(line: tabjob.LogLine) -> str:
    """A line of the job's stored log, for a terminal."""
    style = LEVEL_STYLE.get(line.level, "")
    when = line.time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if line.time else ""
    where = f"{line.step or ''}#{line.attempt} {line.source}"
    text = f"{when} [cyan]{escape(where)}[/] {escape(line.message)}"
    if line.exc:
        text += "\n" + escape(line.exc)
    return f"[{style}]{text}[/]" if style else text


def _from_files(logs_dir: Path, job_id: str, as_json: bool) -> None:
    from rich.console import Console

    if not logs_dir.is_dir():
        console.print(f"[bold red]No logs[/] in {logs_dir}: is this the data dir of a `tabjob stack`?")
        raise SystemExit(2)
    lines = job_lines(logs_dir, job_id)
    if not lines:
        console.print(f"No line about {job_id} in {logs_dir}/*.log.")
        raise SystemExit(1)
    out = Console(highlight=False, soft_wrap=True)
    for entry in lines:
        if as_json:
            typer.echo(json.dumps({k: v for k, v in entry.items() if k != "raw"}))
        else:
            out.print(_human(entry))


def register(app: typer.Typer) -> None:
    @app.command()
    def logs(
        job_id: str,
        follow: Annotated[bool, typer.Option("--follow", "-f", help=FOLLOW_HELP)] = False,
        since: Annotated[str | None, typer.Option(help="Only the lines after this cursor (a line's `cursor`).")] = None,
        data_dir: Annotated[
            Path | None,
            typer.Option(help="Read a local stack's process log files in this data dir instead of the API."),
        ] = None,
        url: URL = None,
        api_key: KEY = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line, as the API sends them.")] = False,
    ) -> None:
        """Show one job's log lines (its worker and job process, every attempt), oldest first."""
        from rich.console import Console

        with reported(as_json):
            job_id = expect_id(job_id, "job", "JOB_ID")
        if data_dir is not None:
            _from_files(data_dir / "logs", job_id, as_json)
            return
        out = Console(highlight=False, soft_wrap=True)
        shown = 0
        with connected(url, api_key, as_json) as client:
            for line in client.logs(job_id, follow=follow, since=since):
                shown += 1
                if as_json:
                    typer.echo(json.dumps(line.raw))
                else:
                    out.print(_stored(line))
        if not shown and not as_json:
            console.print(f"No log line of {job_id} yet (a queued job has none until a worker starts it).")
