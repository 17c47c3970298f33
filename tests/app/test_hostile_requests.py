"""A careless or hostile client's requests: an Idempotency-Key reused for another body, a model
record without its digest, and upload URLs that outlive their key's revocation."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from jobs_testing import put_file, upload

from app.api.main import create_app
from app.jobs.pinned import prepare
from app.state import KEYS
from ml.errors import DataProblem


def test_an_idempotency_key_reused_with_another_body_is_refused(api, seed_files):
    dataset = upload(api, seed_files["train"])
    body = {"kind": "fit", "dataset_id": dataset, "lane": "large", "params": {"max_iter": 3}}
    first = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "reuse-1"})
    assert first.status_code == 202, first.text
    try:
        # The same request again is a replay of the same job.
        replay = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "reuse-1"})
        assert replay.json()["id"] == first.json()["id"] and replay.headers["idempotent-replayed"] == "true"
        # Another body under the same key is refused, whatever differs.
        for other in (
            {**body, "params": {"max_iter": 4}},
            {**body, "lane": "small"},
            {"kind": "fit", "dataset_id": upload(api, seed_files["train"]), "lane": "large", "params": {"max_iter": 3}},
        ):
            refused = api.post("/v1/jobs", json=other, headers={"Idempotency-Key": "reuse-1"})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["code"] == "job.idempotency_key_reused"
    finally:
        api.post(f"/v1/jobs/{first.json()['id']}/cancel")


def test_a_model_record_without_its_digest_is_never_used(api, broker_db, seed_files):
    # Given a finished fit whose record lost its digest
    dataset = upload(api, seed_files["train"])
    model = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large"}).json()["id"]
    api.post(f"/v1/jobs/{model}/cancel")
    result = {"model_sha256": None, "features": {"columns": {"col_0": "numeric"}}}
    broker_db.hset(KEYS.job(model), mapping={"status": '"finished"', "result": json.dumps(result)})
    # Then a predict with it is refused at submission,
    refused = api.post("/v1/jobs", json={"kind": "predict", "dataset_id": dataset, "model_id": model})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "model.tampered", refused.text
    # and the job process refuses a predict without a digest whatever asked for it.
    with pytest.raises(DataProblem) as no_digest:
        prepare("predict", {"data_url": "http://store/x", "model_url": "http://store/m", "result_url": "r"})
    assert no_digest.value.code == "model.tampered"


def test_datasets_of_a_revoked_key_are_refused_while_its_upload_urls_lived(settings, new_tenant, seed_files):
    from app.core.auth import ApiKeys
    from app.jobs.broker import redis_client

    keys = ApiKeys(client=redis_client(settings, decode=True))
    tenant, leaked = new_tenant()
    current, _ = keys.create(tenant, "current")
    with (
        TestClient(create_app(settings), headers={"authorization": f"Bearer {leaked}"}) as with_leaked,
        TestClient(create_app(settings), headers={"authorization": f"Bearer {current}"}) as with_current,
    ):
        # Given a dataset created with a key that then leaks and is revoked
        created = with_leaked.post("/v1/datasets", json={"name": "before-revocation"}).json()
        kept = upload(with_current, seed_files["train"])  # one created with the current key
        assert keys.revoke(keys.key_id_of(leaked))
        # When whoever holds its still-valid upload URL writes to it
        put_file(created["upload_url"], seed_files["train"])
        # Then the tenant's current key cannot submit it: its contents cannot be trusted.
        refused = with_current.post("/v1/jobs", json={"kind": "fit", "dataset_id": created["id"], "lane": "large"})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "dataset.key_revoked"
        accepted = with_current.post("/v1/jobs", json={"kind": "fit", "dataset_id": kept, "lane": "large"})
        assert accepted.status_code == 202, accepted.text
        with_current.post(f"/v1/jobs/{accepted.json()['id']}/cancel")
        assert with_leaked.get("/v1/jobs").status_code == 401
