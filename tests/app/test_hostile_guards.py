"""Guards that hold whatever starts the app: auth off answers only on loopback, request heads and
bodies are bounded before parsing; and ``tabjob stack --auth`` runs with keys on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.local.servers import free_port
from app.local.spawn import answers, spawn, tabjob_command

ROOT = Path(__file__).resolve().parents[2]
NON_LOOPBACK = "10.9.9.9"

# Runs inside a private network namespace (nothing outside it can reach it): loopback plus
# NON_LOOPBACK on lo. uvicorn serves the app on 0.0.0.0 there, as an operator might by hand.
_NAMESPACE_PROBE = """
import json, os, subprocess, sys, httpx
from app.core.waiting import wait_until
port = sys.argv[1]
server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "app.api.main:create_app",
                           "--host", "0.0.0.0", "--port", port], stderr=subprocess.DEVNULL)
try:
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200,
               what="uvicorn", timeout_s=60, ignore=(httpx.HTTPError,))
    answers = {
        "loopback": httpx.get(f"http://127.0.0.1:{port}/healthz").status_code,
        "outside_read": httpx.get(f"http://NON_LOOPBACK_IP:{port}/healthz").json(),
        "outside_write": httpx.post(f"http://NON_LOOPBACK_IP:{port}/v1/datasets", json={}).status_code,
    }
    print(json.dumps(answers))
finally:
    server.terminate()
    server.wait(30)
""".replace("NON_LOOPBACK_IP", NON_LOOPBACK)


def _in_private_network(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    setup = f"ip link set lo up && ip addr add {NON_LOOPBACK}/32 dev lo"
    return subprocess.run(
        ["unshare", "-rn", "sh", "-c", f'{setup} && exec "$0" -c "$1" "$2"', sys.executable, script, *args],
        env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow  # starts its own server processes
def test_uvicorn_on_all_addresses_with_auth_off_refuses_non_loopback_requests(base_env):
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no private network namespace here: {probe.stderr.decode().strip()}")
    env = {**base_env, "TABJOB_AUTH_ENABLED": "false"}
    done = _in_private_network(_NAMESPACE_PROBE, "8000", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert answers["loopback"] == 200
    assert answers["outside_read"]["error"]["code"] == "auth.off_beyond_loopback"
    assert answers["outside_write"] == 403


def test_auth_off_answers_by_the_local_address_of_each_request(base_env, settings_from, settings):
    # (``settings`` makes the bucket: run alone, this test was the first to need it)
    settings = settings_from({**base_env, "TABJOB_AUTH_ENABLED": "false"})
    app = create_app(settings)
    with TestClient(app, base_url=f"http://{NON_LOOPBACK}:8000") as outside:
        refused = outside.post("/v1/datasets", json={})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth.off_beyond_loopback"
        assert outside.get("/status", params={"id": "job_x"}).json()["detail"]  # legacy clients read detail
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.post("/v1/datasets", json={}).status_code == 201
    with TestClient(app, base_url="http://[::1]:8000") as local6:
        assert local6.get("/healthz").status_code == 200


def test_request_bodies_are_bounded_before_parsing(api):
    limit = api.app.state.services.settings.api_max_body_bytes
    declared = api.post("/v1/jobs", content=b"x" * (limit + 1), headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "request.body_too_large"

    def chunks():  # no Content-Length: the bound counts what is read
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = api.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "request.body_too_large"
    assert api.post("/v1/datasets", json={"name": "small"}).status_code == 201


def test_header_count_and_size_are_bounded(api):
    settings = api.app.state.services.settings
    many = [(f"x-h{i}", "1") for i in range(settings.api_max_headers + 1)]
    assert api.get("/v1/jobs", headers=many).status_code == 431
    big = api.get("/v1/jobs", headers={"x-big": "a" * settings.api_max_header_bytes})
    assert big.status_code == 431 and big.json()["error"]["code"] == "request.headers_too_large"
    assert api.get("/v1/jobs").status_code == 200


def _raw_request(port: int, head: bytes, chunk: int = 1 << 30) -> bytes:
    """Send ``head`` (in ``chunk``-byte writes) and read the answer; the server may answer and
    close before it has all of it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        try:
            for start in range(0, len(head), chunk):
                conn.sendall(head[start : start + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass
        return conn.recv(4096)


@pytest.mark.slow  # starts its own server processes
def test_tabjob_api_refuses_huge_request_heads_in_the_server(base_env, free_tcp_port):
    process = spawn(
        tabjob_command("api", "--port", str(free_tcp_port)), env=base_env, log=subprocess.DEVNULL,
        ready=answers(f"http://127.0.0.1:{free_tcp_port}"), what="the API",
    )  # fmt: skip
    try:
        rss_before = psutil.Process(process.pid).memory_info().rss
        one_big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1024**2 + b"\r\n\r\n"
        assert _raw_request(free_tcp_port, one_big).startswith(b"HTTP/1.1 431")
        # Dripped in small writes, the server stops reading past its bound, not at the head's end
        assert _raw_request(free_tcp_port, b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 32 * 1024**2, 4096).startswith(
            b"HTTP/1.1 431"
        )
        assert psutil.Process(process.pid).memory_info().rss - rss_before < 16 * 1024**2
        many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(5000)) + b"\r\n"
        assert _raw_request(free_tcp_port, many)[:12] == b"HTTP/1.1 431"
        # A head under the bound, with a body in the same read, is served (the body is not head)
        body = b"x" * 40_000
        post = b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        assert _raw_request(free_tcp_port, post)[:12] != b"HTTP/1.1 431"
        assert httpx.get(f"http://127.0.0.1:{free_tcp_port}/healthz").status_code == 200
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.slow  # starts its own server processes
def test_the_stack_runs_with_auth_on_loopback(tmp_path, settings_from):
    from app.core.auth import ApiKeys
    from app.jobs.broker import redis_client
    from app.local.stack import EmbeddedStack

    stack = EmbeddedStack(data_dir=tmp_path, port=free_port(), lanes=("small",), auth=True)
    try:
        stack.start()
        assert httpx.get(f"{stack.url}/v1/jobs").status_code == 401
        settings = settings_from({k: v for k, v in stack.child_env().items() if k.startswith("TABJOB_")})
        token, _ = ApiKeys(client=redis_client(settings, decode=True)).create("stack-user")
        assert httpx.get(f"{stack.url}/v1/jobs", headers={"authorization": f"Bearer {token}"}).status_code == 200
    finally:
        stack.stop()
