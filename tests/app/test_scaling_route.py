"""The count KEDA's metrics-api trigger scales on when it cannot read the broker itself (IAM auth):
the same number its redis trigger reads, behind a bearer token, off unless configured.

KEDA's metrics-api scaler reads a JSON number at `valueLocation` (a gjson path) from the body and
sends the token with `authModes: bearer` (kedacore/keda pkg/scalers/metrics_api_scaler.go,
pkg/scalers/authentication/authentication_types.go).
"""

from __future__ import annotations

import uuid

import pytest
import redis
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.jobs.broker import NAMESPACE

TOKEN = "scaler-" + uuid.uuid4().hex


# A database of its own on the session's Valkey: the lanes' keys here are this test's alone, so
# other test files' workers never see these messages.
DB = 7


@pytest.fixture
def scaled_api(settings_from, base_env):
    url = base_env["TABJOB_REDIS_URL"].rsplit("/", 1)[0] + f"/{DB}"
    settings = settings_from({**base_env, "TABJOB_REDIS_URL": url, "TABJOB_SCALER_TOKEN": TOKEN})
    db = redis.Redis.from_url(url, password=settings.redis_password.get_secret_value(), decode_responses=True)
    with TestClient(create_app(settings)) as client:
        yield client, db
    db.flushdb()
    db.close()


def test_counts_pending_and_in_flight_messages_like_the_redis_trigger(scaled_api):
    client, db = scaled_api
    queue = f"{NAMESPACE}:large"
    # Given three messages on the large lane, of which one is still pending (Dramatiq keeps every
    # message in the .msgs hash until acked, and the ids of pending ones in the list)
    db.hset(f"{queue}.msgs", mapping={"m1": "{}", "m2": "{}", "m3": "{}"})
    db.rpush(queue, "m3")
    # When KEDA asks
    answer = client.get("/internal/scaling/lanes/large", headers={"Authorization": f"Bearer {TOKEN}"})
    # Then it reads what the redis trigger reads (pending + in flight), and the pending ones
    assert answer.status_code == 200
    assert answer.json() == {"lane": "large", "messages": 3, "pending": 1}
    assert client.get("/internal/scaling/lanes/gpu", headers={"Authorization": f"Bearer {TOKEN}"}).json() == {
        "lane": "gpu",
        "messages": 0,
        "pending": 0,
    }


def test_needs_the_token(scaled_api):
    client, _ = scaled_api
    assert client.get("/internal/scaling/lanes/small").status_code == 401
    wrong = client.get("/internal/scaling/lanes/small", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "auth.unauthorized"
    assert client.get("/internal/scaling/lanes/nolane", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 422


def test_is_off_without_a_token_and_never_in_the_openapi_document(settings):
    with TestClient(create_app(settings)) as client:
        off = client.get("/internal/scaling/lanes/small", headers={"Authorization": "Bearer anything"})
        assert off.status_code == 404
        assert not [path for path in client.get("/openapi.json").json()["paths"] if path.startswith("/internal")]
