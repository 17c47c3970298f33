"""Per-tenant quotas and the gpu grant, against the real broker and store: each refusal names its
quota (429/413, ``Retry-After`` where time frees it), ``GET /v1/usage`` and ``tabjob usage`` show
them, an admin sets them per tenant, datasets never uploaded are forgotten, and a CPU family
never reaches the gpu lane."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from jobs_testing import upload

import tabjob
from app.api.main import create_app
from app.state import State
from app.tenancy import quotas


@pytest.fixture
def tenant_api(settings, new_tenant):
    """(tenant, client, state) for a fresh tenant on the real app."""
    tenant, key = new_tenant()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        yield tenant, api, api.app.state.services.state


def _error(response) -> str:
    return response.json()["error"]["code"]


def test_the_datasets_quota_refuses_with_its_name_and_usage_shows_it(tenant_api):
    tenant, api, state = tenant_api
    quotas.set_policy(state, tenant, datasets=2, concurrent_uploads=10)
    assert all(api.post("/v1/datasets", json={}).status_code == 201 for _ in range(2))
    refused = api.post("/v1/datasets", json={})
    assert refused.status_code == 429 and _error(refused) == "quota.datasets"
    assert "delete datasets" in refused.json()["error"]["message"]
    usage = tabjob.Client(str(api.base_url), http=api).usage()
    assert {q["name"]: (q["used"], q["limit"]) for q in usage["quotas"]}["datasets"] == (2, 2)


def test_uploads_waiting_are_capped_and_the_refusal_says_when_one_frees(tenant_api):
    tenant, api, state = tenant_api
    quotas.set_policy(state, tenant, concurrent_uploads=1)
    assert api.post("/v1/datasets", json={}).status_code == 201
    refused = api.post("/v1/datasets", json={})
    assert refused.status_code == 429 and _error(refused) == "quota.concurrent_uploads"
    assert 0 < int(refused.headers["retry-after"]) <= api.app.state.services.settings.presign_expiry_s + 1


def test_jobs_per_minute_are_capped_with_retry_after(tenant_api, seed_files):
    tenant, api, state = tenant_api
    quotas.set_policy(state, tenant, jobs_per_minute=1)
    dataset = upload(api, seed_files["train"])
    first = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large"})
    assert first.status_code == 202, first.text
    second = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large"})
    assert second.status_code == 429 and _error(second) == "quota.jobs_per_minute"
    assert 1 <= int(second.headers["retry-after"]) <= 60
    api.post(f"/v1/jobs/{first.json()['id']}/cancel")


def test_stored_bytes_bound_the_upload_form_and_refuse_submissions_over_them(tenant_api, seed_files):
    tenant, api, state = tenant_api
    size = seed_files["train"].stat().st_size
    quotas.set_policy(state, tenant, stored_bytes=size + 10)
    dataset = upload(api, seed_files["train"])  # by its PUT URL, which S3 cannot bound
    form = api.post("/v1/datasets", json={}).json()["upload_form"]
    assert form["max_bytes"] == 10  # what is left of the quota, not the size limit
    upload(api, seed_files["train"])  # a second copy through the PUT URL passes the quota
    refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset})
    assert refused.status_code == 413 and _error(refused) == "quota.stored_bytes"
    assert api.post("/v1/datasets", json={}).status_code == 413


def test_a_burst_of_submissions_lists_the_stored_bytes_once_and_deletions_and_uploads_count_at_once(
    tenant_api, seed_files, monkeypatch
):
    tenant, api, state = tenant_api
    size = seed_files["train"].stat().st_size
    quotas.set_policy(state, tenant, stored_bytes=2 * size + 10, jobs_per_minute=100)
    monkeypatch.setattr(quotas, "STORED_BYTES_FRESH_S", 60.0)  # however slow this machine is
    first, second = upload(api, seed_files["train"]), upload(api, seed_files["train"])
    client, listings = api.app.state.services.store.client, []
    list_objects = client.list_objects
    monkeypatch.setattr(client, "list_objects", lambda *a, **k: listings.append(k["prefix"]) or list_objects(*a, **k))

    submitted: list[str] = []

    def submit(dataset: str, max_iter: int):
        body = {"kind": "fit", "dataset_id": dataset, "lane": "large", "params": {"max_iter": max_iter}}
        response = api.post("/v1/jobs", json=body)
        submitted.extend([response.json()["id"]] if response.status_code == 202 else [])
        return response

    try:
        assert [submit(first, 10 + i).status_code for i in range(5)] == [202] * 5
        assert listings == [f"tenants/{tenant}/datasets/"]  # one listing for the burst
        # A new dataset's bytes count from the submission after its upload, whatever was kept
        third = upload(api, seed_files["train"])
        refused = submit(third, 10)
        assert refused.status_code == 413 and _error(refused) == "quota.stored_bytes"
        # and a deletion frees its bytes for the very next submission
        assert api.delete(f"/v1/datasets/{third}").status_code == 204
        assert submit(second, 10).status_code == 202
    finally:  # queued on the session's large lane, they would be the next test's large worker's first jobs
        for job_id in submitted:
            api.post(f"/v1/jobs/{job_id}/cancel")


def test_datasets_never_uploaded_are_forgotten_after_their_url_expires(tenant_api):
    tenant, api, _ = tenant_api
    waiting = api.post("/v1/datasets", json={}).json()["id"]
    services = api.app.state.services
    later = time.time() + services.settings.presign_expiry_s + services.settings.dataset_upload_grace_s + 5
    assert quotas.forget_never_uploaded(services, tenant, now=later) == [waiting]
    assert api.get(f"/v1/datasets/{waiting}").status_code == 404


def test_gpu_work_needs_the_grant_and_hgb_never_goes_to_the_gpu_lane(tenant_api, seed_files):
    tenant, api, state = tenant_api
    dataset = upload(api, seed_files["train"])
    hgb_on_gpu = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "gpu"})
    assert hgb_on_gpu.status_code == 422 and _error(hgb_on_gpu) == "job.cpu_family_on_gpu"
    quotas.set_policy(state, tenant, gpu=False)
    refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "model": "xgboost"})
    assert refused.status_code == 403 and _error(refused) == "job.gpu_not_granted"
    assert api.get("/v1/usage").json()["gpu_lane"] is False
    quotas.set_policy(state, tenant, gpu=True)
    granted = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "model": "xgboost"})
    assert granted.status_code == 202, granted.text
    api.post(f"/v1/jobs/{granted.json()['id']}/cancel")


def test_the_admin_command_sets_a_tenants_policy(base_env, settings, tmp_path):
    import subprocess
    import sys

    env_file = tmp_path / "tabjob.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in base_env.items()))
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "admin", "tenant-policy", "--tenant", "t-admin-set", "--datasets", "7",
         "--gpu", "--env-file", str(env_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "datasets: 7" in done.stdout and "gpu: True" in done.stdout
    from app.jobs.broker import redis_client

    state = State(client=redis_client(settings, decode=True), retention_s=60)
    assert quotas.policy(state, settings, "t-admin-set") == quotas.TenantPolicy(
        datasets=7, stored_bytes=settings.quota_stored_bytes, jobs_per_minute=settings.quota_jobs_per_minute,
        concurrent_uploads=settings.quota_concurrent_uploads, gpu=True,
    )  # fmt: skip
