"""No existence oracle: a malformed id (another tenant's id with ``:events`` appended included) is
refused by its format before any broker call, with the answer an unknown id gets; the broker's
type errors are not a retryable 503; cursors must be finite."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.core.domain import new_id
from app.state import KEYS


def _malformed(job_id: str) -> list[str]:
    return [
        f"{job_id}:events",
        f"{job_id}:events_total",
        f"{job_id}x",
        job_id.upper(),
        "job_",
        "ds_x",
        "job_" + "0" * 19,
    ]


def _job_routes(job_id: str) -> list[tuple[str, str, dict]]:
    return [
        ("GET", f"/v1/jobs/{job_id}", {}),
        ("GET", f"/v1/jobs/{job_id}/events", {}),
        ("GET", f"/v1/jobs/{job_id}/result", {}),
        ("POST", f"/v1/jobs/{job_id}/cancel", {}),
        ("GET", "/status", {"params": {"id": job_id}}),
        ("GET", "/result", {"params": {"id": job_id}}),
    ]


def test_another_tenants_ids_with_suffixes_answer_like_unknown_ids(api, settings, new_tenant, seed_files):
    from jobs_testing import upload

    # Given a job of another tenant, waiting on a lane with no worker
    _, other_key = new_tenant()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {other_key}"}) as other:
        dataset = upload(other, seed_files["train"])
        theirs = other.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large"}).json()["id"]
        try:
            unknown = new_id("job")
            for job_id in [theirs, unknown, *_malformed(theirs)]:
                for method, path, kwargs in _job_routes(job_id):
                    answer = api.request(method, path, **kwargs)
                    # Then every form answers 404 job.not_found, as an unknown id does.
                    assert answer.status_code == 404, (path, answer.status_code, answer.text)
                    assert answer.json()["error"]["code"] == "job.not_found"
            for dataset_id in [f"{dataset}:x", "ds_" + "g" * 20]:
                answer = api.get(f"/v1/datasets/{dataset_id}")
                assert answer.status_code == 404 and answer.json()["error"]["code"] == "dataset.not_found"
        finally:
            other.post(f"/v1/jobs/{theirs}/cancel")


def test_malformed_ids_are_refused_before_any_broker_call(base_env, settings_from):
    # A broker nobody listens on: any call to it is a 503, so a 404 means no call was made.
    settings = settings_from({**base_env, "TABJOB_REDIS_URL": "redis://127.0.0.1:1", "TABJOB_AUTH_ENABLED": "false"})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as api:
        for method, path, kwargs in _job_routes("job_abc:events"):
            assert api.request(method, path, **kwargs).status_code == 404, path
        assert api.get("/v1/datasets/ds_1:x").status_code == 404
        assert api.post("/v1/jobs", json={"kind": "fit", "dataset_id": "ds_1:x"}).status_code == 404
        # A well-formed id does reach the broker, which is down.
        assert api.get(f"/v1/jobs/{new_id('job')}").status_code == 503


def test_a_broker_type_error_is_not_a_retryable_503(api, broker_db):
    job_id = new_id("job")
    broker_db.set(KEYS.job(job_id), "not a hash")  # a key of the wrong type
    try:
        answer = api.get(f"/status?id={job_id}")
        assert answer.status_code == 500, answer.text
        assert answer.json()["error"]["code"] == "internal"
    finally:
        broker_db.delete(KEYS.job(job_id))


@pytest.mark.parametrize("cursor", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_cursors_must_be_finite(api, cursor):
    for path in ("/v1/jobs", "/v1/datasets"):
        answer = api.get(path, params={"cursor": cursor})
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["code"] == "request.invalid"
