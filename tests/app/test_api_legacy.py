"""The seed's API, as its existing clients call it, against real Valkey, SeaweedFS and a worker."""

from __future__ import annotations

import io

import httpx
import pandas as pd
from jobs_testing import put_file, wait_for

from app.core.domain import is_terminal


def legacy_wait(api: httpx.Client, job_id: str) -> dict:
    def ended() -> dict | None:
        body = api.get("/status", params={"id": job_id}).json()
        return body if is_terminal(body["status"]) else None

    return wait_for(ended, 120, 0.1)


def test_seed_workflow_through_legacy_routes(api, small_worker, seed_files):
    # Given the seed client's calls: upload the training set, fit, upload the test set, predict
    train = api.get("/upload").json()
    assert set(train) >= {"id", "url"}
    put_file(train["url"], seed_files["train"])
    fit = api.post("/fit", params={"id": train["id"]})
    assert fit.status_code == 200, fit.text
    model_id = fit.json()["id"]

    status = legacy_wait(api, model_id)
    assert status["status"] == "finished", status
    for field in ("enqueued_at", "started_at", "ended_at"):
        assert isinstance(status[field], float)
    assert status["enqueued_at"] <= status["started_at"] <= status["ended_at"]

    test = api.get("/upload").json()
    put_file(test["url"], seed_files["test"])
    pred = api.post("/predict", params={"dataset_id": test["id"], "model_id": model_id})
    assert pred.status_code == 200, pred.text
    prediction_id = pred.json()["id"]
    assert legacy_wait(api, prediction_id)["status"] == "finished"

    # When the client downloads the result through its presigned URL
    result = api.get("/result", params={"id": prediction_id})
    assert result.status_code == 200
    frame = pd.read_parquet(io.BytesIO(httpx.get(result.json()["url"]).content))

    # Then it is one column y, one row per test row, accurate on held-out data
    truth = pd.read_parquet(seed_files["truth"])["y"]
    assert list(frame.columns) == ["y"]
    assert len(frame) == len(truth)
    assert (frame["y"].to_numpy() == truth.to_numpy()).mean() > 0.8


def test_bad_files_are_refused_at_submission_naming_the_column(api, seed_files):
    no_y = api.get("/upload").json()
    put_file(no_y["url"], seed_files["train_without_y"])
    refused = api.post("/fit", params={"id": no_y["id"]})
    assert 400 <= refused.status_code < 500
    body = refused.json()
    assert body["error"]["code"] == "dataset.missing_target"
    assert "'y'" in body["error"]["message"] and "'y'" in body["detail"]


def test_predict_without_a_training_column_is_refused_naming_it(api, small_worker, seed_files):
    train = api.get("/upload").json()
    put_file(train["url"], seed_files["train"])
    model_id = api.post("/fit", params={"id": train["id"]}).json()["id"]
    assert legacy_wait(api, model_id)["status"] == "finished"
    bad = api.get("/upload").json()
    put_file(bad["url"], seed_files["test_without_col_0"])
    refused = api.post("/predict", params={"dataset_id": bad["id"], "model_id": model_id})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "dataset.missing_columns"
    assert "col_0" in refused.json()["error"]["message"]


def test_legacy_errors_are_json_4xx(api):
    cases = [
        ("GET", "/status", {"id": "job_missing"}, 404),
        ("GET", "/status", {}, 422),
        ("GET", "/result", {"id": "job_missing"}, 404),
        ("POST", "/fit", {"id": "ds_missing"}, 404),
        ("POST", "/fit", {}, 422),
        ("POST", "/predict", {"dataset_id": "ds_missing", "model_id": "job_missing"}, 404),
        ("POST", "/predict", {"dataset_id": "x"}, 422),
        ("GET", "/fit", {}, 405),
    ]
    for method, path, params, expected in cases:
        response = api.request(method, path, params=params)
        assert response.status_code == expected, (path, params, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]["code"]


def test_result_before_the_prediction_finished_is_a_clear_409(api, seed_files):
    # A fit sent to the gpu lane, where no worker runs here, stays queued.
    train = api.get("/upload").json()
    put_file(train["url"], seed_files["train"])
    model_id = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": train["id"], "lane": "large"}).json()["id"]
    response = api.get("/result", params={"id": model_id})
    assert response.status_code == 409
    test = api.get("/upload").json()
    put_file(test["url"], seed_files["test"])
    refused = api.post("/predict", params={"dataset_id": test["id"], "model_id": model_id})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "model.not_ready"
    assert api.post(f"/v1/jobs/{model_id}/cancel").json()["status"] == "canceled"


def test_fit_before_upload_is_409(api):
    dataset = api.get("/upload").json()
    response = api.post("/fit", params={"id": dataset["id"]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "dataset.not_uploaded"
