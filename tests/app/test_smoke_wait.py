"""The smoke test waits for a fresh deploy boundedly and says what it waits for
(app/local/reachability.py): a load balancer without healthy backends, a name that does not
resolve, then an answer or a clear failure at the deadline. No timings are asserted."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from app.local.reachability import wait_until_reachable


class _LoadBalancer(BaseHTTPRequestHandler):
    """Answers 502 (no healthy backend) to the first `failures` requests, then 200."""

    failures = 0
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        healthy = len(type(self).seen) > type(self).failures
        self.send_response(200 if healthy else 502)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}' if healthy else b"no healthy upstream")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def load_balancer():
    def start(failures: int) -> str:
        handler = type("Handler", (_LoadBalancer,), {"failures": failures, "seen": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    servers: list[ThreadingHTTPServer] = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_waits_through_502s_saying_what_it_waits_for_then_returns(load_balancer):
    url = load_balancer(failures=2)
    lines: list[str] = []
    wait_until_reachable(url, timeout_s=60, interval_s=0.01, report=lines.append)
    assert len(lines) == 3
    assert all("load balancer's backends (HTTP 502" in line for line in lines[:2])
    assert "answers (attempt 3)" in lines[2]


def test_gives_up_at_the_deadline_naming_the_last_reason(load_balancer):
    url = load_balancer(failures=10**6)
    lines: list[str] = []
    with pytest.raises(TimeoutError, match=r"did not answer /healthz within 0 s; still waiting for the load balancer"):
        wait_until_reachable(url, timeout_s=0, interval_s=0.01, report=lines.append)


def test_a_name_that_does_not_resolve_is_reported_as_dns():
    with pytest.raises(TimeoutError, match="DNS: the API's name does not resolve yet"):
        wait_until_reachable("http://tabjob-smoke.invalid", timeout_s=0, report=lambda line: None)
