"""A job process that grew while it worked is replaced once idle (``app.jobs.runner``), as Celery
replaces a child over ``worker_max_memory_per_child``: the stack idles after work near where it
idled before. A process that did not grow is kept, and a job that comes first never waits."""

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


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    # 40,000 x 50, the stack bench's work: its fit leaves the job process ~14 MiB over its warm
    # self; a toy fit leaves under 1 MiB.
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


@pytest.mark.slow  # forks job processes from a forkserver of its own
def test_a_grown_job_process_is_replaced_once_idle_and_a_lean_one_kept(data, monkeypatch):
    monkeypatch.setattr(runner_module, "IDLE_BEFORE_REPLACE_S", 0.3)
    runner = JobRunner(threads=1, max_growth_mib=8)
    try:
        lean = _fit(runner, data, "toy")
        time.sleep(1.0)
        assert runner._process is not None and runner._process.pid == lean  # under 1 MiB grown: kept
        grown = _fit(runner, data, "big")
        assert grown == lean
        # A job right after the big one runs in the same process: nothing waits for a replacement.
        assert _fit(runner, data, "toy") == grown
        held = psutil.Process(grown).memory_full_info().uss
        assert runner._warm_uss is not None and held - runner._warm_uss > 8 * MIB
        replaced = lambda: runner._process is not None and runner._process.pid != grown  # noqa: E731
        wait_until(replaced, what="the replacement", timeout_s=10)
        assert not psutil.pid_exists(grown) or psutil.Process(grown).status() == psutil.STATUS_ZOMBIE
        # The fresh process serves the next job and holds what a warm one holds.
        assert _fit(runner, data, "toy") == runner._process.pid
        assert psutil.Process(runner._process.pid).memory_full_info().uss < held - 8 * MIB
    finally:
        runner.kill()


@pytest.mark.slow
def test_on_a_cold_lane_the_grown_process_goes_and_the_next_job_starts_one(data, monkeypatch):
    monkeypatch.setattr(runner_module, "IDLE_BEFORE_REPLACE_S", 0.3)
    runner = JobRunner(threads=1, max_growth_mib=8, keep_warm=False)
    try:
        grown = _fit(runner, data, "big")
        wait_until(lambda: runner._process is None, what="the grown process to go", timeout_s=10)
        assert _fit(runner, data, "toy") != grown
    finally:
        runner.kill()
