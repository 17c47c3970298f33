"""Retention: datasets, model files and predictions older than the setting are swept, with what
refers to them; the history (manifests) stays; one worker sweeps at a time."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from jobs_testing import upload

from app.api.main import create_app
from app.jobs.checkpoints import checkpoint_key
from app.retention import DAY_S, LOCK, sweep, sweep_if_due
from app.storage import dataset_key, manifest_key, model_key, result_key


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


def test_one_worker_sweeps_per_interval_and_only_when_retention_is_set(tenant_api, base_env, settings_from):
    _, api = tenant_api
    svc = api.app.state.services
    assert sweep_if_due(svc.settings, svc.state, svc.store, "w-1") is None  # unset: keep everything
    settings = settings_from({**base_env, "TABJOB_DATA_RETENTION_DAYS": "30"})
    svc.state.conn.r.delete(svc.state.keys.claim(LOCK))
    assert sweep_if_due(settings, svc.state, svc.store, "w-1") is not None
    assert sweep_if_due(settings, svc.state, svc.store, "w-2") is None  # swept within the hour
