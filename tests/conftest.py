"""Real services for the whole suite: Valkey and SeaweedFS from their wheels, started once per
session on loopback, plus factories for API clients and worker processes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import hypothesis
import pytest
import redis

from app.core.settings import Settings
from app.core.waiting import wait_until
from app.local.servers import SeaweedS3, Valkey, die_with_parent, free_port
from app.state import lane_workers_key

ROOT = Path(__file__).resolve().parent.parent

# Hypothesis profiles (`pytest --hypothesis-profile=NAME`): the whole suite, which CI runs, tries
# 30 examples per property (the OpenAPI contract: per operation and mode); the fast loop
# (`task test:fast`) runs the same properties and checks on fewer examples.
hypothesis.settings.register_profile("suite", max_examples=30)
hypothesis.settings.register_profile("fast", max_examples=8)
hypothesis.settings.load_profile("suite")


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Valkey, SeaweedS3]]:
    base = tmp_path_factory.mktemp("servers")
    valkey = Valkey(base / "valkey", secrets.token_urlsafe(16))
    s3 = SeaweedS3(base / "seaweedfs", "test" + secrets.token_hex(4), secrets.token_urlsafe(24))
    valkey.start(base / "valkey.log")
    try:
        s3.start(base / "seaweedfs.log")
        yield valkey, s3
    finally:
        # The session's data is thrown away: no grace period for SeaweedFS's filer retries.
        s3.stop(grace_s=0)
        valkey.stop()


def settings_env(valkey: Valkey, s3: SeaweedS3, **overrides: str) -> dict[str, str]:
    """TABJOB_* variables pointing at the test servers, tuned so failures show within seconds."""
    env = {
        "TABJOB_ENVIRONMENT": "local",
        "TABJOB_REDIS_URL": valkey.url,
        "TABJOB_REDIS_PASSWORD": valkey.password,
        "TABJOB_S3_ENDPOINT": s3.endpoint,
        "TABJOB_S3_ACCESS_KEY": s3.access_key,
        "TABJOB_S3_SECRET_KEY": s3.secret_key,
        "TABJOB_S3_BUCKET": "tabjob-test",
        "TABJOB_AUTH_ENABLED": "true",
        "TABJOB_BROKER_HEARTBEAT_TIMEOUT_S": "3",
        "TABJOB_BROKER_MAINTENANCE_CHANCE": "200000",
        "TABJOB_RETRY_MIN_BACKOFF_S": "0.2",
        "TABJOB_RETRY_MAX_BACKOFF_S": "1",
        "TABJOB_CANCEL_POLL_S": "0.2",
        "TABJOB_WORKER_HEALTH_PORT": "0",
        "TABJOB_WORKER_THREADS": "1",
        "TABJOB_WORKER_SHUTDOWN_TIMEOUT_S": "5",
        # Each app starts its inspection children; tests need one warm, the rest start on demand.
        "TABJOB_INSPECTION_WARM_CHILDREN": "1",
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def base_env(servers: tuple[Valkey, SeaweedS3]) -> dict[str, str]:
    return settings_env(*servers)


def make_settings(env: dict[str, str]) -> Settings:
    """Settings read from ``env`` (TABJOB_* variables), as a process started with it would."""
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        return Settings()  # type: ignore[call-arg]
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def settings_from() -> Callable[[dict[str, str]], Settings]:
    """``make_settings`` for tests (importing from conftest is ambiguous with several conftests)."""
    return make_settings


@pytest.fixture(scope="session")
def settings(base_env: dict[str, str]) -> Settings:
    s = make_settings(base_env)
    from app.core.storage import Store

    Store.from_settings(s).ensure_bucket()
    return s


@pytest.fixture
def broker_db(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url, password=settings.redis_password.get_secret_value(), decode_responses=True
    )


@dataclass
class Workers:
    """Worker processes started by a test, stopped (and checked for exit) at teardown."""

    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, lane: str = "small", **overrides: str) -> subprocess.Popen:
        env = {**os.environ, **self.env, **overrides, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--lane", lane],
            env=env, cwd=ROOT, preexec_fn=die_with_parent,
        )  # fmt: skip
        self.processes.append(process)
        client = redis.Redis.from_url(
            env["TABJOB_REDIS_URL"], password=env["TABJOB_REDIS_PASSWORD"], decode_responses=True
        )
        wait_until(
            lambda: any(w.endswith(f"-{process.pid}") for w in client.zrange(lane_workers_key(lane), 0, -1)),
            what=f"the {lane} worker {process.pid} to register",
            timeout_s=120,
            interval_s=0.05,
            give_up=lambda: None if process.poll() is None else f"worker exited with {process.returncode}",
        )
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(base_env: dict[str, str]) -> Iterator[Workers]:
    pool = Workers(base_env)
    yield pool
    pool.stop_all()


@pytest.fixture(scope="module")
def module_workers(base_env: dict[str, str]) -> Iterator[Workers]:
    """Workers a module's tests share (``module_workers.start(lane)``), stopped after its last test."""
    pool = Workers(base_env)
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def small_worker(base_env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """One worker on the small lane shared by the tests that only need jobs to run."""
    pool = Workers(base_env)
    yield pool.start("small")
    pool.stop_all()


@pytest.fixture(scope="module")
def live_api(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tabjob api`` in its own process on a free loopback port (auth on), for browser tests."""
    from app.local.spawn import answers, spawn, stop, tabjob_command

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path_factory.mktemp("api") / "api.log").open("ab") as log:
        process = spawn(
            tabjob_command("api", "--port", str(port)), ready=answers(url), what="the API to answer /healthz",
            env=base_env, log=log,
        )  # fmt: skip
        try:
            yield url
        finally:
            stop(process)


def tenant_maker(settings: Settings) -> Callable[[], tuple[str, str]]:
    """A function that makes a fresh tenant in ``settings``' broker and returns (tenant, api key)."""
    from app.core.auth import ApiKeys
    from app.jobs.broker import redis_client
    from app.state import State
    from app.tenancy import quotas

    client = redis_client(settings, decode=True)
    keys = ApiKeys(client=client)

    def make() -> tuple[str, str]:
        tenant = "t-" + secrets.token_hex(5)
        token, _ = keys.create(tenant, "test")
        # Tests of the gpu lane's work need the grant (app/tenancy/quotas.py); tests of the grant withdraw it.
        quotas.set_policy(State(client=client, retention_s=60), tenant, gpu=True)
        return tenant, token

    return make


def own_broker_env(base_env: dict[str, str], db: int) -> dict[str, str]:
    """``base_env`` on a broker database of its own (``db``, 1-15), for tests whose jobs must run on
    the workers they start: the session's shared small-lane worker consumes database 0's queues and
    would otherwise take some of their jobs (with its own settings)."""
    assert 0 < db < 16, db
    return {**base_env, "TABJOB_REDIS_URL": base_env["TABJOB_REDIS_URL"].rsplit("/", 1)[0] + f"/{db}"}


@contextmanager
def api_client(settings: Settings) -> Iterator[httpx.Client]:
    """An in-process API client on ``settings``, authenticated as a fresh tenant of its broker."""
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    _, token = tenant_maker(settings)()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.fixture
def new_tenant(settings: Settings) -> Callable[[], tuple[str, str]]:
    """Makes a fresh tenant and returns (tenant, api key)."""
    return tenant_maker(settings)


@pytest.fixture
def api(settings: Settings, new_tenant: Callable[[], tuple[str, str]]) -> Iterator[httpx.Client]:
    """An HTTP client on the real app (in process), authenticated as a fresh tenant."""
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    _, token = new_tenant()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.fixture(scope="session")
def seed_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from app.local.demo import make_seed_data

    return make_seed_data(tmp_path_factory.mktemp("seed"), rows=4000, features=20)


@pytest.fixture
def free_tcp_port() -> int:
    return free_port()


# Fixtures that start worker processes, an API server process (`live_api`, tests/app/test_dashboard.py,
# whose tests also drive a real browser) or (in tests/app) a whole embedded stack: a test using
# one is `slow`, and so is a test marked @pytest.mark.slow because it starts server processes of
# its own; `task test:fast` (-m "not slow") runs everything else, a file per CPU.
# (tests/infra has a `stack` fixture too: a Pulumi stack name, which starts nothing.)
SLOW_FIXTURES = frozenset({"workers", "small_worker", "module_workers", "live_api"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        starts_stack = "stack" in used and item.path.is_relative_to(ROOT / "tests" / "app")
        if SLOW_FIXTURES & used or starts_stack:
            item.add_marker(pytest.mark.slow)
