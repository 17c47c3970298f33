"""Which workers ``tabjob stack`` runs, and the cores they share.

The cores on one machine are one pool held in Valkey (``app.jobs.cpu_pool``, ``TABJOB_WORKER_CORE_POOL
=machine``): a job takes the cores free when it starts, up to what its size uses, so a lone fit
gets the whole machine and the running jobs together never run more threads than there are
cores. The small lane gets one worker per core (up to 4), plus one reserved for small work: it starts only jobs
of at most 1,000,000 cells (``TABJOB_WORKER_SMALL_WORK_MAX_CELLS``), so a toy never waits for
the big jobs the others run (ordering alone, ``app.state.scripts.PICK``, leaves it waiting for
the first of them to end).

The small lane's workers are consumers of one process (``app.jobs.consumers``): their job
processes are forked from one forkserver, which loads pandas and scikit-learn once (about
150 MiB) instead of once per worker.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.core.cpu import available_cpus
from app.local.supervision import Child

MAX_SMALL_WORKERS = 4


def workers_for(lane: str) -> int:
    """Ordinary worker processes on ``lane``: one per core for the small lane (toy jobs run
    single-threaded, so they run side by side), one for the others."""
    return min(available_cpus(), MAX_SMALL_WORKERS) if lane == "small" else 1


def concurrent_workers(lanes: tuple[str, ...]) -> int:
    """Workers that can run a job at once: every lane's, and the small lane's reserved one."""
    return sum(workers_for(lane) for lane in lanes) + ("small" in lanes)


def core_pool_env() -> dict[str, str]:
    """The settings that make every worker of the stack share the machine's cores: one pool in
    Valkey, as big as the cores this process may use."""
    return {"TABJOB_WORKER_CORE_POOL": "machine", "TABJOB_WORKER_THREADS": str(available_cpus())}


def with_stack_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` over the stack's own defaults. One machine's inspections: as many at once as it
    has cores (up to the service's 4), all warm. Each child holds about 22 MiB of PSS idle and the
    children a burst started stay: a laptop's idle memory must not pay for a server's concurrency."""
    inspections = str(min(available_cpus(), 4))
    return {"TABJOB_MAX_CONCURRENT_INSPECTIONS": inspections, "TABJOB_INSPECTION_WARM_CHILDREN": inspections, **environ}


def worker_children(python: list[str], lanes: tuple[str, ...], on_demand: tuple[str, ...] = ()) -> list[Child]:
    """The stack's worker processes, one per lane, with the settings that differ between them.
    ``on_demand``: the lanes whose worker the stack starts only when a job waits for it."""
    children = []
    for lane in lanes:
        if lane == "small":
            env = {"TABJOB_WORKER_CONSUMERS": str(workers_for(lane)), "TABJOB_WORKER_SMALL_WORK_CONSUMERS": "1"}
        elif lane in on_demand:
            # Started because a job waits: its job process starts at once, while the job is being
            # picked (a worker restarted after a crash has it warm before its job is redelivered).
            env = {"TABJOB_WORKER_WARM_START": "true"}
        else:
            # Large and gpu jobs run minutes to hours: a worker that idles with the stack starts
            # its job processes (and forkserver) with its first job, which keeps ~200 MiB each off
            # the idle stack.
            env = {"TABJOB_WORKER_WARM_START": "false"}
        children.append(Child(f"worker-{lane}", [*python, "worker", "--lane", lane], lane=lane, env=env))
    return children
