"""The size limit holds at upload where the store allows it: the POST form of a dataset is bounded
by its policy (SeaweedFS enforces content-length-range and the key), the client uses it, and a
deployment can stop handing out PUT URLs, which no store can bound."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

import tabjob
from app.api.main import create_app
from tabjob import ApiError

MAX_BYTES = 20_000


def _post_form(form: dict, body: bytes) -> httpx.Response:
    return httpx.post(form["url"], data=form["fields"], files={"file": ("data.parquet", body)})


def test_the_upload_form_is_bounded_by_the_store(base_env, new_tenant, settings_from, seed_files):
    _, key = new_tenant()
    settings = settings_from({**base_env, "TABJOB_MAX_DATASET_BYTES": str(MAX_BYTES)})
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        created = api.post("/v1/datasets", json={"name": "bounded"}).json()
        form = created["upload_form"]
        assert form["max_bytes"] == MAX_BYTES
        # Over the limit: the store refuses it and stores nothing.
        too_big = _post_form(form, b"\0" * (MAX_BYTES + 1))
        assert too_big.status_code == 400 and "EntityTooLarge" in too_big.text
        assert api.get(f"/v1/datasets/{created['id']}").json()["state"] == "awaiting_upload"
        # Another dataset's key cannot be written with this form.
        other = api.post("/v1/datasets", json={"name": "other"}).json()
        hijack = httpx.post(form["url"], data={**form["fields"], "key": other["upload_form"]["fields"]["key"]},
                            files={"file": ("x", b"PAR1")})  # fmt: skip
        assert hijack.status_code == 403
        # Within the limit: stored, and inspected as any upload.
        small = _tiny_parquet()
        assert _post_form(form, small).status_code == 204
        assert api.get(f"/v1/datasets/{created['id']}").json()["state"] == "uploaded"


def test_the_client_uploads_through_the_bounded_form(api, seed_files):
    client = tabjob.Client("http://unused", http=api)  # the in-process app; the store is the real one
    seen = []
    created = client.upload(seed_files["train"], on_bytes=lambda done, total: seen.append((done, total)))
    shown = api.get(f"/v1/datasets/{created.id}").json()
    assert shown["state"] == "uploaded" and shown["size_bytes"] == seed_files["train"].stat().st_size
    assert seen and seen[-1][0] == seen[-1][1] == shown["size_bytes"]


def test_the_client_never_goes_past_the_size_bound(base_env, new_tenant, settings_from, seed_files, tmp_path):
    _, key = new_tenant()
    settings = settings_from({**base_env, "TABJOB_MAX_DATASET_BYTES": str(MAX_BYTES)})
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        client = tabjob.Client("http://unused", http=api)
        # Too big: the store's refusal is final (the client uploads through the form only, never
        # through the unbounded PUT URL the dataset also carries).
        with pytest.raises(ApiError) as refused:
            client.upload(seed_files["train"])
        assert "EntityTooLarge" in refused.value.message
        listed = api.get("/v1/datasets").json()["items"]
        assert listed[0]["state"] == "awaiting_upload"
        # Within the bound, the same client's upload is stored.
        small = tmp_path / "small.parquet"
        small.write_bytes(_tiny_parquet())
        done = client.upload(small)
        assert api.get(f"/v1/datasets/{done.id}").json()["state"] == "uploaded"


def test_put_urls_can_be_turned_off(base_env, new_tenant, settings_from):
    _, key = new_tenant()
    settings = settings_from({**base_env, "TABJOB_UPLOAD_PUT_URLS": "false"})
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        created = api.post("/v1/datasets", json={}).json()
        assert created["upload_url"] is None and created["upload_form"]["url"]
        legacy = api.get("/upload")
        assert legacy.status_code == 409 and legacy.json()["error"]["code"] == "upload.put_disabled"


def _tiny_parquet() -> bytes:
    import io

    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame({"a": [0.0, 1.0], "y": [0, 1]}).to_parquet(buffer, index=False)
    return buffer.getvalue()
