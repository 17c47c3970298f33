"""Retention: datasets, model files and predictions older than the setting are swept, with what
refers to them; the history (manifests) stays; one worker sweeps at a time."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from jobs_testing import upload

from app.api.main import create_app
from app.core.storage import dataset_key, dataset_part_key, manifest_key, model_key, result_key
from app.jobs.checkpoints import checkpoint_key
from app.tenancy.retention import DAY_S, LOCK, sweep, sweep_if_due, sweep_never_uploaded


@pytest.fixture
def tenant_api(settings, new_tenant):
    tenant, key = new_tenant()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as client:
        yield tenant, client


def test_the_sweep_deletes_old_data_and_what_refers_to_it(tenant_api, seed_files):
    tenant, api = tenant_api
    svc = api.app.state.services
    dataset_id = upload(api, seed_files["train"])
    left = checkpoint_key(tenant, "job_old")  # a fit's checkpoint its worker never deleted
    for key in (model_key(tenant, "job_old"), result_key(tenant, "job_old"), manifest_key(tenant, "job_old"), left):
        svc.store.put_json(key, {"written": "now"})
    mine = f"tenants/{tenant}/"

    assert sweep(svc.state, svc.store, older_than_s=DAY_S, prefix=mine).datasets == 0  # nothing a day old yet
    assert svc.store.stat(dataset_key(tenant, dataset_id)) is not None

    swept = sweep(svc.state, svc.store, older_than_s=DAY_S, now=time.time() + 2 * DAY_S, prefix=mine)
    assert (swept.datasets, swept.models, swept.results, swept.checkpoints) == (1, 1, 1, 1)
    assert svc.store.stat(left) is None
    assert svc.store.stat(dataset_key(tenant, dataset_id)) is None
    assert api.get(f"/v1/datasets/{dataset_id}").json()["error"]["code"] == "dataset.not_found"
    assert svc.store.stat(model_key(tenant, "job_old")) is None
    assert svc.store.stat(result_key(tenant, "job_old")) is None
    assert svc.store.stat(manifest_key(tenant, "job_old")) is not None  # the history stays


def test_one_worker_sweeps_per_interval_and_old_data_only_when_retention_is_set(tenant_api, base_env, settings_from):
    tenant, api = tenant_api
    svc = api.app.state.services
    old = svc.state.datasets.create(tenant, upload_expires_at=time.time() - 2 * 3600)  # its URL expired 2 h ago
    svc.state.conn.r.delete(svc.state.keys.claim(LOCK))
    swept = sweep_if_due(svc.settings, svc.state, svc.store, "w-1")  # retention unset: no old data goes...
    assert swept is not None and (swept.datasets, swept.models, swept.results) == (0, 0, 0)
    assert swept.never_uploaded >= 1 and not svc.state.datasets.exists(old.id)  # ...but never-uploaded datasets do
    assert sweep_if_due(svc.settings, svc.state, svc.store, "w-2") is None  # swept within the hour
    settings = settings_from({**base_env, "TABJOB_DATA_RETENTION_DAYS": "30"})
    svc.state.conn.r.delete(svc.state.keys.claim(LOCK))
    assert sweep_if_due(settings, svc.state, svc.store, "w-1") is not None
    assert sweep_if_due(settings, svc.state, svc.store, "w-2") is None


def test_datasets_never_uploaded_go_after_their_url_expired_and_the_grace(
    tenant_api, seed_files, base_env, settings_from
):
    tenant, api = tenant_api
    svc = api.app.state.services
    grace_s = settings_from({**base_env, "TABJOB_DATASET_UPLOAD_GRACE_S": "5"}).dataset_upload_grace_s
    # Given a dataset never uploaded, one uploaded, and one in two parts of which one arrived
    never = api.post("/v1/datasets", json={"name": "never.parquet"}).json()["id"]
    kept = upload(api, seed_files["train"])
    halfway = api.post("/v1/datasets", json={"name": "halves", "parts": 2}).json()["id"]
    svc.store.put_json(dataset_part_key(tenant, halfway, 0), {"part": 0})
    assert used(api, "datasets") == 3 and used(api, "concurrent_uploads") == 1  # parts are not counted there
    # When the sweep runs while the URLs may still be used (or within the grace): nothing goes
    expiries = [svc.state.datasets.get(tenant, d).upload_expires_at for d in (never, halfway)]
    first, expired = min(expiries), max(expiries)
    sweep_never_uploaded(svc.state, svc.store, grace_s=grace_s, now=first + grace_s - 1)  # (older tests' may go)
    assert all(api.get(f"/v1/datasets/{d}").status_code == 200 for d in (never, kept, halfway))
    # When it runs after the grace: the two never (completely) uploaded go, records and bytes
    assert sweep_never_uploaded(svc.state, svc.store, grace_s=grace_s, now=expired + grace_s + 1) >= 2
    for gone in (never, halfway):
        assert api.get(f"/v1/datasets/{gone}").json()["error"]["code"] == "dataset.not_found"
    assert [d["id"] for d in api.get("/v1/datasets").json()["items"]] == [kept]
    listed = svc.store.client.list_objects(svc.store.bucket, prefix=f"tenants/{tenant}/datasets/", recursive=True)
    assert [o.object_name for o in listed] == [dataset_key(tenant, kept)]
    # Then they count against nothing, and a later sweep has nothing left to look at
    assert used(api, "datasets") == 1 and used(api, "concurrent_uploads") == 0
    left = svc.state.datasets.upload_expired(expired + grace_s + 1, limit=10_000)
    assert all(owner != tenant for owner, _ in left)


def used(api, quota: str) -> int:
    return next(q["used"] for q in api.get("/v1/usage").json()["quotas"] if q["name"] == quota)
