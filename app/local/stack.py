"""``tabjob stack``: the whole service on one machine, in the foreground, without containers.

Valkey and SeaweedFS start first, then the workers of every lane, then the API; the API's
``/healthz`` answers only once everything is up. A child that dies is restarted (as Kubernetes
would). SIGINT or SIGTERM stops the API, then the workers (a running job finishes or is handed back),
then the servers.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from app.local.servers import SeaweedS3, Valkey, _stop, die_with_parent, load_secrets
from app.settings import LANES, Settings, available_cpus, is_loopback, threads_per_worker
from app.storage import Store

log = logging.getLogger("tabjob.stack")
RESTART_BACKOFF_MAX_S = 10.0
WORKER_STOP_TIMEOUT_S = 40.0
MAX_SMALL_WORKERS = 4
# Small work's own capacity: one more small-lane worker that only starts jobs of at most this
# many cells (rows x columns; 20,000 x 50), on one thread, so a toy never waits for the big
# jobs the other small workers run (ordering alone leaves it waiting for the first to end).
RESERVED_MAX_CELLS = 1_000_000


@dataclass
class Child:
    """A supervised process: its command, and how often it was restarted."""

    name: str
    args: list[str]
    lane: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # over the stack's child_env()
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0


@dataclass
class EmbeddedStack:
    """Parameters:
    data_dir: where Valkey's AOF, SeaweedFS's volumes, logs and credentials live.
    host, port: where the API listens. Auth is off only on a loopback host.
    lanes: the lanes to run workers for (the small lane gets one per core, up to 4; others one).
    env: extra TABJOB_* settings for the API and the workers.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    lanes: tuple[str, ...] = LANES
    env: dict[str, str] = field(default_factory=dict)
    # Auth on even on loopback (to try keys locally); always on for any other address.
    auth: bool = False
    valkey: Valkey | None = None
    s3: SeaweedS3 | None = None
    children: list[Child] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def workers_for(self, lane: str) -> int:
        """Worker processes on ``lane``: one per core for the small lane (toy jobs run
        single-threaded, so they run side by side), one for the others."""
        return min(available_cpus(), MAX_SMALL_WORKERS) if lane == "small" else 1

    def concurrent_workers(self) -> int:
        """Workers that can run a job at once: every lane's, and the small lane's reserved one."""
        return sum(self.workers_for(lane) for lane in self.lanes) + ("small" in self.lanes)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def auth_enabled(self) -> bool:
        return self.auth or not is_loopback(self.host)

    def child_env(self) -> dict[str, str]:
        assert self.valkey and self.s3
        secrets = load_secrets(self.data_dir)
        env = {
            **os.environ,
            "TABJOB_ENVIRONMENT": "local",
            "TABJOB_REDIS_URL": self.valkey.url,
            "TABJOB_REDIS_PASSWORD": secrets["redis_password"],
            "TABJOB_S3_ENDPOINT": self.s3.endpoint,
            "TABJOB_S3_ACCESS_KEY": secrets["s3_access_key"],
            "TABJOB_S3_SECRET_KEY": secrets["s3_secret_key"],
            "TABJOB_AUTH_ENABLED": "true" if self.auth_enabled else "false",
            "TABJOB_WORKER_HEALTH_PORT": "0",
            # A dead local worker's job is picked up again within seconds, not a minute.
            "TABJOB_BROKER_HEARTBEAT_TIMEOUT_S": "5",
            "TABJOB_SCRATCH_DIR": str(self.data_dir / "scratch"),
            # The CPU budget: the machine's cores shared among the workers that can run at once,
            # so concurrent jobs never run more OpenMP threads than there are cores.
            "TABJOB_WORKER_THREADS": str(threads_per_worker(available_cpus(), self.concurrent_workers())),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        return env

    def write_env_file(self) -> Path:
        """``DIR/tabjob.env``: the settings for ``tabjob admin`` against this stack (mode 0600)."""
        path = self.data_dir / "tabjob.env"
        keep = (
            "TABJOB_REDIS_URL",
            "TABJOB_REDIS_PASSWORD",
            "TABJOB_S3_ENDPOINT",
            "TABJOB_S3_ACCESS_KEY",
            "TABJOB_S3_SECRET_KEY",
            "TABJOB_ENVIRONMENT",
        )
        env = self.child_env()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{k}={env[k]}\n" for k in keep)
        return path

    def start(self, *, timeout_s: float = 120.0) -> None:
        """Start everything and return once the API answers /healthz."""
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "scratch").mkdir(parents=True, exist_ok=True)
        secrets = load_secrets(self.data_dir)
        logs = self.data_dir / "logs"
        self.valkey = Valkey(self.data_dir / "valkey", secrets["redis_password"])
        self.valkey.start(logs / "valkey.log")
        self.s3 = SeaweedS3(self.data_dir / "seaweedfs", secrets["s3_access_key"], secrets["s3_secret_key"])
        self.s3.start(logs / "seaweedfs.log")
        self.write_env_file()
        # Uploads by POST form (size-bounded) need the bucket; only a PUT creates it on SeaweedFS.
        env = {k.removeprefix("TABJOB_").lower(): v for k, v in self.child_env().items() if k.startswith("TABJOB_")}
        Store.from_settings(Settings(**env)).ensure_bucket()
        python = [sys.executable, "-m", "app.cli"]
        self.children = [
            Child(f"worker-{lane}-{i}", [*python, "worker", "--lane", lane], lane=lane)
            for lane in self.lanes
            for i in range(1, self.workers_for(lane) + 1)
        ]
        if "small" in self.lanes:
            reserved = {"TABJOB_WORKER_MAX_CELLS": str(RESERVED_MAX_CELLS), "TABJOB_WORKER_THREADS": "1"}
            args = [*python, "worker", "--lane", "small"]
            self.children.append(Child("worker-small-reserved", args, "small", reserved))
        for child in self.children:
            self._spawn(child)
        self._wait_for_workers(timeout_s)
        api = Child("api", [*python, "api", "--host", self.host, "--port", str(self.port)])
        self.children.append(api)
        self._spawn(api)
        self._wait_for_api(timeout_s)

    def _spawn(self, child: Child) -> None:
        log_file = open(self.data_dir / "logs" / f"{child.name}.log", "ab")  # noqa: SIM115 - the child owns it
        child.process = subprocess.Popen(
            child.args,
            env={**self.child_env(), **child.env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log_file.close()

    def _wait_for_workers(self, timeout_s: float) -> None:
        assert self.valkey
        client = redis.Redis.from_url(self.valkey.url, password=self.valkey.password, decode_responses=True)
        deadline = time.monotonic() + timeout_s
        pending = {c.name for c in self.children}
        while pending:
            for child in self.children:
                lane = child.lane
                pids = {w.rsplit("-", 1)[-1] for w in client.zrange(f"tabjob:lane:{lane}:workers", 0, -1)}
                if child.process and str(child.process.pid) in pids:
                    pending.discard(child.name)
                elif child.process and child.process.poll() is not None:
                    raise RuntimeError(
                        f"{child.name} exited with code {child.process.returncode}; "
                        f"see {self.data_dir}/logs/{child.name}.log"
                    )
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start in time: {sorted(pending)}")
            time.sleep(0.1)

    def _wait_for_api(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        api = self.children[-1]
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if api.process and api.process.poll() is not None:
                raise RuntimeError(
                    f"the API exited with code {api.process.returncode}; see {self.data_dir}/logs/api.log"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not answer /healthz in time")
            time.sleep(0.1)

    def supervise_once(self) -> list[str]:
        """Restart children that died (with back-off); return the names restarted."""
        restarted = []
        now = time.monotonic()
        for child in self.children:
            if self.stopping.is_set() or child.process is None or child.process.poll() is None:
                continue
            if child.next_start == 0.0:
                child.next_start = now + min(RESTART_BACKOFF_MAX_S, 0.5 * 2**child.restarts)
                log.warning("%s exited with code %s; restarting", child.name, child.process.returncode)
            if now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                self._spawn(child)
                restarted.append(child.name)
        return restarted

    def handle_signals(self) -> None:
        """Turn SIGINT/SIGTERM into a clean stop (install before start(), so a signal during
        start-up stops what was started)."""

        def on_signal(signum: int, frame: object) -> None:
            if not self.stopping.is_set():
                self.stopping.set()
                if not self.children or self.children[-1].name != "api":
                    raise KeyboardInterrupt  # still starting: unwind start() and stop

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)

    def run_forever(self) -> None:
        """Supervise until SIGINT/SIGTERM, then stop everything."""
        try:
            while not self.stopping.wait(0.5):
                self.supervise_once()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the API, then the workers (they finish or hand back their jobs), then the servers."""
        self.stopping.set()
        api = [c for c in self.children if c.name == "api"]
        workers = [c for c in self.children if c.name != "api"]
        for child in api:
            _stop(child.process)
        # All workers at once: each finishes (or hands back) its running job in parallel.
        for child in workers:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in workers:
            _stop(child.process, WORKER_STOP_TIMEOUT_S)
        if self.s3:
            self.s3.stop()
        if self.valkey:
            self.valkey.stop()
