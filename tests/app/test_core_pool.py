"""The core pool (app/jobs/cpu_pool.py): a job takes the cores free when it starts and gives them back
at its end; the workers of one machine share one pool in Valkey; leases of a dead worker expire.
The burst test counts the threads the job processes really run (their ``R`` threads in /proc)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import redis
from fastapi.testclient import TestClient
from jobs_testing import upload, wait_for, wait_job

from app.core.domain import JobStatus
from app.core.errors import CanceledWhileRunning
from app.core.settings import Settings
from app.jobs.broker import redis_client
from app.jobs.cpu_pool import LocalCorePool, SharedCorePool, cores_wanted, leased_cores
from tests.conftest import Workers, api_client, make_settings, own_broker_env

POOL_CORES = 2


@pytest.fixture
def pool_key() -> str:
    return f"tabjob:cores:test-{secrets.token_hex(4)}"


def test_a_shared_pool_never_grants_more_than_its_cores(broker_db, pool_key):
    # Given two workers' views of one machine's pool of 2 cores
    first = SharedCorePool(broker_db, key=pool_key, total=POOL_CORES)
    second = SharedCorePool(broker_db, key=pool_key, total=POOL_CORES)
    # A lone job gets them all; the next gets none until they come back
    assert first.acquire("a", 4) == 2
    assert second.acquire("b", 2) == 0
    assert second.held() == 2
    first.release("a")
    assert second.acquire("b", 1) == 1
    assert first.acquire("c", 2) == 1  # the one left
    assert second.held() == 2
    # Asking again for a lease already held does not count it twice
    assert first.acquire("c", 2) == 1


@pytest.mark.parametrize("shared", [True, False])
def test_a_grant_narrower_than_asked_is_refused_when_the_job_will_wait_for_more(broker_db, pool_key, shared):
    pool = SharedCorePool(broker_db, key=pool_key, total=POOL_CORES) if shared else LocalCorePool(POOL_CORES)
    assert pool.acquire("toy", 1) == 1
    # One core free: a job that wants both takes none yet, and holds nothing meanwhile
    assert pool.acquire("fit", 2, at_least=2) == 0
    assert pool.held() == 1
    assert pool.acquire("fit", 2, at_least=1) == 1


def test_a_job_waits_for_the_core_a_short_job_holds_rather_than_running_narrow():
    # A burst on 2 cores: a fit started on the one core a finishing fit had freed ran on one
    # thread to its end (2.7-3.0 s where both cores took 1.3 s), and so did the next
    pool = LocalCorePool(2)
    assert pool.acquire("toy", 1) == 1
    threading.Timer(0.3, pool.release, args=("toy",)).start()
    with leased_cores(pool, "fit", 2, should_cancel=lambda: False, on_wait=lambda: None) as n:
        assert n == 2


def test_a_job_takes_what_is_free_once_a_long_one_keeps_its_core(monkeypatch):
    monkeypatch.setattr("app.jobs.cpu_pool.FULL_WIDTH_WAIT_S", 0.3)
    pool = LocalCorePool(2)
    assert pool.acquire("long", 1) == 1  # never released in this test
    t0 = time.monotonic()
    with leased_cores(pool, "fit", 2, should_cancel=lambda: False, on_wait=lambda: None) as n:
        assert n == 1 and time.monotonic() - t0 >= 0.3
        assert pool.held() == 2  # never more than the cores


def test_the_lease_of_a_dead_worker_expires(broker_db, pool_key):
    # Given a worker that took both cores and died (it never renews)
    dead = SharedCorePool(broker_db, key=pool_key, total=POOL_CORES, lease_ttl_s=0.3)
    alive = SharedCorePool(broker_db, key=pool_key, total=POOL_CORES, lease_ttl_s=0.3)
    assert dead.acquire("dead", 2) == 2
    assert alive.acquire("x", 2) == 0
    # Then its cores are free again once its lease expires
    time.sleep(0.4)
    assert alive.acquire("x", 2) == 2
    # while a renewed lease stays held
    time.sleep(0.2)
    alive.renew("x")
    time.sleep(0.2)
    assert dead.acquire("y", 1) == 0


def test_the_lease_of_a_killed_worker_process_is_free_at_once(broker_db, pool_key):
    # Given a worker process of this machine that took both cores and died holding them (a SIGKILL)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pool = SharedCorePool(broker_db, key=pool_key, total=POOL_CORES)  # a 15 s TTL
    assert pool.acquire(f"host-0a1b2c3d-{dead.pid}:job_1", 2) == 2
    # Then a restarted worker gets the cores now, not once the dead lease expires
    assert pool.acquire(f"host-9f8e7d6c-{os.getpid()}:job_1", 2) == 2
    # while a live process's lease is never taken
    assert pool.acquire(f"host-11223344-{os.getpid()}:job_2", 1) == 0


def test_concurrent_acquires_are_atomic(broker_db, pool_key):
    # Given 16 threads racing for a pool of 2 cores, each asking for 1
    pool = SharedCorePool(broker_db, key=pool_key, total=POOL_CORES)
    grants: list[int] = []
    barrier = threading.Barrier(16)

    def take(i: int) -> None:
        barrier.wait()
        grants.append(pool.acquire(f"l{i}", 1))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(grants) == POOL_CORES


def test_a_job_waits_for_a_core_and_a_reserved_worker_never_does():
    pool = LocalCorePool(2)
    assert pool.acquire("big", 2) == 2
    waited: list[bool] = []
    # A reserved (small-work) worker runs at once, on one thread outside the pool
    with leased_cores(
        pool, "toy", 1, should_cancel=lambda: False, on_wait=lambda: waited.append(True), reserved=True
    ) as n:
        assert n == 1 and waited == []
    # An ordinary one waits until the big job gives its cores back, then takes them
    threading.Timer(0.3, pool.release, args=("big",)).start()
    with leased_cores(pool, "next", 2, should_cancel=lambda: False, on_wait=lambda: waited.append(True)) as n:
        assert n == 2 and waited == [True]
        assert pool.held() == 2
    assert pool.held() == 0


def test_a_job_waiting_for_a_core_can_be_canceled():
    pool = LocalCorePool(1)
    pool.acquire("big", 1)

    def canceled() -> bool:
        raise CanceledWhileRunning("The job was canceled.")

    with pytest.raises(CanceledWhileRunning), leased_cores(pool, "j", 1, should_cancel=canceled, on_wait=lambda: None):
        pass
    assert pool.held() == 1


def test_a_job_asks_for_one_core_when_small_and_the_whole_pool_otherwise():
    assert cores_wanted(200, pool_total=8, rows_per_core=20_000) == 1
    assert cores_wanted(45_000, pool_total=8, rows_per_core=20_000) == 8
    assert cores_wanted(10, pool_total=8, rows_per_core=0) == 8


def running_threads(pids: list[int]) -> int:
    """Threads of these processes that are running or runnable now (state R in /proc)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                stat = (task / "stat").read_text()
            except OSError:
                continue
            total += stat.rsplit(")", 1)[1].split()[0] == "R"
    return total


def job_processes(worker_pids: list[int]) -> list[int]:
    """The job processes of these workers: the children of their forkserver (forked from it, they
    carry its command line)."""
    found = []
    for pid in worker_pids:
        for child in psutil.Process(pid).children():
            try:
                if "forkserver" in " ".join(child.cmdline()):
                    found.extend(job.pid for job in child.children())
            except psutil.NoSuchProcess:
                continue
    return found


@pytest.fixture
def pool_env(base_env: dict[str, str], settings: Settings) -> dict[str, str]:
    # ``settings`` (tests/conftest.py) makes the bucket, which a run of this test alone needs too.
    # Its own broker database: a job taken by the session's shared small-lane worker (not in this
    # pool, its own thread budget) would run on 1 thread and be invisible to the sampling below.
    return own_broker_env(base_env, 2)


@pytest.mark.slow
@pytest.mark.timeout(900)  # five real fits on a machine the suite shares
def test_a_burst_never_runs_more_threads_than_cores_and_a_lone_job_gets_them_all(pool_env, tmp_path):
    settings = make_settings(pool_env)
    workers = Workers(pool_env)
    try:
        with api_client(settings) as api:
            check_a_burst(api, workers, redis_client(settings, decode=True), tmp_path)
    finally:
        workers.stop_all()


def check_a_burst(api: TestClient, workers: Workers, broker_db: redis.Redis, tmp_path: Path) -> None:
    state = api.app.state.services.state
    # Given three workers of one machine sharing a pool of 2 cores (as `tabjob stack` runs them):
    # two consumers of the small lane in one process and one large-lane worker
    pool = {"TABJOB_WORKER_CORE_POOL": "machine", "TABJOB_WORKER_THREADS": str(POOL_CORES)}
    # Every fit here can use both cores. Passive OpenMP waiting: a thread then shows as running
    # only while it works, not while libgomp spins for its next region after a job's last one
    # (GOMP_SPINCOUNT, about 0.3 ms), which a sample can catch as a job hands its cores over.
    sized = {"TABJOB_SINGLE_THREAD_MAX_ROWS": "1000", "OMP_WAIT_POLICY": "passive"}
    small = workers.start("small", TABJOB_WORKER_CONSUMERS="2", **pool, **sized)
    large = workers.start("large", **pool, **sized)
    rng = np.random.default_rng(0)
    rows = 20_000
    frame = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"c{i}" for i in range(20)])
    frame["y"] = (frame["c0"] + rng.normal(size=rows) > 0).astype(int)
    path = tmp_path / "train.parquet"
    frame.to_parquet(path, index=False)
    dataset = upload(api, path)
    params = {"max_iter": 80, "early_stopping": False}

    # When a lone fit runs, it takes every core of the pool
    lone = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": params}).json()
    assert wait_job(api, lone["id"], 300)["status"] == "finished"
    assert state.jobs.get(lone["id"]).threads is None  # given back
    assert state.jobs.get(lone["id"]).result["threads"] == POOL_CORES  # OpenMP's own count

    # When four fits arrive at once on both lanes
    # (each its own seed: identical fits would be deduplicated into the lone one)
    body = {"kind": "fit", "dataset_id": dataset}
    jobs = [
        api.post("/v1/jobs", json={**body, "params": {**params, "random_state": seed}, "lane": lane}).json()
        for seed, lane in enumerate(("small", "large", "small", "large"), start=1)
    ]
    wait_for(lambda: any(state.jobs.get(j["id"]).status == JobStatus.STARTED for j in jobs), 120)
    # Then, sampled while they run, the cores granted never add up to more than the pool, and the
    # job processes never run more threads than the cores. Each sample reads the pool's leases
    # before and after it and counts only when they did not change: reading four job records or
    # several processes' /proc one after the other is not one instant, and a sample that straddles
    # one job handing its cores to the next adds both (that is what the merged suite once saw as
    # "3 cores granted", not a double grant: the grant is one Lua script).
    pool_key = f"tabjob:cores:{socket.gethostname()}"
    counts: list[int] = []
    peak_granted, samples = 0, 0
    while not all(state.jobs.get(j["id"]).status in (JobStatus.FINISHED, JobStatus.FAILED) for j in jobs):
        before = broker_db.hgetall(pool_key)
        running = running_threads(job_processes([small.pid, large.pid]))
        if broker_db.hgetall(pool_key) == before:
            counts.append(running)
            live = [v.split(":") for v in before.values() if int(v.split(":")[1]) > time.time() * 1000]
            peak_granted = max(peak_granted, sum(int(cores) for cores, _ in live))
            samples += 1
        time.sleep(0.02)
    assert samples > 10
    assert all(wait_job(api, j["id"])["status"] == "finished" for j in jobs)
    assert peak_granted <= POOL_CORES
    # What the job processes really ran: at most the cores in nearly every sample. A sample above
    # them is a thread runnable for a moment beyond the job's OpenMP team: HistGradientBoosting
    # bins on a Python thread pool of the job's size while its main thread dispatches (4 runnable
    # threads were caught in one 2-core job process), and on a loaded machine a thread waiting
    # for a CPU shows as runnable too. Measured (20,000 x 20, 2 cores, two busy loops beside):
    # 1 sample in 86 above the cores with the shared pool; 15 in 44 (34 %) with a pool per worker
    # process (TABJOB_WORKER_CORE_POOL=process, three consumers of 2 threads), which this fails.
    over = sum(count > POOL_CORES for count in counts)
    assert over <= 0.1 * len(counts), sorted(counts)[-20:]
    assert max(counts) >= 1
    # and some job had to wait for its cores, with an event that says so
    events = [e for j in jobs for e in api.get(f"/v1/jobs/{j['id']}/events").json()["items"]]
    assert any(e.get("phase") == "waiting for cores" for e in events)
