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
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.main import create_app
from app.core.auth import ApiKeys
from app.core.settings import Settings
from app.jobs.broker import redis_client
from app.usecases.services import Services

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
def api_schema(settings: Settings, api_key: str) -> schemathesis.BaseSchema:
    app = create_app(settings, services=Services.from_settings(settings))
    # The key through the document's own security scheme (ApiKey, bearer): schemathesis then knows
    # the requests are authorized and does not count a request it sends with the key as one without.
    config = SchemathesisConfig.from_str(f'[auth.openapi.ApiKey]\nbearer = "{api_key}"\n')
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


# How many examples per operation and mode comes from the Hypothesis profile (tests/conftest.py):
# 30 in the whole suite, fewer in `task test:fast`.
@pytest.mark.slow  # hundreds of generated requests: about a minute on 2 cores
@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
def test_every_answer_is_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
