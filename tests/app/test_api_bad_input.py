"""No route answers 500 (or HTML) to bad input: odd ids, wrong types, broken bodies, big values."""

from __future__ import annotations

import pytest

ODD_IDS = ["", " ", "x" * 5000, "../../etc/passwd", "job_%00", "ds_\u00e9\u2603", "job_1;DROP", "{}", "null", "0"]


def assert_clean(response, *, refused: bool = False) -> None:
    """No 500 and no HTML; ``refused``: the request names nothing that exists, so it must be a 4xx."""
    assert response.status_code < 500, (response.request.url, response.status_code, response.text[:300])
    if refused:
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    if response.status_code >= 400:
        assert response.json()["error"]["code"]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_ids_everywhere(api, odd):
    for method, path, kwargs in [
        ("GET", "/status", {"params": {"id": odd}}),
        ("GET", "/result", {"params": {"id": odd}}),
        ("POST", "/fit", {"params": {"id": odd}}),
        ("POST", "/predict", {"params": {"dataset_id": odd, "model_id": odd}}),
        ("GET", f"/v1/jobs/{odd}", {}),
        ("GET", f"/v1/jobs/{odd}/events", {}),
        ("GET", f"/v1/jobs/{odd}/result", {}),
        ("POST", f"/v1/jobs/{odd}/cancel", {}),
        ("GET", f"/v1/datasets/{odd}", {}),
        ("POST", "/v1/jobs", {"json": {"kind": "fit", "dataset_id": odd}}),
        ("POST", "/v1/jobs", {"json": {"kind": "predict", "dataset_id": odd, "model_id": odd}}),
        ("GET", "/v1/jobs", {"params": {"cursor": odd, "status": odd}}),
    ]:
        # An empty id makes `/v1/jobs/` the listing, and an empty cursor and status absent ones:
        # the whole listing, rightly.
        listing_all = odd == "" and method == "GET" and path.rstrip("/") in ("/v1/jobs", "/v1/datasets")
        assert_clean(api.request(method, path, **kwargs), refused=not listing_all)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"fit"',
        b'{"kind": null}',
        b'{"kind": "fit", "dataset_id": 12}',
        b'{"kind": "fit", "dataset_id": "x", "params": []}',
        b'{"kind": "fit", "dataset_id": "x", "params": {"max_iter": 1e309}}',
        b'{"kind": "fit", "dataset_id": "x", "params": {"learning_rate": "fast"}}',
        b'{"kind": "fit", "dataset_id": "x", "lane": "turbo"}',
        b'{"kind": "fit", "dataset_id": "x", "extra": 1}',
        b"\xff\xfe\x00",
    ],
)
def test_broken_job_bodies(api, body):
    response = api.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert_clean(response)
    assert 400 <= response.status_code < 500


def test_wrong_methods_types_and_headers(api):
    assert_clean(api.delete("/v1/jobs"))
    assert_clean(api.put("/upload"))
    assert_clean(api.post("/v1/datasets", content=b"not json", headers={"content-type": "application/json"}))
    assert_clean(api.post("/v1/datasets", json={"name": "x" * 1000}))
    assert_clean(api.get("/v1/jobs", params={"limit": "many"}))
    assert_clean(api.get("/v1/jobs", params={"limit": 10**12}))
    assert_clean(api.get("/v1/jobs/job_x/events", params={"after": -1}))
    assert_clean(api.post("/v1/jobs", json={"kind": "fit", "dataset_id": "x"}, headers={"idempotency-key": "k" * 500}))
    assert_clean(api.get("/v1/jobs", headers={"authorization": "Bearer " + "x" * 10000}))


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/jobs", {"kind": "fit", "dataset_id": "ds_x", "params": {"random_state": False}}, "random_state"),
        ("/v1/jobs", {"kind": "fit", "dataset_id": "ds_x", "params": {"max_iter": True}}, "max_iter"),
        (
            "/v1/jobs",
            {
                "kind": "fit",
                "dataset_id": "ds_x",
                "register_as": "m",
                "promote": {"alias": "champion", "metric": "accuracy", "min_delta": False},
            },
            "min_delta",
        ),
        ("/v1/datasets", {"parts": True}, "parts"),
        (
            "/v1/schedules",
            {"cron": "0 6 * * 1", "job": {"kind": "fit", "dataset_id": "ds_x", "params": {"random_state": False}}},
            "random_state",
        ),
    ],
)
def test_a_boolean_is_no_number(api, path, body, field):
    """JSON true/false where a number belongs is refused (Pydantic's lax mode took false as 0 and
    true as 1; found by the OpenAPI contract test)."""
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in response.text
