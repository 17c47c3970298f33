"""What a fresh deployment needs from the app itself (issue 9): readiness that uses only object
permissions, the smoke test's API key seeded at start-up, and worker ids unique in containers."""

from __future__ import annotations

import secrets
import socket
from typing import Any

import pytest
from minio.error import S3Error

from app.core.auth import ApiKeys, seed_bootstrap_keys
from app.core.errors import InfraError, UserError
from app.core.settings import Settings
from app.core.storage import READY_SENTINEL_KEY, Store
from app.jobs.broker import redis_client
from app.jobs.consumers import new_worker_id


class _HmacLikeClient:
    """The real Minio client of the test store, refusing bucket-level calls as GCS does for an
    HMAC key whose service account has only roles/storage.objectAdmin on the bucket."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.read: list[str] = []

    def get_object(self, bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
        self.read.append(key)
        return self._real.get_object(bucket, key, *args, **kwargs)

    def bucket_exists(self, bucket: str) -> bool:
        raise S3Error("AccessDenied", "storage.buckets.get denied", f"/{bucket}", "req", "host", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _store(settings: Settings, bucket: str | None = None, client: Any = None) -> Store:
    real = Store.from_settings(settings)
    return Store(
        client=client or real.client,
        signer=real.signer,
        bucket=bucket or settings.s3_bucket,
        presign_expiry_s=60,
    )


def test_readiness_needs_no_bucket_level_permission(settings: Settings) -> None:
    # Given credentials that may read objects but not the bucket's metadata (GCS HMAC)
    client = _HmacLikeClient(Store.from_settings(settings).client)
    store = _store(settings, client=client)
    # When readiness pings the store, Then it passes (no InfraError, no bucket-level call raised)
    # by reading the sentinel object, an object-level permission
    assert store.ping() is None
    assert client.read == [READY_SENTINEL_KEY]


def test_readiness_fails_when_the_bucket_is_missing(settings: Settings) -> None:
    store = _store(settings, bucket="missing-" + secrets.token_hex(4))
    with pytest.raises(InfraError, match="does not exist"):
        store.ping()


def test_readiness_fails_with_refused_credentials(settings: Settings, settings_from, base_env) -> None:
    wrong = settings_from({**base_env, "TABJOB_S3_SECRET_KEY": "not-the-" + secrets.token_hex(8)})
    with pytest.raises(InfraError, match="refused"):
        _store(wrong).ping()


def test_readyz_is_ready_on_a_fresh_bucket_before_any_upload(settings_from, base_env) -> None:
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    # Given a bucket that exists but holds nothing yet
    fresh = settings_from({**base_env, "TABJOB_S3_BUCKET": "fresh-" + secrets.token_hex(4)})
    Store.from_settings(fresh).ensure_bucket()
    with TestClient(create_app(fresh)) as client:
        assert client.get("/readyz").status_code == 200


def test_api_start_up_seeds_the_bootstrap_smoke_key(settings_from, base_env) -> None:
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    # Given the key the deployment generated, passed as TABJOB_BOOTSTRAP_API_KEYS
    token = f"tj_{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"
    settings = settings_from({**base_env, "TABJOB_BOOTSTRAP_API_KEYS": f"smoke={token}"})
    # When the API starts
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {token}"}) as client:
        # Then the key works at once, as tenant smoke, and is stored only as a hash
        assert client.get("/v1/jobs").status_code == 200
    keys = ApiKeys(client=redis_client(settings, decode=True))
    assert keys.tenant_of(token) == "smoke"
    key_id = token.split("_")[1]
    record = keys.r.hgetall(f"tabjob:apikey:{key_id}")
    assert token.split("_", 2)[2] not in record.values()


def test_seeding_is_idempotent_and_refuses_malformed_keys(settings: Settings) -> None:
    keys = ApiKeys(client=redis_client(settings, decode=True))
    token = f"tj_{secrets.token_hex(6)}_{secrets.token_urlsafe(24)}"
    assert seed_bootstrap_keys(keys, f"smoke={token}, ") == ["smoke"]
    assert seed_bootstrap_keys(keys, f"smoke={token}") == ["smoke"]
    assert keys.tenant_of(token) == "smoke"
    with pytest.raises(UserError):
        seed_bootstrap_keys(keys, "smoke=not-a-key")
    with pytest.raises(UserError):
        seed_bootstrap_keys(keys, token)


def test_worker_ids_differ_in_the_same_host_and_pid() -> None:
    # In containers every worker is pid 1, and host-network pods share the host name.
    ids = {new_worker_id() for _ in range(50)}
    assert len(ids) == 50
    for worker_id in ids:
        host, _random, pid = worker_id.rsplit("-", 2)
        assert host == socket.gethostname()
        # The embedded stack finds its workers by the last dash-separated part: the pid.
        assert worker_id.rsplit("-", 1)[-1] == pid and pid.isdigit()
