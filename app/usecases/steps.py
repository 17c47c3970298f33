"""The steps of a two-step job: ``prepare`` on a CPU lane, then ``model`` on the gpu lane.

A job whose model family runs on the GPU (``app.usecases.families``) is one job with one status
to its owner, and a list of steps in its record. The job's ``lane`` is always the lane of the
step it is in, so the lane's queue, counters and workers see it like any job. These functions
only compute new step lists (pure: no I/O); the worker and the submission store them together
with the status change they go with, in one atomic move.
"""

from __future__ import annotations

import time

from app.core.domain import Job, JobStatus, Lane, Step, StepName

PREPARE: StepName = "prepare"
MODEL: StepName = "model"
GPU_LANE: Lane = "gpu"
# A step in one of these needs nothing more done.
STEP_DONE = frozenset({"finished", "skipped"})
STEP_ENDED = STEP_DONE | {"failed", "canceled"}


def plan(prepare_lane: Lane, *, prepared: bool) -> list[Step]:
    """The steps of a new two-step job: ``prepare`` on ``prepare_lane`` (skipped when the
    prepared matrix is already in the store), then ``model`` on the gpu lane."""
    prepare = _step(PREPARE, prepare_lane, "skipped" if prepared else "queued")
    if prepared:
        prepare["started_at"] = prepare["ended_at"] = time.time()
    return [prepare, _step(MODEL, GPU_LANE, "queued" if prepared else "pending")]


def _step(name: StepName, lane: Lane, status: str) -> Step:
    return {"name": name, "lane": lane, "status": status, "device": None, "started_at": None, "ended_at": None,
            "attempts": 0}  # fmt: skip


def current(steps: list[Step]) -> Step | None:
    """The step the job is in (the first not done), or None when every step is done."""
    return next((s for s in steps if s["status"] not in STEP_DONE), None)


def _changed(steps: list[Step], name: StepName, **fields: object) -> list[Step]:
    return [{**s, **fields} if s["name"] == name else dict(s) for s in steps]  # type: ignore[misc]


def started(steps: list[Step], name: StepName, device: str | None = None) -> list[Step]:
    """``name`` started (again, after a lost worker): its start time and attempts."""
    step = next(s for s in steps if s["name"] == name)
    return _changed(steps, name, status="started", started_at=time.time(), ended_at=None,
                    attempts=step["attempts"] + 1, device=device)  # fmt: skip


def requeued(steps: list[Step], name: StepName) -> list[Step]:
    """``name`` waits in its lane's queue again (a retry after a platform error)."""
    return _changed(steps, name, status="queued")


def advanced(steps: list[Step], done: StepName, device: str | None, *, skipped: bool = False) -> list[Step]:
    """``done`` finished (or was skipped: its output was already there); the next step queued."""
    now = time.time()
    fields: dict[str, object] = {"status": "skipped" if skipped else "finished", "ended_at": now, "device": device}
    if skipped:
        fields["started_at"] = now
    out = _changed(steps, done, **fields)
    following = current(out)
    return _changed(out, following["name"], status="queued") if following else out


def closed(steps: list[Step], status: JobStatus, device: str | None = None) -> list[Step]:
    """The steps of a job that ended with ``status``: the step in progress takes that status
    (finished, failed, canceled; ``device`` when given), the steps that never ran ``canceled``."""
    now, out, first = time.time(), [], True
    for step in steps:
        if step["status"] in STEP_ENDED:
            out.append(dict(step))
            continue
        if first:
            ran = step["status"] == "started"
            fields = {"status": status.value, "ended_at": now if ran else None}
            out.append({**step, **fields, **({"device": device} if device else {})})  # type: ignore[typeddict-item]
            first = False
        else:
            out.append({**step, "status": "canceled"})
    return out  # type: ignore[return-value]


def step_tag(job: Job) -> dict[str, str]:
    """``{"step": name}`` of the step a two-step job is in, for its events; ``{}`` otherwise."""
    step = current(job.steps)
    return {"step": step["name"]} if step else {}


def spent_s(job: Job) -> float:
    """Seconds the job's steps have run so far (ended steps only): its time limit counts them."""
    return sum((s["ended_at"] or 0) - (s["started_at"] or 0) for s in job.steps if s["status"] == "finished")


def shown(job: Job) -> list[Step]:
    """The steps as their owner sees them: a step whose worker was lost shows ``queued`` while
    the job waits to run it again (the reaper changes the job's status, not its steps)."""
    if job.status != JobStatus.QUEUED:
        return job.steps
    step = current(job.steps)
    return requeued(job.steps, step["name"]) if step and step["status"] == "started" else job.steps
