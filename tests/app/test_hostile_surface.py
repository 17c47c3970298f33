"""The API's surface against a hostile tenant or web page: bounded metric labels, the scrape
paths behind a token, the keyless local API refusing foreign Host names and cross-site writes,
an OpenAPI document that matches the auth mode, pinned /docs assets, finite cursors, the whole
request in the idempotency digest, worker names hidden from tenants, a terminal-safe ``top``,
and deleting a dataset deleting every copy of its bytes (the store is listed)."""

from __future__ import annotations

import socket

from fastapi.testclient import TestClient
from jobs_testing import upload, wait_job
from rich.console import Console

from app.api.main import create_app
from app.core.storage import prepared_key
from app.tenancy.retention import sweep
from app.usecases.prepared import cache_key, content_digest
from tabjob.cli.top import render


def _listed(store, tenant: str) -> list[str]:
    return [o.object_name for o in store.client.list_objects(store.bucket, prefix=f"tenants/{tenant}/", recursive=True)]


def test_made_up_methods_share_one_metric_label(api):
    for i in range(25):
        api.request(f"MADEUP{i}", "/v1/jobs")
    text = api.get("/metrics").text
    assert "MADEUP" not in text and 'method="other"' in text


def test_metrics_and_readyz_need_the_scrape_token_when_one_is_set(base_env, settings_from):
    settings = settings_from({**base_env, "TABJOB_METRICS_TOKEN": "scrape-token-123"})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        for path in ("/metrics", "/readyz"):
            refused = client.get(path)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "auth.scrape_token"
            assert client.get(path, headers={"authorization": "Bearer scrape-token-123"}).status_code == 200
        assert client.get("/healthz").status_code == 200  # the liveness probe stays open


def test_the_keyless_api_serves_loopback_names_and_refuses_cross_site_writes(base_env, settings_from):
    settings = settings_from({**base_env, "TABJOB_AUTH_ENABLED": "false"})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as local:
        # DNS rebinding: the attacker's name resolves to 127.0.0.1, but Host still names it
        foreign = local.get("/v1/jobs", headers={"host": "attacker.example:8000"})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "auth.off_foreign_host"
        # A page elsewhere POSTs text/plain (no preflight)
        page = {"origin": "https://attacker.example", "content-type": "text/plain"}
        cross = local.post("/v1/datasets", content=b"{}", headers=page)
        assert cross.status_code == 403 and cross.json()["error"]["code"] == "auth.off_cross_site"
        fetched = local.post("/v1/datasets", json={}, headers={"sec-fetch-site": "cross-site"})
        assert fetched.status_code == 403
        # The dashboard (same origin), a terminal (no Origin) and localhost still work
        assert local.post("/v1/datasets", json={}, headers={"origin": "http://127.0.0.1:8000"}).status_code == 201
        assert local.post("/v1/datasets", json={}, headers={"host": "localhost:8000"}).status_code == 201
        # No bearer auth in the document of a keyless API
        document = local.get("/openapi.json").json()
        assert "securitySchemes" not in document.get("components", {})
        assert not any("security" in op for path in document["paths"].values() for op in path.values())


def test_openapi_declares_bearer_auth_when_keys_are_checked(api):
    assert "securitySchemes" in api.get("/openapi.json").json()["components"]


def test_docs_pages_load_their_scripts_from_this_api(api):
    for page, asset in (("/docs", "/docs-assets/swagger-ui-bundle.js"), ("/redoc", "/docs-assets/redoc.standalone.js")):
        html = api.get(page).text
        assert "cdn.jsdelivr.net" not in html and "fonts.googleapis" not in html and asset in html
        served = api.get(asset)
        assert served.status_code == 200 and len(served.content) > 100_000


def test_a_nan_cursor_is_refused(api):
    for path in ("/v1/models", "/v1/jobs", "/v1/datasets"):
        answer = api.get(path, params={"cursor": "nan"})
        assert answer.status_code == 422, (path, answer.text)


def test_an_idempotency_key_reused_with_another_target_or_family_is_refused(api, seed_files):
    dataset = upload(api, seed_files["train"])
    first = api.post(
        "/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large"}, headers={"Idempotency-Key": "k-1"}
    )
    assert first.status_code == 202, first.text
    for changed in (
        {"target": "col_0"},
        {"model": "xgboost"},
        {"webhook": {"url": "https://a.example/h", "secret": "s" * 20}},
    ):
        body = {"kind": "fit", "dataset_id": dataset, "lane": "large", **changed}
        again = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k-1"})
        assert again.status_code == 422, (changed, again.text)
    api.post(f"/v1/jobs/{first.json()['id']}/cancel")


def test_tenants_see_worker_pseudonyms_not_host_names(api, small_worker):
    workers = api.get("/v1/overview").json()["workers"]
    assert workers and all(w["id"].startswith("worker-") for w in workers)
    assert socket.gethostname() not in api.get("/v1/overview").text


def test_top_shows_server_text_without_terminal_escapes():
    hostile = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\rover"
    view = {
        "viewer": {"tenant": "t", "admin": True}, "generated_at": 0, "failure_window_s": 3600,
        "lanes": [], "running": [], "workers": [],
        "waiting": [{"id": "job_1", "kind": "fit", "lane": "small", "for_s": 1, "tenant": hostile,
                     "queue": {"position": 1, "reason": hostile}}],
        "failures": [{"code": "x", "count": 1, "lanes": ["small"], "message": hostile, "hint": hostile}],
    }  # fmt: skip
    console = Console(record=True, width=300, force_terminal=True, color_system=None)
    console.print(render(view))
    shown = console.export_text()
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown and "red" in shown


def test_deleting_a_dataset_deletes_every_copy_of_its_bytes(api, seed_files):
    services = api.app.state.services
    store, tenant = services.store, api.get("/v1/usage").json()["tenant"]
    dataset = upload(api, seed_files["train"])
    # Given its prepared matrices: the fit's (found by content) and one recorded by a submission
    job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "model": "xgboost"}).json()
    api.post(f"/v1/jobs/{job['id']}/cancel")
    info = store.stat(f"tenants/{tenant}/datasets/{dataset}.parquet")
    fit_matrix = prepared_key(tenant, cache_key(content_digest(info), kind="fit"))
    store.put_json(fit_matrix, {"stand-in": "matrix"})
    listed = {
        o.object_name for o in store.client.list_objects(store.bucket, prefix=f"tenants/{tenant}/", recursive=True)
    }
    assert fit_matrix in listed
    # When the dataset is deleted
    assert api.delete(f"/v1/datasets/{dataset}").status_code == 204
    # Then, once the canceled job's prepare step (which may have been writing its matrix as the
    # dataset went: app.jobs.stepping drops it then) has ended, no object of it is left
    assert wait_job(api, job["id"], 120)["status"] in ("canceled", "failed")
    left = _listed(store, tenant)
    assert not [k for k in left if "/datasets/" in k or "/prepared/" in k], left


def test_the_retention_sweep_deletes_prepared_matrices_too(api, seed_files):
    services = api.app.state.services
    store, tenant = services.store, api.get("/v1/usage").json()["tenant"]
    upload(api, seed_files["train"])
    store.put_json(prepared_key(tenant, "0" * 64), {"stand-in": "matrix"})
    sweep(services.state, store, older_than_s=-60, prefix=f"tenants/{tenant}/")
    left = _listed(store, tenant)
    assert not [k for k in left if "/datasets/" in k or "/prepared/" in k], left
