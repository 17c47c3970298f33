"""The CPU budget: how many cores a worker's pool holds, from the cgroup quota (a pod's CPU limit),
the affinity mask and the configured size, the cores a job asks for, and the embedded stack's one
pool for the whole machine. Fake cgroup trees stand in for /sys/fs/cgroup."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core import settings as settings_module
from app.core.cpu import available_cpus, cgroup_cpu_limit, runqueue_wait_s, runqueue_waits
from app.core.domain import Job, JobStatus
from app.core.settings import Settings
from app.jobs.actors import threads_for
from app.local.stack import EmbeddedStack

AFFINITY = len(os.sched_getaffinity(0))


@pytest.fixture
def settings() -> Settings:
    """Settings that start nothing (these tests compute, they do not connect)."""
    return Settings(
        redis_url="redis://127.0.0.1:1", s3_endpoint="http://127.0.0.1:1", s3_access_key="a", s3_secret_key="b"
    )


def cgroup_v2(tmp_path: Path, limits: dict[str, str], own: str = "/") -> tuple[Path, Path]:
    """A fake cgroup v2 tree (``cpu.max`` per folder) and a /proc/self/cgroup naming ``own``."""
    root = tmp_path / "cgroup"
    for folder, cpu_max in limits.items():
        (root / folder.strip("/")).mkdir(parents=True, exist_ok=True)
        (root / folder.strip("/") / "cpu.max").write_text(cpu_max + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::{own}\n")
    return root, proc


def test_a_v2_quota_of_the_process_cgroup_is_its_cpu_limit(tmp_path):
    root, proc = cgroup_v2(tmp_path, {"/": "max 100000", "/kubepods/pod1": "200000 100000"}, own="/kubepods/pod1")
    assert cgroup_cpu_limit(root, proc) == 2.0
    assert available_cpus(root, proc) == min(2, AFFINITY)


def test_the_smallest_quota_on_the_way_to_the_root_wins(tmp_path):
    # A parent (the pod) limits more than the container's own cgroup.
    root, proc = cgroup_v2(tmp_path, {"/pod": "150000 100000", "/pod/container": "400000 100000"}, own="/pod/container")
    assert cgroup_cpu_limit(root, proc) == 1.5
    # A fractional quota rounds down: a second thread would only be throttled.
    assert available_cpus(root, proc) == 1


def test_no_quota_means_the_affinity_mask(tmp_path):
    root, proc = cgroup_v2(tmp_path, {"/": "max 100000"})
    assert cgroup_cpu_limit(root, proc) is None
    assert available_cpus(root, proc) == AFFINITY


def test_a_quota_under_one_cpu_still_gives_one_thread(tmp_path):
    root, proc = cgroup_v2(tmp_path, {"/": "50000 100000"})
    assert available_cpus(root, proc) == 1


def test_a_v1_cfs_quota_is_read_too(tmp_path):
    root = tmp_path / "cgroup"
    (root / "cpu,cpuacct").mkdir(parents=True)
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("100000\n")
    (root / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    missing = tmp_path / "no-proc-file"
    assert cgroup_cpu_limit(root, missing) == 1.0
    assert available_cpus(root, missing) == 1
    (root / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "no quota"
    assert cgroup_cpu_limit(root, missing) is None


def test_the_configured_thread_count_never_exceeds_the_quota(monkeypatch, settings):
    monkeypatch.setattr(settings_module, "available_cpus", lambda: 2)
    assert settings.model_copy(update={"worker_threads": 8}).threads_for_worker() == 2
    assert settings.model_copy(update={"worker_threads": 1}).threads_for_worker() == 1
    assert settings.model_copy(update={"worker_threads": None}).threads_for_worker() == 2


def test_small_jobs_ask_for_one_core_and_others_for_the_whole_pool(settings):
    tuned = settings.model_copy(update={"single_thread_max_rows": 20_000})

    def job(rows: int) -> Job:
        return Job(id="job_x", tenant="t", kind="fit", lane="small", status=JobStatus.QUEUED, dataset_rows=rows)

    assert threads_for(job(200), tuned, 4) == 1
    assert threads_for(job(30_000), tuned, 4) == 4
    assert threads_for(job(75_000), tuned, 4) == 4
    assert threads_for(job(75_000), tuned, 2) == 2  # never more than the pool


@pytest.mark.parametrize("cores", [16, 2])
def test_the_stack_workers_share_one_pool_of_the_machines_cores(monkeypatch, tmp_path, cores):
    # Given a machine of `cores` cores and a stack of every lane
    monkeypatch.setattr("app.local.workers.available_cpus", lambda: cores)
    stack = EmbeddedStack(data_dir=tmp_path)
    stack.valkey = SimpleNamespace(url="redis://127.0.0.1:1")  # type: ignore[assignment]
    stack.s3 = SimpleNamespace(endpoint="http://127.0.0.1:1")  # type: ignore[assignment]
    env = stack.child_env()
    # Then every worker takes its jobs' cores from one pool in Valkey, as big as the machine:
    # a lone job may use every core (no static share of cores / workers)
    assert env["TABJOB_WORKER_CORE_POOL"] == "machine"
    assert int(env["TABJOB_WORKER_THREADS"]) == cores


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.skipif(runqueue_waits() is None, reason="the kernel gives no /proc/self/task/*/schedstat here")
@pytest.mark.slow  # starts CPU-bound processes
def test_a_threads_wait_for_a_cpu_is_read_from_the_kernel_and_grows_with_load():
    # Alone, a busy thread hardly waits for a CPU; with twice as many busy processes as cores
    # beside it, it waits for a good share of its run (what the duration estimates take out)
    before = runqueue_waits()
    spin(0.3)
    idle_wait = runqueue_wait_s(before, runqueue_waits(), threads=1)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * AFFINITY)]
    try:
        time.sleep(0.2)
        before = runqueue_waits()
        spin(1.0)
        loaded_wait = runqueue_wait_s(before, runqueue_waits(), threads=1)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert idle_wait is not None and loaded_wait is not None
    # (as shares of the run: the machine may be busy with other tests during the first part too)
    assert loaded_wait / 1.0 > max(0.2, idle_wait / 0.3 + 0.1), (idle_wait, loaded_wait)


def test_runqueue_readings_count_new_threads_from_zero_and_split_the_wait_by_threads(tmp_path):
    tasks = tmp_path / "task"
    for tid, line in {"1": "5 1000000000 3", "2": "7 500000000 1"}.items():
        (tasks / tid).mkdir(parents=True)
        (tasks / tid / "schedstat").write_text(line + "\n")
    before = runqueue_waits(tasks)
    assert before == {"1": 1_000_000_000, "2": 500_000_000}
    (tasks / "1" / "schedstat").write_text("9 3000000000 5\n")
    (tasks / "3").mkdir()
    (tasks / "3" / "schedstat").write_text("1 1000000000 1\n")  # a thread started during the job
    assert runqueue_wait_s(before, runqueue_waits(tasks), threads=2) == pytest.approx(1.5)
    assert runqueue_waits(tmp_path / "absent") is None and runqueue_wait_s(None, before, 1) is None
