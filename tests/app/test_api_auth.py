"""API keys, tenant isolation, and auth only ever off on loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from jobs_testing import upload

from app.api.main import create_app
from app.core.auth import ApiKeys
from app.jobs.broker import redis_client


def test_requests_without_a_valid_key_are_401(settings):
    with TestClient(create_app(settings)) as anonymous:
        for headers in ({}, {"authorization": "Basic abc"}, {"authorization": "Bearer nonsense"},
                        {"authorization": "Bearer tj_0123456789ab_" + "x" * 40}):  # fmt: skip
            response = anonymous.get("/v1/jobs", headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error"]["code"] == "auth.unauthorized"
        assert anonymous.get("/upload").status_code == 401
        assert anonymous.get("/healthz").status_code == 200


def test_a_tenant_never_sees_another_tenants_data(settings, new_tenant, seed_files):
    _, key_a = new_tenant()
    _, key_b = new_tenant()
    app = create_app(settings)
    with (
        TestClient(app, headers={"authorization": f"Bearer {key_a}"}) as a,
        TestClient(app, headers={"authorization": f"Bearer {key_b}"}) as b,
    ):
        dataset = upload(a, seed_files["train"])
        job = a.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large"}).json()
        # Another tenant's ids are simply not found, on every route.
        assert b.get(f"/v1/datasets/{dataset}").status_code == 404
        assert b.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset}).status_code == 404
        assert b.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert b.post(f"/v1/jobs/{job['id']}/cancel").status_code == 404
        assert b.get("/status", params={"id": job["id"]}).status_code == 404
        assert b.post("/fit", params={"id": dataset}).status_code == 404
        assert b.get("/v1/jobs").json()["items"] == []
        assert a.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "canceled"


def test_keys_are_stored_hashed_and_can_be_revoked(settings):
    keys = ApiKeys(client=redis_client(settings, decode=True))
    token, record = keys.create("acme", "ci")
    stored = keys.r.hgetall(keys._key(record["id"]))
    assert token.split("_")[-1] not in str(stored)
    assert keys.tenant_of(token) == "acme"
    assert record["id"] in [k["id"] for k in keys.list("acme")]
    assert "hash" not in keys.list("acme")[0]
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {token}"}) as client:
        assert client.get("/v1/jobs").status_code == 200
        assert keys.revoke(record["id"])
        assert client.get("/v1/jobs").status_code == 401


@pytest.mark.slow  # starts its own server processes
def test_admin_cli_creates_lists_and_revokes_keys(base_env):
    env = {**base_env, "PATH": ""}

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "admin", *args], env=env, capture_output=True, text=True, check=False
        )

    created = run("create-key", "--tenant", "cli-tenant", "--name", "laptop")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("tj_")
    key_id = token.split("_")[1]
    assert (
        key_id in run("list-keys", "--tenant", "cli-tenant").stderr + run("list-keys", "--tenant", "cli-tenant").stdout
    )
    assert run("revoke-key", key_id).returncode == 0
    assert run("revoke-key", key_id).returncode == 1


@pytest.mark.slow  # starts its own server processes
def test_auth_off_is_refused_off_loopback(base_env):
    env = {**base_env, "TABJOB_AUTH_ENABLED": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "api", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "loopback" in done.stderr
    staging = {**base_env, "TABJOB_AUTH_ENABLED": "false", "TABJOB_ENVIRONMENT": "staging"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "api", "--port", "1"],
        env=staging,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "auth_enabled" in done.stderr
