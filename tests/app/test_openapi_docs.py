"""The OpenAPI document a user reads in /docs: bearer auth declared (the Authorize button)."""

from __future__ import annotations

import pytest

# Routes without an API key: probes, the Prometheus scrape and the dashboard page (its data
# comes from /overview, which needs a key).
OPEN_ROUTES = ("/healthz", "/readyz", "/metrics", "/dashboard")


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
            assert secured == (path not in OPEN_ROUTES), (method, path)


def test_a_request_with_another_scheme_gets_the_envelope_not_fastapis_403(api):
    answer = api.get("/v1/jobs", headers={"authorization": "Basic abc"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "auth.unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"


def _resolve(openapi: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    return openapi["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_every_operation_has_a_description_and_every_json_answer_an_example(openapi):
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            assert len(operation.get("description", "")) > 30, (method, path)
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if not status.startswith("2") or content is None:
                    continue
                schema = _resolve(openapi, content["schema"])
                assert schema.get("examples") or content.get("example"), (method, path, status)
    body = openapi["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert [e["kind"] for e in _resolve(openapi, body)["examples"]] == ["fit", "predict"]


def test_the_examples_are_valid_bodies_of_their_models():
    from pydantic import BaseModel

    from app.api import model_schemas, plain_bodies, schemas

    checked = 0
    for model in [*vars(schemas).values(), *vars(model_schemas).values(), *vars(plain_bodies).values()]:
        if isinstance(model, type) and issubclass(model, BaseModel) and model.model_config.get("json_schema_extra"):
            for example in model.model_config["json_schema_extra"]["examples"]:
                model.model_validate(example)
                checked += 1
    assert checked >= 14


def test_the_legacy_routes_are_marked_deprecated_and_v1_is_not(openapi):
    for path, operations in openapi["paths"].items():
        for operation in operations.values():
            legacy = path in ("/upload", "/fit", "/predict", "/status", "/result")
            assert operation.get("deprecated", False) == legacy, path
            assert ("legacy" in operation["tags"]) == legacy
    assert "Deprecated" in next(t for t in openapi["tags"] if t["name"] == "legacy")["description"]
