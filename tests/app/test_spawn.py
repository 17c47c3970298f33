"""The one way the tests and benchmarks start a process and wait for it (app.local.spawn)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.local.servers import free_port
from app.local.spawn import answers, spawn, stop


def test_a_process_that_exits_first_fails_at_once_with_its_exit_code():
    with pytest.raises(RuntimeError, match="exited with 3"):
        spawn([sys.executable, "-c", "import sys; sys.exit(3)"], ready=lambda: False, what="nothing", timeout_s=60)


def test_a_server_is_returned_once_it_answers_and_stops_on_sigterm():
    port = free_port()
    server = spawn(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ready=answers(f"http://127.0.0.1:{port}", "/"),
        what="http.server",
        log=subprocess.DEVNULL,
    )
    assert server.poll() is None and answers(f"http://127.0.0.1:{port}", "/")()
    stop(server)
    assert server.poll() is not None
