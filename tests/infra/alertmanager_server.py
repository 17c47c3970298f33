"""A real Alertmanager on 127.0.0.1 for the tests: start it on a configuration, post alerts to it
through its API (v2, as Prometheus does), read back their state."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from alert_firing import ALERTMANAGER

READY_TIMEOUT_S = 30


def write_config(config: dict[str, Any], directory: Path) -> Path:
    path = directory / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_alertmanager(config_path: Path, directory: Path) -> Iterator[str]:
    """Alertmanager serving `config_path` until the block ends; yields its base URL."""
    assert ALERTMANAGER is not None
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "alertmanager.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config_path}",
                f"--storage.path={directory / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # one instance: no gossip port
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while True:
                try:
                    urllib.request.urlopen(f"{url}/-/ready", timeout=1)
                    break
                except OSError:
                    assert process.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, "Alertmanager did not become ready:\n" + log.read_text()
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def post_alerts(url: str, alerts: list[dict[str, str]], annotations: dict[str, str] | None = None) -> None:
    """POST /api/v2/alerts: each label set as a firing alert (for an hour)."""
    now = datetime.now(UTC)
    body = [
        {
            "labels": labels,
            "annotations": annotations or {},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
        }
        for labels in alerts
    ]
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=5)


def listed_alerts(url: str) -> list[dict[str, Any]]:
    """GET /api/v2/alerts: each alert with its receivers and state (suppressed, inhibitedBy)."""
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
        return json.load(response)
