"""Long fits survive losing their worker (issue 22): SIGTERM mid-fit checkpoints and requeues the
job within the grace period; a worker SIGKILLed with its job process loses only the chunk in
progress. Either way the job resumes from its checkpoint (an event ``resumed`` with its
progress), finishes, and its checkpoint is deleted."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from jobs_testing import upload, wait_for, wait_job

from app.core.domain import WORKER_STOP_MARGIN_S, JobStatus
from app.jobs.checkpoints import checkpoint_key

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # long fits, on purpose
GRACE_S = 20.0
# Long enough on an idle machine for several chunks of at least a second (ml.checkpoint.MIN_CHUNK_S)
LONG_FIT = {"max_iter": 1500, "early_stopping": False}
# Checkpoints every half second (and every 10 % of rounds), so a test fit of seconds has several.
# Small work (no checkpoint) ends at 1,000 cells here, so these 20,000 x 20 fits count as long.
FAST_CHECKPOINTS = {
    "TABJOB_CHECKPOINT_INTERVAL_S": "0.5",
    "TABJOB_WORKER_SHUTDOWN_TIMEOUT_S": str(GRACE_S),
    "TABJOB_WORKER_SMALL_WORK_MAX_CELLS": "1000",
}


@pytest.fixture(scope="module")
def long_dataset(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    rows = 20_000
    frame = pd.DataFrame(rng.normal(size=(rows, 20)), columns=[f"c{i}" for i in range(20)])
    frame["y"] = (frame["c0"] + frame["c1"] * frame["c2"] + rng.normal(size=rows) > 0).astype(int)
    path = tmp_path_factory.mktemp("long") / "train.parquet"
    frame.to_parquet(path, index=False)
    return path


def events(api, job_id: str) -> list[dict]:
    return api.get(f"/v1/jobs/{job_id}/events").json()["items"]


def in_store(api, key: str) -> bool:
    return api.app.state.services.store.stat(key) is not None


def test_sigterm_mid_fit_checkpoints_requeues_and_the_job_resumes(api, workers, long_dataset):
    state = api.app.state.services.state
    # Given a fit well into its training on a worker
    first = workers.start("large", **FAST_CHECKPOINTS)
    dataset = upload(api, long_dataset)
    job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": LONG_FIT, "lane": "large"}).json()
    tenant = state.jobs.get(job["id"]).tenant
    wait_for(
        lambda: (state.jobs.get(job["id"]).progress or 0) >= 0.2 and state.jobs.get(job["id"]).phase == "training", 180
    )

    # When the worker gets SIGTERM (a scale-in, a node drain, a spot preemption)
    sent = time.monotonic()
    first.send_signal(signal.SIGTERM)
    first.wait(GRACE_S + WORKER_STOP_MARGIN_S)
    stopped_s = time.monotonic() - sent

    # Then it exited within its grace period, having saved a checkpoint and requeued the job
    assert stopped_s < GRACE_S
    assert in_store(api, checkpoint_key(tenant, job["id"]))
    record = state.jobs.get(job["id"])
    assert record.status == JobStatus.QUEUED
    retry = [e for e in events(api, job["id"]) if e["type"] == "retrying"]
    assert retry and "platform.worker_shutdown" in retry[-1]["message"] and "checkpoint" in retry[-1]["message"]

    # When another worker takes it
    workers.start("large", **FAST_CHECKPOINTS)
    ended = wait_job(api, job["id"], 300)

    # Then it resumed where it stopped (not from round 0), finished, and its checkpoint is gone
    assert ended["status"] == "finished", ended
    resumed = [e for e in events(api, job["id"]) if e["type"] == "resumed"]
    assert len(resumed) == 1 and 0 < resumed[0]["progress"] < 1
    assert "Resumed from a checkpoint at" in resumed[0]["message"]
    assert ended["result"]["iterations"] == LONG_FIT["max_iter"]
    wait_for(lambda: not in_store(api, checkpoint_key(tenant, job["id"])), 30)  # deleted right after the end


def test_a_worker_killed_with_its_job_process_resumes_from_the_checkpoint(api, workers, long_dataset):
    state = api.app.state.services.state
    # Given a fit that has saved a checkpoint
    first = workers.start("large", **FAST_CHECKPOINTS)
    dataset = upload(api, long_dataset)
    job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": LONG_FIT, "lane": "large"}).json()
    tenant = state.jobs.get(job["id"]).tenant
    wait_for(lambda: in_store(api, checkpoint_key(tenant, job["id"])), 180)

    # When the worker and its job process are SIGKILLed together
    processes = [psutil.Process(first.pid), *psutil.Process(first.pid).children(recursive=True)]
    for process in processes:
        process.send_signal(signal.SIGKILL)
    first.wait()

    # Then a new worker gets the job back, resumes, finishes and deletes the checkpoint
    workers.start("large", **FAST_CHECKPOINTS)
    ended = wait_job(api, job["id"], 300)
    assert ended["status"] == "finished", ended
    resumed = [e for e in events(api, job["id"]) if e["type"] == "resumed"]
    assert len(resumed) == 1 and 0 < resumed[0]["progress"] < 1
    wait_for(lambda: not in_store(api, checkpoint_key(tenant, job["id"])), 30)  # deleted right after the end
