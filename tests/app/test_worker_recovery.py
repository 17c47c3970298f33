"""A worker killed with SIGKILL in the middle of a fit loses no job."""

from __future__ import annotations

import signal

import numpy as np
import pandas as pd
import psutil
from jobs_testing import upload, wait_for, wait_job


def test_a_worker_killed_mid_fit_loses_no_job(api, workers, tmp_path):
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(50_000, 10)), columns=[f"f{i}" for i in range(10)])
    frame["y"] = (frame.f1 - frame.f2 > 0).astype(int)
    frame.to_parquet(tmp_path / "train.parquet")
    first = workers.start("large")
    dataset = upload(api, tmp_path / "train.parquet")
    params = {"max_iter": 150, "early_stopping": False, "max_leaf_nodes": 63}
    job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": params, "lane": "large"}).json()
    wait_for(lambda: api.get(f"/v1/jobs/{job['id']}").json()["phase"] == "training", 120)
    job_pids = [p.pid for p in psutil.Process(first.pid).children(recursive=True)]

    # When the worker dies without warning in the middle of the fit
    first.send_signal(signal.SIGKILL)
    first.wait()
    # its job process goes with it (it watches a lifeline to the worker) ...
    wait_for(
        lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in job_pids),
        30,
    )
    # ... and a replacement worker, as Kubernetes or the stack would start, gets the message back.
    workers.start("large")
    ended = wait_job(api, job["id"], timeout_s=180)

    assert ended["status"] == "finished", ended
    assert ended["attempts"] == 2
    starts = [e for e in api.get(f"/v1/jobs/{job['id']}/events").json()["items"] if e["type"] == "started"]
    assert len(starts) == 2
    # The model was written under the job's id, once per attempt to the same key.
    listed = api.app.state.services.store.client.list_objects("tabjob-test", prefix="tenants/", recursive=True)
    assert any(o.object_name.endswith(f"models/{job['id']}.pkl") for o in listed)
