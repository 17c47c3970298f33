"""Which workers ``tabjob stack`` runs, and the share of the machine's cores each may use.

The CPU budget on one machine: every worker's jobs get ``cores // workers that can run at
once`` OpenMP threads (at least one), so concurrent jobs never run more threads than there are
cores (unless there are fewer cores than workers, when each job runs on one thread). The small
lane gets one worker per core (up to 4), plus one reserved for small work: it starts only jobs
of at most RESERVED_MAX_CELLS cells, so a toy never waits for the big jobs the others run
(ordering alone, ``app.state.scripts.PICK``, leaves it waiting for the first of them to end).
"""

from __future__ import annotations

from app.cpu import available_cpus, threads_per_worker
from app.local.supervision import Child

MAX_SMALL_WORKERS = 4
# 20,000 rows x 50 columns: well under a second on one thread.
RESERVED_MAX_CELLS = 1_000_000


def workers_for(lane: str) -> int:
    """Ordinary worker processes on ``lane``: one per core for the small lane (toy jobs run
    single-threaded, so they run side by side), one for the others."""
    return min(available_cpus(), MAX_SMALL_WORKERS) if lane == "small" else 1


def concurrent_workers(lanes: tuple[str, ...]) -> int:
    """Workers that can run a job at once: every lane's, and the small lane's reserved one."""
    return sum(workers_for(lane) for lane in lanes) + ("small" in lanes)


def worker_threads(lanes: tuple[str, ...]) -> int:
    """Each worker's OpenMP threads (``TABJOB_WORKER_THREADS``): its share of the cores."""
    return threads_per_worker(available_cpus(), concurrent_workers(lanes))


def worker_children(python: list[str], lanes: tuple[str, ...]) -> list[Child]:
    """The stack's worker processes, each with the settings that differ from the others'."""
    children = []
    for lane in lanes:
        # Large and gpu jobs run minutes to hours: their workers' job processes start with the
        # first job (seconds), which keeps ~160 MiB each off the idle stack.
        warm = {} if lane == "small" else {"TABJOB_WORKER_WARM_START": "false"}
        args = [*python, "worker", "--lane", lane]
        children += [Child(f"worker-{lane}-{i}", args, lane=lane, env=warm) for i in range(1, workers_for(lane) + 1)]
    if "small" in lanes:
        reserved = {"TABJOB_WORKER_MAX_CELLS": str(RESERVED_MAX_CELLS), "TABJOB_WORKER_THREADS": "1"}
        children.append(Child("worker-small-reserved", [*python, "worker", "--lane", "small"], "small", reserved))
    return children
