"""The job processes' forkserver runs their warm-up once (``app.jobs.preload``), on one OpenMP
thread: what it loads is shared by every job process, and a job process forked from it still runs
OpenMP teams of the threads it is given (GNU OpenMP's pool does not survive a fork: a forkserver
that had started one would leave its children a pool without threads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from app.jobs import runner

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # starts a forkserver that imports pandas and scikit-learn


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _peak_threads_while(fit: Any) -> int:
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _threads())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fit()
    finally:
        stop.set()
        sampler.join()
    return peak[0]


def _in_a_job_process(queue: Any) -> None:
    import sys

    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    import ml.io

    # What only the warm-up loads (the store client's transport, imported when a client is made)
    warmed = "httpcore._sync.connection_pool" in sys.modules
    own_client = ml.io._client is None  # dropped by the forkserver: each job process makes its own
    X = np.random.default_rng(0).standard_normal((40_000, 10))
    y = X[:, 0] > 0

    def fit_on(threads: int) -> Any:
        def fit() -> None:
            with threadpool_limits(limits=threads, user_api="openmp"):
                HistGradientBoostingClassifier(max_iter=20, early_stopping=False).fit(X, y)

        return fit

    one, two = _peak_threads_while(fit_on(1)), _peak_threads_while(fit_on(2))
    queue.put((warmed, own_client, one, two))


def report() -> None:
    """Fork a job process from the job runner's forkserver and print what it found (JSON)."""
    context = runner._forkserver()
    queue = context.Queue()
    process = context.Process(target=_in_a_job_process, args=(queue,))
    process.start()
    try:
        print(json.dumps(queue.get(timeout=120)))
    finally:
        process.join(30)


def test_job_processes_share_the_forkservers_warm_up_and_still_run_openmp_teams():
    # In a fresh interpreter: multiprocessing runs one forkserver per process, started with the
    # preloads of whichever context used it first (in this test process, maybe the inspection pool's).
    probe = "from tests.app.test_job_process_warmup import report; report()"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    warmed, own_client, one, two = json.loads(done.stdout.strip().splitlines()[-1])
    # The forkserver warmed the fit up, and left the store's client for each job process to make
    assert warmed and own_client
    # And a job process forked from it starts threads for an OpenMP team of two, where a team of one
    # runs on the calling thread alone (only OpenMP's limit changes between the two fits)
    assert one <= 2 < two, (one, two)  # a team of one: the test's own two threads
