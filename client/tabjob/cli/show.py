"""How jobs and datasets read for people: one-paragraph summaries and tables with whole ids."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime

from rich import box
from rich.markup import escape
from rich.table import Table

import tabjob
from tabjob.cli.metrics_text import metrics_lines

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
    if job.expected_start and not job.ended:
        lines.append("  " + expected_start_text(job.expected_start))
    if job.estimate and not job.ended:
        e = job.estimate
        lines.append(f"  expected run time {seconds(e.duration_s)} ({seconds(e.low_s)} to {seconds(e.high_s)})")
    lines += _result_lines(job)
    if job.error:
        lines.append(f"  [red]{job.error.code}[/]: {escape(job.error.message)}")
        if job.error.hint:
            lines.append(f"  [yellow]Hint:[/] {escape(job.error.hint)}")
    return "\n".join(lines)


def expected_start_text(expected: tabjob.ExpectedStart) -> str:
    """When a queued job should start, for people, or why it cannot be said."""
    if expected.at is None or expected.low is None or expected.high is None:
        return f"expected start: [yellow]unknown[/]: {escape(expected.reason or '')}"
    text = (
        f"expected start {when(expected.at)} (in {seconds(expected.in_s or 0.0)}; "
        f"between {when(expected.low)} and {when(expected.high)})"
    )
    if expected.unestimated:
        text += f" [dim]{expected.unestimated} job(s) ahead have no estimate yet: it may start later[/]"
    return text


def _result_lines(job: tabjob.Job) -> list[str]:
    result = job.result or {}
    if job.status != "finished" or not result:
        return []
    if job.kind == "predict":
        return [f"  {result.get('rows', 0):,} predictions: tabjob download {job.id}"]
    classes = result.get("classes") or []
    learned = "a regression" if result.get("task") == "regression" else f"{len(classes)} classes"
    lines = [
        f"  model {job.id}: {learned} of '{result.get('target', 'y')}', trained on "
        f"{result.get('rows', 0):,} rows, {result.get('iterations', 0)} iterations"
    ]
    if job.task_reason and job.task_reason != "asked for":
        lines.append(f"  [dim]task {job.task}: {escape(job.task_reason)}[/]")
    lines += metrics_lines(result.get("validation"), classes)
    facts = [validation_text(result.get("validation"))]
    if result.get("duration_s") is not None:
        facts.append(f"fit took {seconds(result['duration_s'])}")
    if result.get("model_bytes") is not None:
        facts.append(f"model file {size(result['model_bytes'])}")
    return [*lines, "  " + "; ".join(f for f in facts if f)]


def size(n_bytes: int) -> str:
    """Bytes for people: 812 B, 1.2 MB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def validation_text(validation: dict | None) -> str:
    """The validation score and which rows it was measured on."""
    if not validation:
        return ""
    if validation.get("score") is None:
        return f"no validation score ({validation.get('note') or 'no rows held out'})"
    rows = f", {validation['rows']:,} rows" if validation.get("rows") else ""
    return f"validation {validation['metric']} {validation['score']:.4f} (on the {validation['split']} split{rows})"


def model_summary(model: tabjob.Model) -> str:
    """A model: where it came from, what it predicts from what, how good and how big it is."""
    learned = "regression" if model.task == "regression" else f"{len(model.classes)} classes"
    lines = [
        f"[bold]{model.id}[/]  model of '{escape(model.target)}' ({learned}), "
        f"from dataset {model.dataset_id}, trained {when(model.trained_at)}"
    ]
    lines += metrics_lines(model.raw.get("validation"), model.classes)
    facts = [validation_text(asdict(model.validation) if model.validation else None)]
    if model.duration_s is not None:
        facts.append(f"fit took {seconds(model.duration_s)}")
    if model.size_bytes is not None:
        facts.append(f"model file {size(model.size_bytes)}")
    lines.append("  " + "; ".join(f for f in facts if f))
    lines.append(f"  {len(model.features)} features: " + ", ".join(escape(str(f["name"])) for f in model.features))
    return "\n".join(lines)


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


def models_table(models: list[tabjob.Model]) -> Table:
    """Models, one a row, ids whole."""
    table = _table("id", "target", "learned", "features", "validation", "size", "trained", ids=[m.id for m in models])
    for m in models:
        score = m.validation.score if m.validation else None
        shown = f"{m.validation.metric} {score:.4f}" if m.validation and score is not None else ""
        learned = "regression" if m.task == "regression" else f"{len(m.classes)} classes"
        table.add_row(
            m.id, escape(m.target), learned, str(len(m.features)), shown,
            size(m.size_bytes) if m.size_bytes is not None else "", when(m.trained_at),
        )  # fmt: skip
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
