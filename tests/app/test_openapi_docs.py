"""The OpenAPI document a user reads in /docs: bearer auth declared (the Authorize button)."""

from __future__ import annotations

import pytest


@pytest.fixture
def openapi(api) -> dict:
    return api.get("/openapi.json").json()


def test_bearer_auth_is_declared_and_required_by_every_tenant_route(openapi):
    scheme = openapi["components"]["securitySchemes"]["ApiKey"]
    assert (
        scheme["type"] == "http" and scheme["scheme"] == "bearer" and "tabjob admin create-key" in scheme["description"]
    )
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            secured = {"ApiKey": []} in operation.get("security", [])
            assert secured == (path not in ("/healthz", "/readyz")), (method, path)


def test_a_request_with_another_scheme_gets_the_envelope_not_fastapis_403(api):
    answer = api.get("/v1/jobs", headers={"authorization": "Basic abc"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "auth.unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"
