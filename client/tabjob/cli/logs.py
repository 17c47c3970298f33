"""``tabjob logs JOB``: one job's lines from the embedded stack's per-process log files.

The API and the workers write JSON lines (``app.logging_setup``) into ``DIR/logs/<name>.log``;
the lines about a job carry its ``job_id``. Lines that are not JSON (a traceback printed by a
library, Valkey's own log) are kept when they name the job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tabjob.cli.output import console

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


def register(app: typer.Typer) -> None:
    @app.command()
    def logs(
        job_id: str,
        data_dir: Annotated[Path, typer.Option(help="The local stack's data dir (tabjob stack --data-dir).")] = Path(
            ".tabjob"
        ),
        as_json: Annotated[bool, typer.Option("--json", help="The JSON lines as written.")] = False,
    ) -> None:
        """Show one job's log lines from the local stack's API and workers, oldest first."""
        from rich.console import Console

        logs_dir = data_dir / "logs"
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
