"""`tabjob top` keeps ids whole on an 80-column terminal: an id cut to `job_01234…` cannot be
pasted into the next command (issue 26)."""

from __future__ import annotations

from rich.console import Console

from tabjob.cli.top import render

RUNNING, WAITING, WORKER = "job_0123456789abcdef0123", "job_ffffffffffffffffffff", "w-tabjob-worker-small-7f9c-12345"


def view() -> dict:
    reason = "1 job(s) ahead of it; 1 of 1 worker(s) on the large lane are busy."
    return {
        "viewer": {"admin": True, "tenant": "local"}, "generated_at": 0, "failure_window_s": 3600,
        "lanes": [{"lane": "small", "queued": 1, "running": 1, "messages": 2, "delayed_messages": 0,
                   "oldest_queued_age_s": 3, "busy_workers": 1, "workers": 1}],
        "running": [{"id": RUNNING, "kind": "fit", "lane": "small", "phase": "training", "progress": 0.5,
                     "for_s": 12, "attempts": 1, "worker": WORKER, "tenant": "a-long-tenant-name"}],
        "waiting": [{"id": WAITING, "kind": "predict", "lane": "large", "for_s": 5,
                     "queue": {"position": 2, "reason": reason}, "tenant": "acme"}],
        "failures": [], "workers": [{"id": WORKER, "lane": "small", "busy": True, "job_id": RUNNING,
                                     "heartbeat_age_s": 1}],
    }  # fmt: skip


def test_ids_stay_whole_at_80_columns():
    console = Console(width=80, record=True, color_system=None)
    console.print(render(view()))
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 80
    # Each id whole on one line: in the running and waiting tables and (the running one) in workers.
    assert sum(RUNNING in line for line in lines) == 2
    assert sum(WAITING in line for line in lines) == 1
    assert sum(WORKER in line for line in lines) == 2
