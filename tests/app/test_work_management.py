"""Work management with real workers: cancellation, time limits, retries, deduplication,
idempotency, lanes and limits."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from fastapi.testclient import TestClient
from jobs_testing import upload, wait_for, wait_job

from app.api.main import create_app

# Enough boosting rounds on enough rows that a fit runs for minutes unless stopped.
ENDLESS = {"max_iter": 10_000, "early_stopping": False, "max_leaf_nodes": 255}


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(100_000, 10)), columns=[f"f{i}" for i in range(10)])
    frame["y"] = (frame.f0 + rng.normal(size=len(frame)) > 0).astype(int)
    path = tmp_path_factory.mktemp("big") / "big.parquet"
    frame.to_parquet(path)
    return path


def job_process(worker_pid: int) -> psutil.Process:
    """The job process of a worker: forked by the worker's forkserver, a grandchild."""
    worker = psutil.Process(worker_pid)
    found = [p for p in worker.children(recursive=True) if p.ppid() != worker_pid]
    assert len(found) == 1, found
    return found[0]


def training(api, job_id: str) -> bool:
    return api.get(f"/v1/jobs/{job_id}").json()["phase"] == "training"


def test_cancel_stops_a_running_fit_and_frees_its_worker(api, workers, big_file, seed_files):
    worker = workers.start("large")
    dataset = upload(api, big_file)
    job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": ENDLESS, "lane": "large"}).json()
    wait_for(lambda: training(api, job["id"]), 120)
    busy_pid = job_process(worker.pid).pid

    # When the running fit is canceled
    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    ended = wait_job(api, job["id"], timeout_s=10)
    # Then it ends canceled within 10 s (wait_job's bound), its job process is gone, and the worker takes new work
    assert ended["status"] == "canceled"
    assert not psutil.pid_exists(busy_pid) or psutil.Process(busy_pid).status() == psutil.STATUS_ZOMBIE
    toy = upload(api, seed_files["train"])
    nxt = api.post(
        "/v1/jobs", json={"kind": "fit", "dataset_id": toy, "lane": "large", "params": {"max_iter": 5}}
    ).json()
    assert wait_job(api, nxt["id"])["status"] == "finished"


def test_a_job_past_its_lane_time_limit_fails_with_job_timeout(api, workers, big_file):
    # The worker's lane limit applies, whatever the API recorded at submission.
    workers.start("large", TABJOB_TIME_LIMIT_LARGE_S="2")
    dataset = upload(api, big_file)
    job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": ENDLESS, "lane": "large"}).json()
    assert job["lane"] == "large"
    ended = wait_job(api, job["id"], timeout_s=120)
    assert ended["status"] == "failed"
    assert ended["error"]["code"] == "job.timeout"
    assert "2 seconds" in ended["error"]["message"]
    assert ended["attempts"] == 1  # a timeout is not retried


def held_job_process(worker_pid: int, hold: Path) -> psutil.Process:
    """The worker's job process once it holds a job (``TABJOB_TEST_HOLD_JOBS``): the job is
    surely running when the test acts, however fast or slow the fit would be."""
    running = wait_for(lambda: sorted(hold.glob("*.running")), 120)
    process = job_process(worker_pid)
    assert [p.stem for p in running] == [str(process.pid)]
    return process


def test_a_lost_job_process_is_retried_and_counted(api, workers, seed_files, tmp_path):
    worker = workers.start("large", TABJOB_TEST_HOLD_JOBS=str(tmp_path))
    dataset = upload(api, seed_files["train"])
    job = api.post(
        "/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": {"max_iter": 5}, "lane": "large"}
    ).json()
    # When the job process dies while it runs the job
    held_job_process(worker.pid, tmp_path).send_signal(signal.SIGKILL)
    (tmp_path / "release").touch()
    # Then the job is retried on a fresh job process, and both attempts are counted
    ended = wait_job(api, job["id"], timeout_s=120)
    assert ended["status"] == "finished"
    assert ended["attempts"] == 2
    events = [e["type"] for e in api.get(f"/v1/jobs/{job['id']}/events").json()["items"]]
    assert "retrying" in events


def test_retries_are_bounded_and_the_final_error_blames_the_platform(api, workers, seed_files, tmp_path):
    worker = workers.start("large", TABJOB_MAX_RETRIES="0", TABJOB_TEST_HOLD_JOBS=str(tmp_path))
    dataset = upload(api, seed_files["train"])
    job = api.post(
        "/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": {"max_iter": 5}, "lane": "large"}
    ).json()
    held_job_process(worker.pid, tmp_path).send_signal(signal.SIGKILL)
    ended = wait_job(api, job["id"], timeout_s=60)
    (tmp_path / "release").touch()
    assert ended["status"] == "failed"
    assert ended["error"]["code"] == "platform.worker_lost"
    assert "platform's fault" in ended["error"]["message"]
    assert ended["attempts"] == 1


def test_identical_fits_are_trained_once(api, small_worker, seed_files, tmp_path):
    first = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, seed_files["train"])}).json()
    # The same bytes uploaded again, and the same parameters: the existing model is returned.
    again = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, seed_files["train"])}).json()
    assert again["id"] == first["id"] and again["deduplicated"] is True
    # Other parameters or other bytes train anew.
    other = api.post(
        "/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, seed_files["train"]), "params": {"max_iter": 7}}
    ).json()
    assert other["id"] != first["id"] and other["deduplicated"] is False
    # The same rows in another order are other bytes: a new training set, trained anew.
    shuffled = tmp_path / "train.parquet"
    pd.read_parquet(seed_files["train"]).sample(frac=1.0, random_state=3).to_parquet(shuffled)
    assert shuffled.read_bytes() != seed_files["train"].read_bytes()
    different = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, shuffled)}).json()
    assert different["id"] not in (first["id"], other["id"]) and different["deduplicated"] is False
    assert wait_job(api, first["id"])["status"] == "finished"
    events = [e["type"] for e in api.get(f"/v1/jobs/{first['id']}/events").json()["items"]]
    assert events.count("started") == 1
    assert wait_job(api, other["id"])["status"] == "finished"
    assert wait_job(api, different["id"])["status"] == "finished"


def test_idempotency_key_makes_retries_safe(api, seed_files):
    dataset = upload(api, seed_files["train"])
    body = {"kind": "fit", "dataset_id": dataset, "lane": "large", "params": {"max_iter": 3}}
    first = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "abc-1"})
    second = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "abc-1"})
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    api.post(f"/v1/jobs/{first.json()['id']}/cancel")


def test_a_retry_while_the_first_request_still_runs_is_told_to_wait(settings, new_tenant, seed_files):

    tenant, key = new_tenant()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        dataset = upload(api, seed_files["train"])
        # Given a first request with this key still between its checks and its answer
        claim = f"idem:{tenant}:{hashlib.sha256(b'slow-1').hexdigest()[:32]}"
        api.app.state.services.state.claims.remember(claim, "pending:job_first")
        body = {"kind": "fit", "dataset_id": dataset, "lane": "large"}
        retry = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "slow-1"})
        assert retry.status_code == 409 and retry.json()["error"]["code"] == "job.idempotency_in_progress"
        assert retry.headers["retry-after"] == "1"
        # A refused submission frees its key: the client's retry with it goes through.
        refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": "ds_nope"}, headers={"Idempotency-Key": "k2"})
        assert refused.status_code == 404
        again = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k2"})
        assert again.status_code == 202
        api.post(f"/v1/jobs/{again.json()['id']}/cancel")


def test_a_toy_job_overtakes_a_queue_of_large_ones(api, workers, small_worker, big_file, seed_files):
    workers.start("large")
    large = []
    for seed in range(3):
        dataset = upload(api, big_file)
        params = {**ENDLESS, "random_state": seed}
        large.append(
            api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": params, "lane": "large"}).json()
        )
    waiting = api.get(f"/v1/jobs/{large[-1]['id']}").json()
    assert waiting["status"] == "queued" and waiting["queue"]["lane"] == "large"
    assert waiting["queue"]["position"] >= 1 and "large" in waiting["queue"]["reason"]

    toy = api.post(
        "/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, seed_files["train"]), "params": {"max_iter": 9}}
    ).json()
    assert toy["lane"] == "small"
    assert wait_job(api, toy["id"], timeout_s=60)["status"] == "finished"
    assert api.get(f"/v1/jobs/{large[-1]['id']}").json()["status"] == "queued"
    for job in large:
        api.post(f"/v1/jobs/{job['id']}/cancel")
    for job in large:
        assert wait_job(api, job["id"], timeout_s=15)["status"] == "canceled"


def test_size_and_tenant_limits(base_env, new_tenant, seed_files, settings_from):
    settings = settings_from({**base_env, "TABJOB_MAX_DATASET_BYTES": "10000", "TABJOB_TENANT_MAX_QUEUED": "2"})
    _, key = new_tenant()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        too_big = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, seed_files["train"])})
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "dataset.too_large"
        assert "10,000" in too_big.json()["error"]["message"]

    settings = settings_from({**base_env, "TABJOB_TENANT_MAX_QUEUED": "2"})
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        dataset = upload(api, seed_files["train"])
        jobs = [
            api.post(
                "/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large", "params": {"max_iter": i + 1}}
            )
            for i in range(3)
        ]
        assert [r.status_code for r in jobs] == [202, 202, 429]
        assert jobs[2].json()["error"]["code"] == "job.too_many_queued"
        assert int(jobs[2].headers["retry-after"]) > 0
        api.post(f"/v1/jobs/{jobs[0].json()['id']}/cancel")
        # A canceled job frees its slot.
        assert (
            api.post(
                "/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large", "params": {"max_iter": 9}}
            ).status_code
            == 202
        )
        for job in api.get("/v1/jobs", params={"status": "queued"}).json()["items"]:
            api.post(f"/v1/jobs/{job['id']}/cancel")


def test_a_tenant_at_its_running_limit_waits_while_workers_are_free(api, workers, big_file):
    for _ in range(2):
        workers.start("large", TABJOB_TENANT_MAX_RUNNING="1")
    services = api.app.state.services  # the API shares the deployment's settings
    services.settings = services.settings.model_copy(update={"tenant_max_running": 1})
    dataset = upload(api, big_file)
    jobs = [
        api.post(
            "/v1/jobs",
            json={"kind": "fit", "dataset_id": dataset, "lane": "large", "params": {**ENDLESS, "random_state": i}},
        ).json()
        for i in range(2)
    ]
    wait_for(lambda: any(api.get(f"/v1/jobs/{j['id']}").json()["status"] == "started" for j in jobs), 60)
    running, waiting = sorted(
        (api.get(f"/v1/jobs/{j['id']}").json() for j in jobs), key=lambda j: j["status"] != "started"
    )
    # The second job waits although a worker is free, and says why.
    waited = wait_for(
        lambda: [e for e in api.get(f"/v1/jobs/{waiting['id']}/events").json()["items"] if e["type"] == "waiting"], 30
    )
    assert "1 job(s)" in waited[0]["message"]
    assert api.get(f"/v1/jobs/{waiting['id']}").json()["status"] == "queued"
    assert "most allowed" in api.get(f"/v1/jobs/{waiting['id']}").json()["queue"]["reason"]
    # When the running one ends, the waiting one starts.
    api.post(f"/v1/jobs/{running['id']}/cancel")
    wait_for(lambda: api.get(f"/v1/jobs/{waiting['id']}").json()["status"] == "started", 60)
    api.post(f"/v1/jobs/{waiting['id']}/cancel")
    assert wait_job(api, waiting["id"], timeout_s=20)["status"] == "canceled"
