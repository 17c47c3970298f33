"""Several consumers in one worker process (TABJOB_WORKER_CONSUMERS, TABJOB_WORKER_SMALL_WORK_CONSUMERS,
as `tabjob stack` runs its small lane): each is a worker of its lane of its own, runs its job in
its own job process at the same time as the others, and all those job processes are forked from
the process's one forkserver; the small-work consumer leaves big jobs to the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from jobs_testing import upload, wait_for, wait_job

from app.core.settings import Settings
from app.jobs.broker import redis_client
from app.state import State, lane_workers_key

# The seed's training file (4,000 rows x 21 columns) is over this; the toy (60 x 3) is under it.
SMALL_WORK_MAX_CELLS = 10_000


def _forkservers(worker: psutil.Process) -> list[psutil.Process]:
    return [p for p in worker.children() if "forkserver" in " ".join(p.cmdline())]


def test_consumers_of_one_process_run_jobs_side_by_side_from_one_forkserver(
    api, settings: Settings, workers, seed_files, tmp_path: Path
):
    # Given one large-lane worker process with two consumers and one reserved for small work,
    # each holding the job it starts until the test releases it
    process = workers.start(
        "large",
        TABJOB_WORKER_CONSUMERS="2",
        TABJOB_WORKER_THREADS="2",  # a core pool of 2: each big fit (3,000 rows) takes one
        TABJOB_WORKER_SMALL_WORK_CONSUMERS="1",
        TABJOB_WORKER_SMALL_WORK_MAX_CELLS=str(SMALL_WORK_MAX_CELLS),
        TABJOB_TEST_HOLD_JOBS=str(tmp_path),
    )
    client = redis_client(settings, decode=True)
    ids = wait_for(
        lambda: (
            (found := [w for w in client.zrange(lane_workers_key("large"), 0, -1) if w.endswith(f"-{process.pid}")])
            and len(found) == 3
            and found
        )
    )
    toy_file = tmp_path / "toy.parquet"
    pd.DataFrame({"a": np.arange(60.0), "b": np.arange(60.0) % 7, "y": np.arange(60) % 2}).to_parquet(toy_file)
    big_data, toy_data = upload(api, seed_files["train"]), upload(api, toy_file)

    def fit(dataset: str, seed: int) -> str:
        body = {"kind": "fit", "dataset_id": dataset, "lane": "large", "params": {"max_iter": 3, "random_state": seed}}
        response = api.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    # When three big fits are submitted, two of which start (the small-work consumer leaves
    # them), and then a toy
    big = [fit(big_data, seed) for seed in (1, 2, 3)]
    wait_for(lambda: len(list(tmp_path.glob("*.running"))) == 2, 120)
    toy = fit(toy_data, 4)

    # Then the toy starts beside them at once, each in a job process of its own forked from the
    # worker's one forkserver; the third big fit waits
    running = wait_for(lambda: (held := list(tmp_path.glob("*.running"))) and len(held) == 3 and held, 120)
    (forkserver,) = _forkservers(psutil.Process(process.pid))
    assert {int(p.stem) for p in running} <= {child.pid for child in forkserver.children()}
    state = State(client=client, retention_s=3600)
    jobs = {j: state.jobs.get(j) for j in (*big, toy)}
    started = [j for j, job in jobs.items() if job.status == "started"]
    assert toy in started and len(started) == 3, {j: job.status for j, job in jobs.items()}
    # by three different workers of this process
    assert sorted(jobs[j].worker for j in started) == sorted(ids)
    small_work_worker = jobs[toy].worker

    # And once released, every job finishes; the small-work consumer ran none of the big ones
    (tmp_path / "release").touch()
    ended = {j: wait_job(api, j, timeout_s=180) for j in (*big, toy)}
    assert all(job["status"] == "finished" for job in ended.values()), ended
    assert all(state.jobs.get(j).worker != small_work_worker for j in big)
