"""How long a job will take, from the history of finished jobs, shown at submission as
``estimate: {"duration_s", "low_s", "high_s", "basis"}``.

Method. A finished job leaves a sample: its kind, model family, lane, the cells of its dataset
(rows x columns), the boosting iterations it was allowed for a fit (``max_iter`` /
``n_estimators``) and how long its last attempt ran. A new job of the same kind and family is
estimated from the samples of its own lane when there are some (its workers' threads and
machine), else of all lanes:

- with ``MIN_FOR_REGRESSION`` samples or more, the better of two least-squares models by their
  error on jobs left out of the fit (``app.usecases.estimate_models``): a power law
  ``log(duration) = c + b1 log(cells) + b2 log(iterations)``, or a fixed overhead plus costs in
  proportion to the work; the interval is that left-out error (about 2 of 3 jobs inside, were
  the errors normal);
- with fewer, the nearest samples in log(cells x iterations), scaled proportionally to the new
  job's work, and their spread.

The interval's half-width (in log space) is kept between ``MIN_HALF_SPAN`` and
``MAX_HALF_SPAN``, so it is never wider than 4x its low end. From the second job of its kind on
(one finished job is enough to scale from).

Load. A run time measured on a busy machine says as much about the other jobs as about this one:
200 toy fits three at a time on two cores each take 1.5x what one takes alone. So a sample keeps
its *unloaded* run time: the run minus the time it waited for cores (``app.jobs.cpu_pool``) and
minus its threads' wait on the kernel's run queue (``app.core.cpu.runqueue_waits``), and the
models learn from those. The estimate is then stretched by the CPU load of the moment: the median
ratio of run time with cores to unloaded time of the pool's latest ``RECENT_JOBS`` jobs that
ended in the last ``RECENT_S`` seconds (1 when none did: an idle machine), and the basis says so.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
import time
from typing import Any

import redis

from app.core.domain import Job, JobStatus
from app.state import Keys
from app.usecases.estimate_models import best_fit

SAMPLES_KEPT = 500
NEAREST = 7
MIN_FOR_REGRESSION = 6
# Interval half-width in log space: exp(0.35) ~ x1.42 each way at least; exp(0.8) ~ x2.2 at most,
# so high/low <= e^1.6 ~ 4.95 and the width (high - low) stays <= 4x low.
MIN_HALF_SPAN = 0.35
MAX_HALF_SPAN = 0.8
ITERATIONS = {"hgb": ("max_iter", 100), "xgboost": ("n_estimators", 100)}
# The load of the moment: the latest jobs that ended this recently ran under it. The latest few,
# not all: after 200 toy fits three at a time on two cores (each ran 1.5x its unloaded time), the
# fits that followed one at a time on the idle machine were estimated 1.5x too long for a minute
# (in the full bench, 4 of 12 held-out fits inside their interval; the latest five were those
# idle fits themselves).
RECENT_S = 60.0
RECENT_JOBS = 5
# A stretch below this is the noise of an idle machine, not load: not applied.
MIN_STRETCH = 1.05


def _size(job: Job) -> tuple[float, float]:
    """The job's cells (rows x columns) and its allowed boosting iterations (1 for a predict)."""
    cells = float(max(1, job.cost_cells or job.dataset_rows or 1))
    if job.kind != "fit":
        return cells, 1.0
    name, default = ITERATIONS.get(job.model, ("max_iter", 100))
    return cells, float(job.params.get(name) or default)


def work(job: Job) -> float:
    """The job's size in cells, times its allowed boosting iterations for a fit."""
    cells, iterations = _size(job)
    return cells * iterations


def record(r: redis.Redis, keys: Keys, job: Job) -> None:
    """Keep a finished job's run time as a sample for later estimates (the newest SAMPLES_KEPT)."""
    if job.status != JobStatus.FINISHED or not job.started_at or not job.ended_at:
        return
    cells, iterations = _size(job)
    duration_s = max(job.ended_at - job.started_at, 1e-3)
    load = (job.result or {}).get("load") or {}
    # Its run once it had its cores, and that less its threads' wait for a CPU
    ran_s = max(duration_s - float(load.get("cores_wait_s") or 0.0), duration_s / 10, 1e-3)
    unloaded_s = max(ran_s - float(load.get("runqueue_wait_s") or 0.0), ran_s / 10, 1e-3)
    sample = {
        "work": cells * iterations, "cells": cells, "iterations": iterations, "lane": job.lane,
        "duration_s": duration_s, "ran_s": ran_s, "unloaded_s": unloaded_s, "ended_at": job.ended_at,
    }  # fmt: skip
    key = keys.estimates(job.kind, job.model)
    pipe = r.pipeline()
    pipe.lpush(key, json.dumps(sample))
    pipe.ltrim(key, 0, SAMPLES_KEPT - 1)
    pipe.execute()


def _with_sizes(pool: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Samples with cells and iterations (samples recorded before they were kept have work only),
    whose duration is their unloaded run time where they have one."""
    return [
        {**s, "cells": s.get("cells", s["work"]), "iterations": s.get("iterations", 1.0),
         "duration_s": s.get("unloaded_s", s["duration_s"])}
        for s in pool
    ]  # fmt: skip


def stretch_now(pool: list[dict[str, Any]], now: float) -> float:
    """How much the machine's load of the moment stretches a run: the median ratio of run time
    (with its cores) to unloaded run time of the latest ``RECENT_JOBS`` jobs that ended in the last
    ``RECENT_S`` seconds, 1.0 when none did. The wait for cores is left out: it says the cores were
    busy then, not how fast a job runs once it has them (a burst that just ended leaves an idle
    machine)."""
    ended = [s for s in pool if "ran_s" in s and now - s.get("ended_at", 0) <= RECENT_S]
    latest = sorted(ended, key=lambda s: s.get("ended_at", 0), reverse=True)[:RECENT_JOBS]
    return statistics.median(s["ran_s"] / s["unloaded_s"] for s in latest) if latest else 1.0


@functools.lru_cache(maxsize=32)
def _fitted(raw: tuple[str, ...], lane: str) -> tuple[list[dict[str, Any]], bool, Any]:
    """The samples an estimate uses (the lane's, or all), whether they are the lane's, and the
    model fitted on them: the same history gives the same fit, so a burst of submissions between
    two job ends fits it once (it was a fifth of a submission's time in the API)."""
    samples = [json.loads(s) for s in raw]
    same_lane = [s for s in samples if s["lane"] == lane]
    pool = same_lane or samples
    return pool, bool(same_lane), best_fit(_with_sizes(pool)) if len(pool) >= MIN_FOR_REGRESSION else None


def estimate(r: redis.Redis, keys: Keys, job: Job, now: float | None = None) -> dict[str, Any] | None:
    """The job's expected run time and interval, or None before any job of its kind finished."""
    raw = r.lrange(keys.estimates(job.kind, job.model), 0, SAMPLES_KEPT - 1)
    if not raw:
        return None
    pool, same_lane, fitted = _fitted(tuple(raw), job.lane)
    if fitted is not None:
        cells, iterations = _size(job)
        centre, spread = fitted.log_duration(cells, iterations), fitted.loo_error
        method = f"least squares on {fitted.name} over {len(pool)}"
    else:
        x = math.log(work(job))
        nearest = sorted((math.log(s["work"]), math.log(s["duration_s"])) for s in _with_sizes(pool))
        nearest = sorted(nearest, key=lambda p: abs(p[0] - x))[:NEAREST]
        scaled = [y + (x - px) for px, y in nearest]
        centre = sum(scaled) / len(scaled)
        spread = math.sqrt(sum((s - centre) ** 2 for s in scaled) / max(1, len(scaled) - 1))
        method = f"the {len(nearest)} nearest in rows x columns x iterations, scaled to its work, of {len(pool)}"
    half = min(max(spread, MIN_HALF_SPAN), MAX_HALF_SPAN)
    where = f"the {job.lane} lane" if same_lane else "all lanes"
    basis = f"{method} finished {job.model} {job.kind} jobs on {where}"
    stretch = stretch_now(pool, time.time() if now is None else now)
    if stretch >= MIN_STRETCH:
        centre += math.log(stretch)
        basis += (
            f", x{stretch:.2f} for the current load (the jobs that ended in the last {RECENT_S:.0f} s"
            " ran that much longer than unloaded)"
        )
    return {
        "duration_s": round(math.exp(centre), 3),
        "low_s": round(math.exp(centre - half), 3),
        "high_s": round(math.exp(centre + half), 3),
        "basis": basis,
    }
