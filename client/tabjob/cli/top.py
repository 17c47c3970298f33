"""``tabjob top``: the dashboard in a terminal, refreshed live (the same ``/v1/overview``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

import tabjob
from tabjob.cli.common import KEY, URL
from tabjob.cli.output import console, fail

# C0 and C1 control characters (ESC, CSI, BEL, backspace, carriage return...): text from the
# server (other tenants' error messages for an admin) must not move the cursor, retitle the
# terminal or hide lines; each is shown as U+FFFD.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(value: object) -> str:
    """``value`` as text safe for a terminal and for rich: control characters replaced, markup escaped."""
    return escape(_CONTROL.sub("\ufffd", "" if value is None else str(value)))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"


def _progress(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def _ids_whole(table: Table, *columns: int) -> Table:
    """Ids are what a user copies into the next command: their columns never shrink, wrap or end
    in an ellipsis; the other columns give way (they wrap) on a narrow terminal."""
    for index in columns:
        column = table.columns[index]
        column.no_wrap, column.overflow = True, "ignore"
        column.min_width = max([len(str(cell)) for cell in column._cells] + [len(str(column.header))])
    return table


def render(view: dict[str, Any]) -> Group:
    """The overview as rich tables: lanes, running, waiting, failures, workers."""
    admin = view["viewer"]["admin"]
    scope = "all tenants (admin)" if admin else f"tenant {view['viewer']['tenant']}"
    stamp = datetime.fromtimestamp(view["generated_at"]).strftime("%H:%M:%S")
    lanes = Table("lane", "queued", "running", "messages", "delayed", "oldest wait", "workers busy/live", title="Lanes")
    for lane in view["lanes"]:
        lanes.add_row(
            clean(lane["lane"]), str(lane["queued"]), str(lane["running"]), str(lane["messages"]),
            str(lane["delayed_messages"]), _duration(lane["oldest_queued_age_s"]),
            f"{lane['busy_workers']}/{lane['workers']}",
        )  # fmt: skip
    tenant_col = ("tenant",) if admin else ()
    running = Table(
        "job", "kind", "lane", "phase", "progress", "for", "attempt", "worker", *tenant_col, title="Running"
    )
    for job in view["running"]:
        running.add_row(
            clean(job["id"]), clean(job["kind"]), clean(job["lane"]), clean(job.get("phase")),
            _progress(job.get("progress")), _duration(job["for_s"]), str(job["attempts"]), clean(job.get("worker")),
            *((clean(job.get("tenant")),) if admin else ()),
        )  # fmt: skip
    waiting = Table("job", "kind", "lane", "pos", "for", "why it waits", *tenant_col, title="Waiting")
    for job in view["waiting"]:
        queue = job.get("queue") or {}
        waiting.add_row(
            clean(job["id"]), clean(job["kind"]), clean(job["lane"]), str(queue.get("position") or ""),
            _duration(job["for_s"]), clean(queue.get("reason")), *((clean(job.get("tenant")),) if admin else ()),
        )  # fmt: skip
    window = _duration(view.get("failure_window_s"))
    failures = Table("code", "count", "lanes", "latest message", "what to do", title=f"Failures (last {window})")
    for group in view["failures"]:
        failures.add_row(
            f"[red]{clean(group['code'])}[/]", str(group["count"]), clean(", ".join(n or "" for n in group["lanes"])),
            clean(group.get("message")), clean(group.get("hint")),
        )  # fmt: skip
    workers = Table("worker", "lane", "state", "running", "heartbeat", title="Workers")
    for w in view["workers"]:
        state = "[green]busy[/]" if w["busy"] else "[dim]idle[/]"
        job = (w.get("job_id") or "another tenant's job") if w["busy"] else ""
        workers.add_row(clean(w["id"]), clean(w["lane"]), state, clean(job), f"{_duration(w['heartbeat_age_s'])} ago")
    header = Text(f"tabjob top - {scope} - {stamp}", style="bold")
    running, waiting = _ids_whole(running, 0, 7), _ids_whole(waiting, 0)
    return Group(header, lanes, running, waiting, failures, _ids_whole(workers, 0, 3))


def register(app: typer.Typer) -> None:
    @app.command()
    def top(
        url: URL = None,
        api_key: KEY = None,
        interval: Annotated[float, typer.Option(help="Seconds between refreshes.", min=0.2)] = 2.0,
        once: Annotated[bool, typer.Option("--once", help="Print the picture once and exit.")] = False,
    ) -> None:
        """Live view of lanes, running and waiting jobs (and why they wait), failures and workers."""
        import time

        from rich.console import Console

        with tabjob.Client(url, api_key) as client:
            try:
                if once:
                    Console().print(render(client.overview()))
                    return
                with Live(render(client.overview()), console=Console(), screen=False, auto_refresh=False) as live:
                    while True:
                        time.sleep(interval)
                        live.update(render(client.overview()), refresh=True)
            except tabjob.ApiError as exc:
                fail(exc, as_json=False)
            except KeyboardInterrupt:
                console.print("Stopped.")
