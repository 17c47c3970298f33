"""Figure 9: a long fit whose worker and job process are SIGKILLed at 60 % of its run, against the
same fit uninterrupted. Work time is first start to the kill plus the restart (the job's second
``started`` event) to its end; the wait for the stack to restart the worker and for the broker to
redeliver the message is not work. Also the cost of checkpointing: the uninterrupted service
fit's training time (it trains in chunks and saves) against the same fit in this process in one go."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import psutil

import ml.model
from app.jobs.broker import redis_client
from app.state import State
from bench.harness import Harness, random_frame, write_frame
from bench.table import Figure

ROWS, FEATURES, ROUNDS = 75_000, 50, 300
QUICK_ROWS, QUICK_ROUNDS = 40_000, 100
KILL_AT = 0.6
RESUME_TARGET_X = 1.4
COST_TARGET_X = 1.05


def _events(state: State, job_id: str) -> list[dict[str, Any]]:
    """The job's events as stored (``at`` in Unix seconds)."""
    return state.events.since(job_id)


def _run(h: Harness, dataset: str, params: dict[str, Any]) -> dict[str, Any]:
    job_id = h.client.fit(dataset, params=params, lane="large").id
    record = h.wait(job_id, poll_s=0.05)
    result = h.client.job(job_id).result or {}
    return {
        "work_s": record["ended_at"] - record["started_at"],
        "train_s": (result.get("timings") or {}).get("train_s"),
    }


def _killed(h: Harness, dataset: str, params: dict[str, Any], after_s: float) -> dict[str, Any]:
    """Submit, SIGKILL the worker and its job process ``after_s`` after the start, let it finish."""
    state = State(client=redis_client(h.settings, decode=True), retention_s=3600)
    job_id = h.client.fit(dataset, params=params, lane="large").id

    def started() -> float | None:
        return next((e["at"] for e in _events(state, job_id) if e["type"] == "started"), None)

    while (first := started()) is None:
        time.sleep(0.02)

    # At 60 % of the uninterrupted run's time, or of its rounds if this run is faster (a shared
    # machine's load changes): never after its training ended.
    def trained_enough() -> bool:
        job = state.jobs.get(job_id)
        return job is not None and job.phase == "training" and (job.progress or 0) >= KILL_AT

    while time.time() < first + after_s and not trained_enough():
        time.sleep(0.02)
    job = state.jobs.get(job_id)
    assert job is not None and job.worker is not None
    worker = psutil.Process(int(job.worker.rsplit("-", 1)[-1]))
    progress_at_kill = job.progress
    for process in [worker, *worker.children(recursive=True)]:  # the job process goes with it
        os.kill(process.pid, signal.SIGKILL)
    killed_at = time.time()
    # The stack's supervisor brings the worker back, as Kubernetes would (the harness runs one).
    record = h.wait(job_id, poll_s=0.05)
    events = _events(state, job_id)
    restarted = [e["at"] for e in events if e["type"] == "started"][-1]
    resumed = [e.get("progress") for e in events if e["type"] == "resumed"]
    return {
        "work_s": (killed_at - first) + (record["ended_at"] - restarted),
        "before_kill_s": killed_at - first,
        "after_restart_s": record["ended_at"] - restarted,
        "progress_at_kill": progress_at_kill,
        "resumed_at": resumed[0] if resumed else None,
    }


def run(h: Harness) -> list[Figure]:
    rows, rounds = (QUICK_ROWS, QUICK_ROUNDS) if h.quick else (ROWS, ROUNDS)
    dataset = h.upload(write_frame(h.workdir / "resume.parquet", random_frame(rows, FEATURES, seed=31)))
    params = {"max_iter": rounds, "early_stopping": False}
    # Different seeds: identical fits would be deduplicated. The direct fit uses the same seed as
    # the uninterrupted one, with the library's default threads (all cores), as the loop of burst.
    plain = _run(h, dataset, {**params, "random_state": 1})
    t0 = time.perf_counter()
    direct = ml.model.fit(h.dataset_url(dataset), h.put_url(h.scratch_key("models")),
                          params={**params, "random_state": 1}, scratch_dir=h.settings.scratch_dir)  # fmt: skip
    direct_s = time.perf_counter() - t0
    killed = _killed(h, dataset, {**params, "random_state": 2}, KILL_AT * plain["work_s"])
    shape = f"{rows:,} x {FEATURES}, {rounds} rounds"
    details = {"uninterrupted": plain, "killed": killed, "direct_s": direct_s, "direct_timings": direct["timings"]}
    return [
        Figure("9 resume", f"work time, fit {shape} killed at 60 % (worker and job process)", "s",
               killed["work_s"], plain["work_s"], f"<= {RESUME_TARGET_X:g}x uninterrupted",
               killed["work_s"] <= RESUME_TARGET_X * plain["work_s"], details),
        Figure("9 resume", f"checkpoint cost: training in chunks, saved, vs in one go in-process ({shape})", "s",
               plain["train_s"], direct["timings"]["train_s"], f"<= {COST_TARGET_X:g}x",
               plain["train_s"] is not None and plain["train_s"] <= COST_TARGET_X * direct["timings"]["train_s"]),
    ]  # fmt: skip
