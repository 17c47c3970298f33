"""The OpenAPI document tells the truth: schemathesis drives every operation of the real app (real
Valkey and SeaweedFS, auth on with a real key) with valid and invalid requests, and every answer
must be one the document describes (status code, content type, body schema), never a 5xx, and
invalid input must be refused."""

from __future__ import annotations

import secrets

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.main import create_app
from app.auth import ApiKeys
from app.jobs.broker import redis_client
from app.services import Services
from app.settings import Settings

# Few examples per operation and mode: the run stays within a couple of minutes on two cores.
MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def api_key(settings: Settings) -> str:
    token, _ = ApiKeys(client=redis_client(settings, decode=True)).create("t-" + secrets.token_hex(5), "contract")
    return token


@pytest.fixture(scope="module")
def api_schema(settings: Settings) -> schemathesis.BaseSchema:
    app = create_app(settings, services=Services.from_settings(settings))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
def test_every_answer_is_documented(case: schemathesis.Case, api_key: str) -> None:
    case.call_and_validate(headers={"authorization": f"Bearer {api_key}"}, checks=CHECKS)
