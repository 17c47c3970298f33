"""How jobs and datasets read for people: one-paragraph summaries and tables with whole ids."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich import box
from rich.markup import escape
from rich.table import Table

import tabjob

STATUS_STYLE = {"queued": "yellow", "started": "cyan", "finished": "green", "failed": "red", "canceled": "magenta"}


def when(moment: datetime | None) -> str:
    """A time in the viewer's zone, to the second."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def seconds(value: float) -> str:
    """A duration for people: 0.4 s, 12.3 s, 4 min 05 s, 2 h 03 min."""
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60):02d} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60):02d} min"


def status(job: tabjob.Job) -> str:
    return f"[{STATUS_STYLE.get(job.status, 'white')}]{job.status}[/]"


def job_summary(job: tabjob.Job) -> str:
    """What a job is, where it stands, and what it produced or why it did not."""
    lines = [f"[bold]{job.id}[/]  {job.kind} {status(job)}  lane {job.lane}, attempt {max(job.attempts, 1)}"]
    source = f"dataset {job.dataset_id}" + (f", model {job.model_id}" if job.model_id else "")
    lines.append(f"  {source}")
    if job.status == "started":
        phase = job.phase or "starting"
        fraction = f" {job.progress:.0%}" if job.progress is not None else ""
        lines.append(f"  phase {phase}{fraction}" + (" (cancel requested)" if job.cancel_requested else ""))
    if job.started_at and job.ended_at:
        lines.append(f"  ran {seconds((job.ended_at - job.started_at).total_seconds())}, ended {when(job.ended_at)}")
    if job.deduplicated:
        lines.append("  [dim]An identical fit (same bytes, same parameters) exists: it is returned instead.[/]")
    if job.queue:
        lines.append(f"  [dim]{escape(job.queue.reason)}[/]")
    lines += _result_lines(job)
    if job.error:
        lines.append(f"  [red]{job.error.code}[/]: {escape(job.error.message)}")
        if job.error.hint:
            lines.append(f"  [yellow]Hint:[/] {escape(job.error.hint)}")
    return "\n".join(lines)


def _result_lines(job: tabjob.Job) -> list[str]:
    result = job.result or {}
    if job.status != "finished" or not result:
        return []
    if job.kind == "predict":
        return [f"  {result.get('rows', 0):,} predictions: tabjob download {job.id}"]
    classes = result.get("classes") or []
    return [
        f"  model {job.id}: {len(classes)} classes, trained on {result.get('rows', 0):,} rows, "
        f"{result.get('iterations', 0)} iterations"
    ]


def dataset_summary(dataset: tabjob.Dataset) -> str:
    """A dataset's state, shape, and problem when the check refused it."""
    name = f" ({escape(dataset.name)})" if dataset.name else ""
    if dataset.state == "uploaded":
        shape = f"{dataset.rows:,} rows x {len(dataset.columns or [])} columns, {dataset.size_bytes or 0:,} bytes"
        return f"[bold]{dataset.id}[/]{name}  [green]uploaded[/]: {shape}"
    line = f"[bold]{dataset.id}[/]{name}  [yellow]{dataset.state}[/]"
    if dataset.problem:
        line += f"\n  [red]{dataset.problem.code}[/]: {escape(dataset.problem.message)}"
        if dataset.problem.hint:
            line += f"\n  [yellow]Hint:[/] {escape(dataset.problem.hint)}"
    return line


def _table(*headers: str, ids: Iterable[str]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    longest = max((len(i) for i in ids), default=2)
    table.add_column(headers[0], no_wrap=True, min_width=longest)
    for header in headers[1:]:
        table.add_column(header, overflow="fold")
    return table


def jobs_table(jobs: list[tabjob.Job]) -> Table:
    """Jobs, one a row, ids whole."""
    table = _table("id", "kind", "status", "lane", "phase", "dataset", "created", "error", ids=[j.id for j in jobs])
    for job in jobs:
        phase = job.phase if job.status == "started" else ""
        error = job.error.code if job.error else ""
        table.add_row(job.id, job.kind, status(job), job.lane, phase or "", job.dataset_id, when(job.created_at), error)
    return table


def datasets_table(datasets: list[tabjob.Dataset]) -> Table:
    """Datasets, one a row, ids whole."""
    table = _table("id", "name", "state", "rows", "columns", "bytes", "created", ids=[d.id for d in datasets])
    for d in datasets:
        rows = f"{d.rows:,}" if d.rows is not None else ""
        columns = str(len(d.columns)) if d.columns is not None else ""
        size = f"{d.size_bytes:,}" if d.size_bytes is not None else ""
        table.add_row(d.id, escape(d.name or ""), d.state, rows, columns, size, when(d.created_at))
    return table
