"""Graceful stop while the broker is down: SIGTERM to a worker, or to the whole stack, still ends
within the configured grace period and leaves no process behind."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from app.core.domain import WORKER_STOP_MARGIN_S
from app.core.waiting import wait_until
from app.local.servers import SeaweedS3, Valkey, free_port
from app.state import lane_workers_key

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 3.0  # TABJOB_WORKER_SHUTDOWN_TIMEOUT_S in these tests


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[Valkey]:
    """A Valkey of this test's own (the session's is shared and must stay up)."""
    valkey = Valkey(tmp_path / "valkey", secrets.token_urlsafe(12))
    valkey.start(tmp_path / "valkey.log")
    yield valkey
    valkey.stop()


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def registered(valkey: Valkey, lane: str, pid: int) -> bool:
    import redis

    client = redis.Redis(host=valkey.host, port=valkey.port, password=valkey.password, decode_responses=True)
    with client:
        return any(m.endswith(f"-{pid}") for m in client.zrange(lane_workers_key(lane), 0, -1))


@pytest.mark.parametrize("outage", ["killed", "hung"])
def test_worker_sigterm_with_the_broker_down_exits_in_grace_and_leaves_nothing(
    own_valkey: Valkey, servers: tuple[Valkey, SeaweedS3], base_env: dict[str, str], outage: str
):
    # Given a warm worker (its forkserver and job process started) on a broker that then dies
    # (refuses connections) or hangs (accepts and never answers)
    env = {
        **os.environ,
        **base_env,
        "TABJOB_REDIS_URL": own_valkey.url,
        "TABJOB_REDIS_PASSWORD": own_valkey.password,
        "TABJOB_WORKER_SHUTDOWN_TIMEOUT_S": str(GRACE_S),
    }
    worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--lane", "small"], env=env, cwd=ROOT)
    try:
        wait_until(lambda: registered(own_valkey, "small", worker.pid), what="the worker to register", timeout_s=120)
        wait_until(lambda: len(tree(worker.pid)) >= 4, what="the worker's job process", timeout_s=60)
        processes = tree(worker.pid)
        assert own_valkey.process is not None
        own_valkey.process.send_signal(signal.SIGKILL if outage == "killed" else signal.SIGSTOP)

        # When it gets SIGTERM
        worker.send_signal(signal.SIGTERM)

        # Then it exits within its grace period plus the stop margin, and takes its forkserver,
        # job process and resource tracker with it
        worker.wait(GRACE_S + WORKER_STOP_MARGIN_S + 5)
        _gone, alive = psutil.wait_procs(processes, timeout=10)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if own_valkey.process is not None and own_valkey.process.poll() is None:
            own_valkey.process.send_signal(signal.SIGCONT)


def test_stack_sigterm_with_the_broker_hung_stops_in_grace_and_leaves_nothing(tmp_path: Path):
    # Given a running stack whose Valkey hangs (SIGSTOP: alive, so not restarted, and silent)
    port = free_port()
    env = {**os.environ, "TABJOB_WORKER_SHUTDOWN_TIMEOUT_S": str(GRACE_S)}
    stack = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "stack", "--data-dir", str(tmp_path), "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200,
            what="the stack to be ready",
            timeout_s=120,
            ignore=(httpx.HTTPError,),
        )
        wait_until(
            lambda: any("worker --lane small" in " ".join(p.cmdline()) for p in tree(stack.pid)),
            what="the small lane's workers to start (the others start with a job)",
            timeout_s=60,
            ignore=(psutil.Error,),
        )
        processes = tree(stack.pid)
        valkey = next(p for p in processes if "valkey-server" in " ".join(p.cmdline()))
        valkey.suspend()

        # When it gets SIGTERM
        stack.send_signal(signal.SIGTERM)

        # Then it stops within the API's and the workers' grace periods plus the servers' stop
        # (see EmbeddedStack.stop), exits 0, and no process of its tree is left
        assert stack.wait(15 + GRACE_S + WORKER_STOP_MARGIN_S + 5 + 3 + 15) == 0
        _gone, alive = psutil.wait_procs(processes, timeout=10)
        assert alive == [], [p.cmdline() for p in alive]
    finally:
        if stack.poll() is None:
            for process in tree(stack.pid)[::-1]:
                process.kill()
            stack.wait()
