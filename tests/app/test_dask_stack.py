"""The embedded stack's Dask cluster is supervised like Valkey and SeaweedFS: a killed scheduler or
worker nanny is started again, and the workers join the new scheduler."""

from __future__ import annotations

import signal

import psutil
import pytest

from app.local.dask_cluster import LocalDaskCluster
from tests.app.jobs_testing import wait_for

pytestmark = pytest.mark.slow


def test_a_killed_scheduler_and_nanny_are_restarted_and_the_workers_rejoin(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = LocalDaskCluster(tmp_path, workers=1, worker_memory="192MiB")
    cluster.launch(logs)
    try:
        cluster.wait_ready(120)
        # Given a running cluster, when its scheduler and its worker's nanny are killed
        nanny = psutil.Process(cluster.nannies[0].pid)  # type: ignore[attr-defined]
        for child in nanny.children(recursive=True):  # its worker process goes with it
            child.send_signal(signal.SIGKILL)
        cluster.scheduler.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        nanny.send_signal(signal.SIGKILL)
        cluster.scheduler.wait(10)  # type: ignore[attr-defined]
        cluster.nannies[0].wait(10)  # type: ignore[attr-defined]
        # Then supervision starts both again (after the back-off), on the same port
        restarted: set[str] = set()

        def both_back() -> bool:
            restarted.update(cluster.supervise_once(logs))
            return restarted == {"dask-scheduler", "dask-worker-0"}

        wait_for(both_back, 30, 0.2)
        # And the worker joins the new scheduler at the address the stack handed out
        cluster.wait_ready(120)
        assert cluster.env()["TABJOB_DASK_SCHEDULER_ADDRESS"] == cluster.address
    finally:
        cluster.stop()
