"""The /v1 API: datasets, jobs, events, cancel, results, health, and one error envelope."""

from __future__ import annotations

import httpx
import pandas as pd
from jobs_testing import put_file, upload, wait_job

from app.core.storage import manifest_key


def test_dataset_lifecycle_shows_state_size_rows_and_columns(api, seed_files):
    created = api.post("/v1/datasets", json={"name": "train"})
    assert created.status_code == 201
    body = created.json()
    assert body["state"] == "awaiting_upload" and body["upload_url"].startswith("http")
    assert api.get(f"/v1/datasets/{body['id']}").json()["state"] == "awaiting_upload"

    put_file(body["upload_url"], seed_files["train"])
    dataset = api.get(f"/v1/datasets/{body['id']}").json()
    assert dataset["state"] == "uploaded"
    assert dataset["size_bytes"] == seed_files["train"].stat().st_size
    assert dataset["rows"] == 3000
    names = [c["name"] for c in dataset["columns"]]
    assert names[:2] == ["col_0", "col_1"] and "y" in names
    assert {c["kind"] for c in dataset["columns"]} == {"numeric"}
    listed = api.get("/v1/datasets").json()["items"]
    assert body["id"] in [d["id"] for d in listed]


def test_a_file_that_is_not_parquet_is_shown_invalid_and_refused(api, tmp_path):
    bogus = tmp_path / "data.csv"
    bogus.write_text("a,b,y\n1,2,0\n")
    dataset_id = upload(api, bogus)
    assert api.get(f"/v1/datasets/{dataset_id}").json()["state"] == "invalid"
    refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset_id})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "dataset.not_parquet"
    assert refused.json()["error"]["hint"]


def test_fit_predict_download_events_and_listing(api, small_worker, seed_files):
    train = upload(api, seed_files["train"])
    submitted = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": train, "params": {"max_iter": 50}})
    assert submitted.status_code == 202, submitted.text
    fit = wait_job(api, submitted.json()["id"])
    assert fit["status"] == "finished", fit
    assert fit["attempts"] == 1 and fit["lane"] == "small"
    assert fit["result"]["classes"] == [0, 1] and fit["result"]["rows"] == 3000
    assert fit["result"]["params"]["max_iter"] == 50

    events = api.get(f"/v1/jobs/{fit['id']}/events").json()
    kinds = [e["type"] for e in events["items"]]
    assert kinds[0] == "queued" and "started" in kinds and kinds[-1] == "finished"
    phases = [e["phase"] for e in events["items"] if e["type"] == "progress"]
    assert "training" in phases
    later = api.get(f"/v1/jobs/{fit['id']}/events", params={"after": events["next_after"]}).json()
    assert later["items"] == []

    test = upload(api, seed_files["test"])
    pred = wait_job(
        api, api.post("/v1/jobs", json={"kind": "predict", "dataset_id": test, "model_id": fit["id"]}).json()["id"]
    )
    assert pred["status"] == "finished"
    link = api.get(f"/v1/jobs/{pred['id']}/result").json()
    assert link["url"].startswith("http") and link["expires_at"]
    import io

    frame = pd.read_parquet(io.BytesIO(httpx.get(link["url"]).content))
    assert list(frame.columns) == ["y", "proba_0", "proba_1"] and len(frame) == 1000  # the target's column, classes

    fits = api.get("/v1/jobs", params={"kind": "fit"}).json()["items"]
    assert [j["id"] for j in fits] == [fit["id"]]
    first = api.get("/v1/jobs", params={"limit": 1}).json()
    assert [j["id"] for j in first["items"]] == [pred["id"]] and first["next_cursor"]
    second = api.get("/v1/jobs", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [j["id"] for j in second["items"]] == [fit["id"]]
    assert api.get("/v1/jobs", params={"status": "failed"}).json()["items"] == []


def test_cancel_a_queued_job_means_it_never_starts(api, seed_files):
    train = upload(api, seed_files["train"])
    job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": train, "lane": "large"}).json()
    assert job["status"] == "queued" and job["queue"]["position"] >= 1
    canceled = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert canceled.status_code == 202 and canceled.json()["status"] == "canceled"
    again = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job.already_ended"
    # Ended in the API, it ends the one way jobs end: its manifest is in the store too.
    services = api.app.state.services
    manifest = manifest_key(services.state.jobs.get(job["id"]).tenant, job["id"])
    document = services.store.client.get_object(services.store.bucket, manifest).json()
    assert document["job"]["status"] == "canceled" and document["events"][-1]["type"] == "canceled"


def test_request_errors_use_the_envelope(api):
    cases = [
        ("POST", "/v1/jobs", {"kind": "train", "dataset_id": "x"}, 422, "request.invalid"),
        ("POST", "/v1/jobs", {"kind": "predict", "dataset_id": "x"}, 422, "job.missing_model"),
        ("POST", "/v1/jobs", {"kind": "fit", "dataset_id": "x", "params": {"max_iter": -1}}, 422, "request.invalid"),
        ("POST", "/v1/jobs", {"kind": "fit", "dataset_id": "x", "params": {"loss": "x"}}, 422, "request.invalid"),
        ("POST", "/v1/jobs", {"kind": "fit", "dataset_id": "ds_none"}, 404, "dataset.not_found"),
        ("GET", "/v1/jobs/job_none", None, 404, "job.not_found"),
        ("GET", "/v1/jobs/job_none/events", None, 404, "job.not_found"),
        ("GET", "/v1/jobs/job_none/result", None, 404, "job.not_found"),
        ("POST", "/v1/jobs/job_none/cancel", None, 404, "job.not_found"),
        ("GET", "/v1/datasets/ds_none", None, 404, "dataset.not_found"),
        ("GET", "/v1/nothing", None, 404, "route.not_found"),
        ("GET", "/v1/jobs", {"limit": 0}, 422, "request.invalid"),
    ]
    for method, path, payload, status, code in cases:
        kwargs = {"params": payload} if method == "GET" else {"json": payload}
        response = api.request(method, path, **kwargs)
        assert response.status_code == status, (path, payload, response.text)
        assert response.json()["error"]["code"] == code, (path, response.text)
        assert set(response.json()["error"]) >= {"code", "message", "hint"}


def test_health_and_readiness(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    assert "/v1/jobs" in api.get("/openapi.json").json()["paths"]


def test_a_follower_keeps_its_place_when_old_events_are_trimmed(api, seed_files):
    from app.state import MAX_EVENTS

    job = api.post(
        "/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, seed_files["train"]), "lane": "large"}
    ).json()
    state = api.app.state.services.state
    seen = api.get(f"/v1/jobs/{job['id']}/events").json()
    for i in range(MAX_EVENTS + 20):
        state.events.add(job["id"], "progress", f"step {i}")
    page = api.get(f"/v1/jobs/{job['id']}/events", params={"after": seen["next_after"]}).json()
    # The oldest were trimmed, but numbering goes on: the follower gets what is kept, in order.
    assert len(page["items"]) == MAX_EVENTS
    assert page["items"][-1]["message"] == f"step {MAX_EVENTS + 19}"
    assert page["next_after"] == MAX_EVENTS + 21
    api.post(f"/v1/jobs/{job['id']}/cancel")
    last = api.get(f"/v1/jobs/{job['id']}/events", params={"after": page["next_after"]}).json()
    assert [e["type"] for e in last["items"]] == ["canceled"]
