"""Faults the embedded stack survives: Valkey or SeaweedFS killed while fits queue and run.

Real processes throughout: the stack supervises its servers as it does its workers, and every
job submitted before the fault finishes (a running one may be redone).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
import pytest

from app.core.waiting import wait_until
from app.local.servers import free_port
from app.local.stack import EmbeddedStack

pytestmark = pytest.mark.slow
FITS = 4
# Enough work per fit (a few seconds on one core) that some run and some queue at the fault.
ROWS, FEATURES, MAX_ITER = 30_000, 20, 150


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    embedded = EmbeddedStack(
        data_dir=tmp_path_factory.mktemp("faults"),
        port=free_port(),
        env={"TABJOB_RETRY_MIN_BACKOFF_S": "0.5", "TABJOB_RETRY_MAX_BACKOFF_S": "2", "TABJOB_MAX_RETRIES": "5"},
    )
    supervisor = threading.Thread(target=embedded.run_forever, daemon=True)
    try:
        embedded.start()
        embedded.wait_for_workers()
        supervisor.start()
        yield embedded
    finally:
        embedded.stopping.set()
        if supervisor.is_alive():
            supervisor.join(120)  # run_forever stops everything on its way out
        else:
            embedded.stop()


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(ROWS, FEATURES)), columns=[f"x{i}" for i in range(FEATURES)])
    frame["y"] = (frame["x0"] + rng.normal(scale=0.5, size=ROWS) > 0).astype(int)
    path = tmp_path_factory.mktemp("data") / "train.parquet"
    frame.to_parquet(path, index=False)
    return path


def submit_fits(api: httpx.Client, path: Path, tag: int) -> list[str]:
    """Upload ``path`` and submit FITS distinct fits of it (distinct seeds: no deduplication)."""
    created = api.post("/v1/datasets", json={"name": path.name})
    assert created.status_code == 201, created.text
    assert httpx.put(created.json()["upload_url"], content=path.read_bytes()).status_code == 200
    ids = []
    for seed in range(FITS):
        params = {"max_iter": MAX_ITER, "early_stopping": False, "random_state": tag * 100 + seed}
        job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": created.json()["id"], "params": params})
        assert job.status_code == 202, job.text
        ids.append(job.json()["id"])
    return ids


def statuses(api: httpx.Client, ids: list[str]) -> dict[str, Any]:
    return {job_id: api.get(f"/v1/jobs/{job_id}").json()["status"] for job_id in ids}


def kill_server_while_fits_run(stack: EmbeddedStack, path: Path, server: str, tag: int) -> None:
    """Given FITS fits queued and running, when ``server`` is SIGKILLed, then the stack restarts it
    on its port and data, reaps the dead one, the API and workers reconnect without a restart,
    and every fit finishes; /readyz is 200 again."""
    with httpx.Client(base_url=stack.url, timeout=10) as api:
        ids = submit_fits(api, path, tag)
        wait_until(
            lambda: "started" in statuses(api, ids).values(), what="a fit to start", timeout_s=120, interval_s=0.05
        )
        target = stack.valkey if server == "valkey" else stack.s3
        assert target is not None and target.process is not None
        victim = target.process
        ours = {child.name: child.process.pid for child in stack.children if child.process is not None}
        port = target.port if server == "valkey" else target.s3_port  # type: ignore[union-attr]

        victim.send_signal(signal.SIGKILL)

        wait_until(
            lambda: target.process is not victim and target.process.poll() is None,
            what=f"{server} to be restarted",
            timeout_s=60,
        )
        assert victim.poll() is not None  # collected by the supervisor: no zombie left
        assert not psutil.pid_exists(victim.pid) or psutil.Process(victim.pid).status() != psutil.STATUS_ZOMBIE
        assert (target.port if server == "valkey" else target.s3_port) == port  # type: ignore[union-attr]

        def all_ended() -> dict[str, Any] | None:
            now = statuses(api, ids)
            return now if all(s in ("finished", "failed", "canceled") for s in now.values()) else None

        ended = wait_until(
            all_ended, what="every fit to end", timeout_s=300, interval_s=0.25, ignore=(httpx.HTTPError, KeyError)
        )
        assert set(ended.values()) == {"finished"}, {i: api.get(f"/v1/jobs/{i}").json() for i in ids}
        # The API's clients and the workers' consumers reconnected in place: none was restarted.
        assert {c.name: c.process.pid for c in stack.children if c.process is not None} == ours
        wait_until(
            lambda: api.get("/readyz").status_code == 200,
            what="/readyz to answer 200",
            timeout_s=60,
            ignore=(httpx.HTTPError,),
        )


def test_valkey_killed_while_fits_run_is_restarted_and_every_fit_finishes(stack, dataset_file):
    kill_server_while_fits_run(stack, dataset_file, "valkey", tag=1)


def test_seaweedfs_killed_while_fits_run_is_restarted_and_every_fit_finishes(stack, dataset_file):
    kill_server_while_fits_run(stack, dataset_file, "seaweedfs", tag=2)
