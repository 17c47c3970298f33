"""Helpers for the metrics and dashboard tests: a worker process with its health port and log
file, and the Prometheus text parsed into samples."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from app.core.waiting import wait_until
from app.local.servers import die_with_parent, free_port

ROOT = Path(__file__).resolve().parents[2]


def start_worker(env: dict[str, str], lane: str, log_path: Path, **overrides: str) -> tuple[subprocess.Popen, int]:
    """A ``tabjob worker`` on ``lane`` writing JSON logs to ``log_path``, with its health port
    (returned) open; returns once it has registered its heartbeat."""
    port = free_port()
    full = {
        **os.environ,
        **env,
        "TABJOB_WORKER_HEALTH_PORT": str(port),
        "TABJOB_LOG_FORMAT": "json",
        **overrides,
        "PYTHONUNBUFFERED": "1",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--lane", lane],
            env=full, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
        )  # fmt: skip
    client = redis.Redis.from_url(
        full["TABJOB_REDIS_URL"], password=full["TABJOB_REDIS_PASSWORD"], decode_responses=True
    )

    def exited() -> str | None:
        return f"the worker exited with {process.returncode}; see {log_path}" if process.poll() is not None else None

    wait_until(
        lambda: any(w.endswith(f"-{process.pid}") for w in client.zrange(f"tabjob:lane:{lane}:workers", 0, -1)),
        what="the worker to register",
        timeout_s=120,
        give_up=exited,
    )
    return process, port


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus text exposition: (name, labels, value)."""
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(v for n, ls, v in samples(text) if n == name and all(ls.get(k) == w for k, w in labels.items()))


def scrape(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text
