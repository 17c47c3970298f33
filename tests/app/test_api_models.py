"""Models and data a user can manage: a fit's validation score, duration and size; list, show,
export and delete models; delete datasets (and what that does to jobs using them); a named target."""

from __future__ import annotations

import io

import cloudpickle
import httpx
import pandas as pd
from jobs_testing import upload, wait_job


def fit(api, dataset_id: str, **body) -> dict:
    submitted = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset_id, **body})
    assert submitted.status_code == 202, submitted.text
    return submitted.json()


def test_a_fit_reports_its_validation_score_duration_and_size(api, small_worker, seed_files):
    train = upload(api, seed_files["train"])
    held_out = wait_job(api, fit(api, train, params={"max_iter": 30, "early_stopping": True})["id"])
    result = held_out["result"]
    assert held_out["status"] == "finished" and result["target"] == "y"
    assert result["validation"]["split"] == "early_stopping" and result["validation"]["metric"] == "accuracy"
    assert result["validation"]["rows"] == 300 and 0.5 < result["validation"]["score"] <= 1
    assert result["duration_s"] > 0 and result["model_bytes"] > 0

    plain = wait_job(api, fit(api, train, params={"max_iter": 30})["id"])["result"]
    assert plain["validation"]["score"] is None and plain["validation"]["split"] == "none"
    assert "early_stopping=true" in plain["validation"]["note"]


def test_models_are_listed_shown_exported_with_their_schema_and_deleted(api, small_worker, seed_files):
    model = wait_job(api, fit(api, upload(api, seed_files["train"]), params={"max_iter": 20})["id"])
    listed = api.get("/v1/models").json()
    assert [m["id"] for m in listed["items"]] == [model["id"]] and listed["next_cursor"] is None
    shown = api.get(f"/v1/models/{model['id']}").json()
    assert shown["target"] == "y" and shown["classes"] == [0, 1] and shown["size_bytes"] > 0
    assert [f["name"] for f in shown["features"]][:2] == ["col_0", "col_1"]
    assert shown["features"][0]["kind"] == "numeric"

    export = api.get(f"/v1/models/{model['id']}/export").json()
    assert export["filename"] == f"{model['id']}.pkl" and "cloudpickle" in export["format"]
    assert export["schema"]["features"] == shown["features"] and export["schema"]["target"] == "y"
    bundle = cloudpickle.loads(httpx.get(export["url"]).content)
    assert bundle.target == "y" and list(bundle.spec.columns) == [f["name"] for f in shown["features"]]

    deleted = api.delete(f"/v1/models/{model['id']}")
    assert deleted.status_code == 204
    for path in (f"/v1/models/{model['id']}", f"/v1/models/{model['id']}/export"):
        gone = api.get(path)
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "model.deleted"
    assert api.get("/v1/models").json()["items"] == []
    predict = api.post(
        "/v1/jobs", json={"kind": "predict", "dataset_id": upload(api, seed_files["test"]), "model_id": model["id"]}
    )
    assert predict.status_code == 410 and predict.json()["error"]["code"] == "model.deleted"
    history = api.get(f"/v1/jobs/{model['id']}").json()
    assert history["status"] == "finished" and history["result"]["model_deleted_at"]
    assert httpx.get(export["url"]).status_code == 404  # the file is gone from the store


def test_a_predict_job_or_an_unknown_id_is_not_a_model(api):
    assert api.get("/v1/models/job_none").json()["error"]["code"] == "job.not_found"
    assert api.delete("/v1/models/job_none").status_code == 404


def test_deleting_a_dataset_removes_it_and_fails_the_jobs_still_queued_on_it(api, workers, seed_files):
    dataset = upload(api, seed_files["train"])
    queued = fit(api, dataset, lane="large")  # no gpu worker yet: it waits
    assert api.delete(f"/v1/datasets/{dataset}").status_code == 204
    assert api.get(f"/v1/datasets/{dataset}").json()["error"]["code"] == "dataset.not_found"
    assert dataset not in [d["id"] for d in api.get("/v1/datasets").json()["items"]]
    assert api.delete(f"/v1/datasets/{dataset}").status_code == 404
    workers.start("large")
    ended = wait_job(api, queued["id"])
    assert ended["status"] == "failed" and ended["error"]["code"] == "dataset.deleted"


def test_a_predict_queued_with_a_model_deleted_since_fails_with_model_deleted(api, small_worker, workers, seed_files):
    model = wait_job(api, fit(api, upload(api, seed_files["train"]), params={"max_iter": 10})["id"])
    body = {"kind": "predict", "dataset_id": upload(api, seed_files["test"]), "model_id": model["id"], "lane": "large"}
    queued = api.post("/v1/jobs", json=body).json()
    assert api.delete(f"/v1/models/{model['id']}").status_code == 204
    workers.start("large")
    ended = wait_job(api, queued["id"])
    assert ended["status"] == "failed" and ended["error"]["code"] == "model.deleted"


def test_a_fit_may_name_its_target_column(api, small_worker, seed_files, tmp_path):
    frame = pd.read_parquet(seed_files["train"]).rename(columns={"y": "churned"})
    frame.to_parquet(tmp_path / "churn.parquet", index=False)
    dataset = upload(api, tmp_path / "churn.parquet")

    refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "dataset.missing_target"
    wrong = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "target": "nope"})
    assert wrong.json()["error"]["code"] == "dataset.missing_target" and "'nope'" in wrong.json()["error"]["message"]

    model = wait_job(api, fit(api, dataset, target="churned", params={"max_iter": 20})["id"])
    assert model["status"] == "finished" and model["result"]["target"] == "churned"
    assert "churned" not in model["result"]["features"]["columns"]
    assert api.get(f"/v1/models/{model['id']}").json()["target"] == "churned"
    # A labelled hold-out set may keep its target column for the predict: it is ignored.
    pd.read_parquet(seed_files["test"]).assign(churned=0).to_parquet(tmp_path / "holdout.parquet", index=False)
    body = {"kind": "predict", "dataset_id": upload(api, tmp_path / "holdout.parquet"), "model_id": model["id"]}
    pred = wait_job(api, api.post("/v1/jobs", json=body).json()["id"])
    assert pred["status"] == "finished"
    frame = pd.read_parquet(io.BytesIO(httpx.get(api.get(f"/v1/jobs/{pred['id']}/result").json()["url"]).content))
    assert len(frame) == 1000
    with_target = api.post("/v1/jobs", json={**body, "target": "churned"})
    assert with_target.status_code == 422 and with_target.json()["error"]["code"] == "job.unexpected_target"


def test_a_named_target_is_checked_for_two_step_families_too(api, seed_files):
    # xgboost takes any target name (tests/app/test_api_fit_report.py fits one); a missing one is named.
    body = {"kind": "fit", "dataset_id": upload(api, seed_files["train"]), "model": "xgboost", "target": "label"}
    refused = api.post("/v1/jobs", json=body)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "dataset.missing_target"
    assert "'label'" in refused.json()["error"]["message"]
