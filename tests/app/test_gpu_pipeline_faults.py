"""A two-step job under cancel and a lost worker, in each step, gated deterministically: the job
process of the lane under test holds its job (TABJOB_TEST_HOLD_JOBS) until the test acts."""

from __future__ import annotations

import signal

from jobs_testing import upload, wait_for, wait_job

from app.core.domain import JobStatus

MODEL_STEP_ENV = {"TABJOB_ML_DEVICE": "cpu"}


def fit_xgboost(api, dataset: str) -> dict:
    response = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "model": "xgboost", "lane": "large"})
    assert response.status_code == 202, response.text
    return response.json()


def step_statuses(job: dict) -> list[str]:
    return [s["status"] for s in job["steps"]]


def test_cancel_during_prepare_stops_the_job(api, workers, seed_files, tmp_path):
    workers.start("large", TABJOB_TEST_HOLD_JOBS=str(tmp_path))
    job = fit_xgboost(api, upload(api, seed_files["train"]))
    wait_for(lambda: list(tmp_path.glob("*.running")), 120)  # the prepare step surely runs
    assert api.get(f"/v1/jobs/{job['id']}").json()["steps"][0]["status"] == "started"

    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    ended = wait_job(api, job["id"], timeout_s=30)
    assert ended["status"] == "canceled"
    assert step_statuses(ended) == ["canceled", "canceled"]
    assert ended["steps"][0]["ended_at"] is not None and ended["steps"][1]["started_at"] is None


def test_cancel_between_the_steps_ends_the_job_at_once(api, workers, seed_files):
    # Given a job prepared on a CPU lane, waiting for a gpu worker (none runs)
    workers.start("large")
    job = fit_xgboost(api, upload(api, seed_files["train"]))
    waiting = wait_for(lambda: (j := api.get(f"/v1/jobs/{job['id']}").json())["lane"] == "gpu" and j, 120)
    assert waiting["status"] == "queued" and step_statuses(waiting) == ["finished", "queued"]
    state = api.app.state.services.state
    assert state.lanes.tenant_load(state.jobs.get(job["id"]).tenant) == {"queued": 1, "running": 0}

    ended = api.post(f"/v1/jobs/{job['id']}/cancel").json()
    assert ended["status"] == "canceled" and step_statuses(ended) == ["finished", "canceled"]


def test_cancel_during_the_model_step_stops_it_and_frees_the_gpu_worker(api, workers, seed_files, tmp_path):
    workers.start("large")
    workers.start("gpu", TABJOB_TEST_HOLD_JOBS=str(tmp_path), **MODEL_STEP_ENV)
    dataset = upload(api, seed_files["train"])
    job = fit_xgboost(api, dataset)
    wait_for(lambda: list(tmp_path.glob("*.running")), 120)  # the model step surely runs
    assert step_statuses(api.get(f"/v1/jobs/{job['id']}").json()) == ["finished", "started"]

    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    ended = wait_job(api, job["id"], timeout_s=30)
    assert ended["status"] == "canceled" and step_statuses(ended) == ["finished", "canceled"]

    # The gpu worker takes the next model step (its prepared matrix reused) once released.
    (tmp_path / "release").touch()
    other = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "model": "xgboost",
                                       "params": {"n_estimators": 5}})  # fmt: skip
    # (the reply reads the job back once queued: the released gpu worker may have started it)
    assert step_statuses(other.json())[0] == "skipped"
    assert step_statuses(other.json())[1] in ("queued", "started", "finished")
    assert wait_job(api, other.json()["id"])["status"] == "finished"


def test_a_model_step_whose_worker_dies_is_redone_and_the_job_finishes(api, workers, seed_files, tmp_path):
    state = api.app.state.services.state
    workers.start("large")
    doomed = workers.start("gpu", TABJOB_TEST_HOLD_JOBS=str(tmp_path), **MODEL_STEP_ENV)
    job = fit_xgboost(api, upload(api, seed_files["train"]))
    wait_for(lambda: list(tmp_path.glob("*.running")), 120)

    # When the gpu worker dies without warning in the middle of the model step
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert state.jobs.get(job["id"]).status == JobStatus.STARTED
    (tmp_path / "release").touch()
    # Then a replacement gpu worker (as KEDA would start) gets the step back, and only that step.
    workers.start("gpu", **MODEL_STEP_ENV)
    ended = wait_job(api, job["id"], timeout_s=180)

    assert ended["status"] == "finished", ended
    prepare, model = ended["steps"]
    assert (prepare["status"], prepare["attempts"]) == ("finished", 1)
    assert (model["status"], model["attempts"]) == ("finished", 2)
    starts = [e.get("step") for e in api.get(f"/v1/jobs/{job['id']}/events").json()["items"] if e["type"] == "started"]
    assert starts == ["prepare", "model", "model"]
    assert state.lanes.tenant_load(state.jobs.get(job["id"]).tenant)["running"] == 0
