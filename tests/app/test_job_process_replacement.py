"""A job process that grew while it worked is replaced once idle (``app.jobs.runner``), as Celery
replaces a child over ``worker_max_memory_per_child``: the stack idles after work near where it
idled before. A process that did not grow is kept, and a job that comes first never waits.

How much a fit leaves behind depends on what the process had loaded before it (a worker's
forkserver preloads pandas and scikit-learn; in a test session the process's one forkserver may
have been started by another pool with other preloads), so each test measures what a toy fit and
a big fit leave here and puts the threshold between the two."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from app.core.waiting import wait_until
from app.jobs import runner as runner_module
from app.jobs.runner import JobRunner

MIB = 2**20
NEVER = 1e9


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    # 40,000 x 50, the stack bench's work: on a worker, its fit leaves the job process ~14 MiB over
    # its warm self; a toy fit leaves under 1 MiB.
    big = pd.DataFrame(rng.normal(size=(40_000, 50)), columns=[f"c{i}" for i in range(50)])
    big["y"] = (big.c0 > 0).astype(int)
    big.to_parquet(tmp_path / "big.parquet")
    pd.DataFrame({"a": np.arange(200.0), "y": np.arange(200) % 2}).to_parquet(tmp_path / "toy.parquet")
    return tmp_path


def _fit(runner: JobRunner, data: Path, name: str) -> int:
    """Fit ``name``.parquet in ``runner``'s job process; the pid of the process that ran it."""
    runner.run(
        "fit",
        {"data_url": str(data / f"{name}.parquet"), "model_url": str(data / f"{name}.pkl"), "params": {"max_iter": 50}},
        time_limit_s=120, should_cancel=lambda: False, cancel_poll_s=0.2, on_progress=lambda *a: None,
    )  # fmt: skip
    assert runner._process is not None
    return runner._process.pid


def _grown(runner: JobRunner) -> float:
    """What the job process holds over its warm self, bytes."""
    assert runner._process is not None and runner._warm_uss is not None
    return psutil.Process(runner._process.pid).memory_full_info().uss - runner._warm_uss


def _between_a_toy_and_a_big_fit(runner: JobRunner, data: Path) -> int:
    """Run two toy fits then a big one with replacement off; set the threshold halfway between what
    they left behind (the idle check reads it when it fires) and return the big fit's process."""
    _fit(runner, data, "toy")
    _fit(runner, data, "toy")  # the first job's one-time costs are behind it
    toy = _grown(runner)
    big = _fit(runner, data, "big")
    grown = _grown(runner)
    assert grown > toy + 2 * MIB, (toy / MIB, grown / MIB)  # a big fit leaves more than a toy
    runner.max_growth_mib = (toy + grown) / 2 / MIB
    return big


@pytest.mark.slow  # forks job processes from a forkserver
def test_a_grown_job_process_is_replaced_once_idle_and_a_lean_one_kept(data, monkeypatch):
    monkeypatch.setattr(runner_module, "IDLE_BEFORE_REPLACE_S", 1.0)
    runner = JobRunner(threads=1, max_growth_mib=NEVER)
    try:
        grown = _between_a_toy_and_a_big_fit(runner, data)
        replaced = lambda: runner._process is not None and runner._process.pid != grown  # noqa: E731
        wait_until(replaced, what="the replacement", timeout_s=15)
        assert not psutil.pid_exists(grown) or psutil.Process(grown).status() == psutil.STATUS_ZOMBIE
        # The fresh process serves the next jobs; a toy fit leaves it lean, and it is kept
        fresh = _fit(runner, data, "toy")
        assert fresh == runner._process.pid and _fit(runner, data, "toy") == fresh
        time.sleep(2 * runner_module.IDLE_BEFORE_REPLACE_S)
        assert runner._process is not None and runner._process.pid == fresh
    finally:
        runner.kill()


@pytest.mark.slow
def test_a_job_right_after_a_big_one_runs_in_the_same_process(data, monkeypatch):
    monkeypatch.setattr(runner_module, "IDLE_BEFORE_REPLACE_S", 1.0)
    runner = JobRunner(threads=1, max_growth_mib=NEVER)
    try:
        grown = _between_a_toy_and_a_big_fit(runner, data)
        # Nothing waits for a replacement: the job that comes first takes the grown process
        assert _fit(runner, data, "toy") == grown
    finally:
        runner.kill()


@pytest.mark.slow
def test_on_a_cold_lane_the_grown_process_goes_and_the_next_job_starts_one(data, monkeypatch):
    monkeypatch.setattr(runner_module, "IDLE_BEFORE_REPLACE_S", 1.0)
    runner = JobRunner(threads=1, max_growth_mib=NEVER, keep_warm=False)
    try:
        grown = _between_a_toy_and_a_big_fit(runner, data)
        wait_until(lambda: runner._process is None, what="the grown process to go", timeout_s=15)
        assert _fit(runner, data, "toy") != grown
    finally:
        runner.kill()
