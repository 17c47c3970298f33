"""A worker killed with SIGKILL loses no job, and the running slot it held is freed."""

from __future__ import annotations

import signal

import psutil
from jobs_testing import upload, wait_for, wait_job

from app.core.domain import JobStatus


def test_a_worker_killed_mid_job_loses_no_job(api, workers, seed_files, tmp_path):
    # Given a worker whose job process holds the job (TABJOB_TEST_HOLD_JOBS): it surely runs
    first = workers.start("large", TABJOB_TEST_HOLD_JOBS=str(tmp_path))
    dataset = upload(api, seed_files["train"])
    params = {"max_iter": 20, "early_stopping": False}
    job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": params, "lane": "large"}).json()
    wait_for(lambda: list(tmp_path.glob("*.running")), 120)
    job_pids = [p.pid for p in psutil.Process(first.pid).children(recursive=True)]

    # When the worker dies without warning in the middle of the job
    first.send_signal(signal.SIGKILL)
    first.wait()
    # its job process goes with it (it watches a lifeline to the worker) ...
    wait_for(
        lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in job_pids),
        30,
    )
    # ... and a replacement worker, as Kubernetes or the stack would start, gets the message back.
    (tmp_path / "release").touch()
    workers.start("large")
    ended = wait_job(api, job["id"], timeout_s=180)

    assert ended["status"] == "finished", ended
    assert ended["attempts"] == 2
    starts = [e for e in api.get(f"/v1/jobs/{job['id']}/events").json()["items"] if e["type"] == "started"]
    assert len(starts) == 2
    # The model was written under the job's id, once per attempt to the same key.
    listed = api.app.state.services.store.client.list_objects("tabjob-test", prefix="tenants/", recursive=True)
    assert any(o.object_name.endswith(f"models/{job['id']}.pkl") for o in listed)


def test_a_worker_killed_right_after_starting_a_job_frees_the_tenants_running_slot(api, workers, seed_files, tmp_path):
    state = api.app.state.services.state
    # Given a tenant allowed one running job, and a worker that holds right after the start
    # transition (TABJOB_TEST_PAUSE_AFTER_START), before the job runs
    first = workers.start("large", TABJOB_TENANT_MAX_RUNNING="1", TABJOB_TEST_PAUSE_AFTER_START=str(tmp_path))
    dataset = upload(api, seed_files["train"])
    job = api.post(
        "/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": {"max_iter": 5}, "lane": "large"}
    ).json()
    wait_for((tmp_path / f"{job['id']}.started").exists, 120)
    tenant = state.jobs.get(job["id"]).tenant
    assert state.lanes.tenant_load(tenant)["running"] == 1

    # When that worker is killed at this worst moment
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert state.jobs.get(job["id"]).status == JobStatus.STARTED  # nobody runs it, yet it holds the slot

    # Then another worker's reaper (here on another lane, so it cannot take the job itself)
    # sees the dead worker's silence, frees the slot and puts the job back in the queue ...
    workers.start("gpu", TABJOB_TENANT_MAX_RUNNING="1")
    wait_for(lambda: state.jobs.get(job["id"]).status == JobStatus.QUEUED, 60)
    assert state.lanes.tenant_load(tenant)["running"] == 0
    events = [e["type"] for e in api.get(f"/v1/jobs/{job['id']}/events").json()["items"]]
    assert "worker_lost" in events
    # ... and the job still finishes once a worker of its lane runs (the broker redelivers it).
    workers.start("large", TABJOB_TENANT_MAX_RUNNING="1")
    ended = wait_job(api, job["id"], timeout_s=120)
    assert ended["status"] == "finished", ended
    assert state.lanes.tenant_load(tenant)["running"] == 0
