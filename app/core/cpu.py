"""The CPU budget: how many cores this process may use.

In a pod the limit is the cgroup's CPU quota (Kubernetes ``limits.cpu``); OpenMP and BLAS count
the node's cores instead, so a job left to their defaults would run more threads than it may
use and be throttled. ``app.core.settings.Settings.threads_for_worker`` turns this into the size of a
worker's core pool (``app.jobs.cpu_pool``).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPUs this process's cgroup may use (its CFS quota divided by the period), or None
    when no quota is set. A container's limit (Kubernetes ``limits.cpu``) is this quota.

    cgroup v2: ``cpu.max`` ("<quota> <period>" or "max <period>") of the process's own cgroup
    and of every cgroup above it, the smallest wins. cgroup v1: ``cpu.cfs_quota_us`` (-1 for
    none) over ``cpu.cfs_period_us`` in the cpu controller's hierarchy.
    """
    limits: list[float] = []
    for folder in _cgroup_v2_folders(root, proc_cgroup):
        try:
            quota, period = (folder / "cpu.max").read_text().split()
            if quota != "max":
                limits.append(int(quota) / int(period))
        except (OSError, ValueError):
            continue
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        try:
            quota_us = int((root / name / "cpu.cfs_quota_us").read_text())
            period_us = int((root / name / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        if quota_us > 0 and period_us > 0:
            limits.append(quota_us / period_us)
        break
    return min(limits) if limits else None


def _cgroup_v2_folders(root: Path, proc_cgroup: Path) -> list[Path]:
    """The cgroup v2 folders that bound this process: its own, then each parent up to the root
    (inside a container the namespace makes its own cgroup the root)."""
    own = "/"
    try:
        for line in proc_cgroup.read_text().splitlines():
            if line.startswith("0::"):
                own = line[3:].strip() or "/"
    except OSError:
        pass
    folder = root / own.lstrip("/")
    folders = [folder]
    while folder != root and root in folder.parents:
        folder = folder.parent
        folders.append(folder)
    return folders if root in folders else [*folders, root]


def available_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """Whole cores this process may use: the affinity mask, lowered to the cgroup CPU quota
    rounded down (a 1.5 CPU quota gives 1: a second thread would be throttled), at least 1."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        cpus = min(cpus, math.floor(limit))
    return max(1, cpus)


TASKS = Path("/proc/self/task")


def runqueue_waits(tasks: Path = TASKS) -> dict[str, int] | None:
    """Nanoseconds each thread of this process has spent runnable but waiting for a CPU, by
    thread id, or None where the kernel does not say (not Linux, or no schedstat).

    ``/proc/<pid>/task/<tid>/schedstat`` holds three numbers: time on a CPU, time waiting on a
    run queue, and time slices run (Linux ``Documentation/scheduler/sched-stats.rst``). The
    second is what other processes' load costs a job: a job's run time minus its threads' share
    of it is the time it would have taken on an idle machine, which the duration estimates learn
    from (``app.usecases.estimates``)."""
    waits: dict[str, int] = {}
    try:
        for task in tasks.iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                waits[task.name] = int((task / "schedstat").read_text().split()[1])
    except OSError:
        return None
    return waits or None


def runqueue_wait_s(before: dict[str, int] | None, after: dict[str, int] | None, threads: int) -> float | None:
    """Seconds of a job's run spent waiting for a CPU, per thread it was given, between two
    ``runqueue_waits`` readings (threads started in between count from zero)."""
    if before is None or after is None:
        return None
    waited_ns = sum(max(0, ns - before.get(tid, 0)) for tid, ns in after.items())
    return round(waited_ns / 1e9 / max(1, threads), 4)
