"""A broker outage as long as a pod restart (seconds, longer than the clients' own reconnect
retries and the workers' heartbeat timeout): running and queued fits still all finish."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jobs_testing import upload

from app.api.main import create_app
from app.core.auth import ApiKeys
from app.core.settings import Settings
from app.core.waiting import wait_until
from app.jobs.broker import redis_client
from app.local.servers import SeaweedS3, Valkey

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
OUTAGE_S = 6.0  # > redis-py's ~2 s of reconnect retries and > the 3 s heartbeat timeout below


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[Valkey]:
    valkey = Valkey(tmp_path / "valkey", secrets.token_urlsafe(12))
    valkey.start(tmp_path / "valkey.log")
    yield valkey
    valkey.stop()


def test_fits_survive_a_broker_outage_longer_than_reconnect_retries(
    own_valkey: Valkey,
    servers: tuple[Valkey, SeaweedS3],
    base_env: dict[str, str],
    settings_from: Callable[[dict[str, str]], Settings],
    seed_files: dict[str, Path],
    tmp_path: Path,
):
    env = {**base_env, "TABJOB_REDIS_URL": own_valkey.url, "TABJOB_REDIS_PASSWORD": own_valkey.password}
    settings = settings_from(env)
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--lane", "small"],
        env={**os.environ, **env}, cwd=ROOT, stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    token, _ = ApiKeys(client=redis_client(settings, decode=True)).create("t-" + secrets.token_hex(4), "outage")
    try:
        with TestClient(create_app(settings), headers={"authorization": f"Bearer {token}"}) as api:
            # Given three fits, one running and the others queued behind it on one worker
            dataset = upload(api, seed_files["train"])
            ids = [
                api.post(
                    "/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "params": {"max_iter": 300 + i}}
                ).json()["id"]
                for i in range(3)
            ]
            wait_until(
                lambda: api.get(f"/v1/jobs/{ids[0]}").json()["status"] == "started",
                what="the first fit to start",
                timeout_s=120,
                interval_s=0.02,
            )

            # When the broker dies and comes back on its data OUTAGE_S later (a pod restart)
            assert own_valkey.process is not None
            own_valkey.process.send_signal(signal.SIGKILL)
            own_valkey.process.wait()
            time.sleep(OUTAGE_S)  # the outage itself, not a wait for a condition
            own_valkey.start(tmp_path / "valkey.log")

            # Then every fit finishes, on the same worker process (it reconnected on its own)
            def ended() -> bool:
                return all(api.get(f"/v1/jobs/{i}").json()["status"] == "finished" for i in ids)

            wait_until(ended, what="every fit to finish", timeout_s=240, interval_s=0.2, ignore=(KeyError,))
            assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
