"""``tabjob stack``: the whole service on one machine, in the foreground, without containers.

Valkey starts first; SeaweedFS and the API start side by side; the stack is ready once the
bucket exists and the API answers ``/readyz``. Workers start after that, so they do not compete
with the API's start for the CPU: a job submitted before they register simply waits in its queue.

Everything is supervised, as Kubernetes would: a worker, the API, Valkey or SeaweedFS that dies
is restarted (with back-off) on the same port and the same data, and its exit status is
collected at once (no zombies). SIGINT or SIGTERM stops the API and the workers (a running job
finishes or is handed back, within the worker's grace period), then the servers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.core.domain import LANES, WORKER_STOP_MARGIN_S
from app.core.keys import lane_workers_key
from app.core.net import is_loopback
from app.core.waiting import wait_until
from app.local import shared_metrics, valkey_probe
from app.local.on_demand import OnDemandWorkers
from app.local.servers import SeaweedS3, Valkey, _stop, die_with_parent, http_status, load_secrets
from app.local.supervision import Child, Restarts
from app.local.workers import concurrent_workers, core_pool_env, with_stack_defaults, worker_children

log = logging.getLogger("tabjob.stack")
SUPERVISE_INTERVAL_S = 0.2
DEFAULT_WORKER_SHUTDOWN_TIMEOUT_S = 30.0
SERVERS = ("valkey", "seaweedfs")


@dataclass
class EmbeddedStack:
    """Parameters:
    data_dir: where Valkey's AOF, SeaweedFS's volumes, logs and credentials live.
    host, port: where the API listens. Auth is off only on a loopback host.
    lanes: the lanes to run workers for (``app.local.workers``: one per core up to 4 on the
    small lane plus one reserved for small work, as consumers of one process; one on the others).
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
    server_restarts: dict[str, Restarts] = field(default_factory=lambda: {n: Restarts() for n in SERVERS})
    stopping: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)
    # The large and gpu lanes' workers start when a job waits for them (app.local.on_demand).
    on_demand: OnDemandWorkers = field(default_factory=OnDemandWorkers)

    def concurrent_workers(self) -> int:
        """Workers that run from the start, the small lane's reserved one included."""
        return concurrent_workers(tuple(lane for lane in self.lanes if self.on_demand.starts_with_the_stack(lane)))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def auth_enabled(self) -> bool:
        return self.auth or not is_loopback(self.host)

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    def setting(self, name: str, default: str) -> str:
        """A TABJOB_* value as the children see it (``env`` over the stack's environment)."""
        return self.env.get(name) or os.environ.get(name) or default

    @property
    def worker_stop_timeout_s(self) -> float:
        """How long a stopping worker may take: its job's grace period plus the margin in which
        it hands the job back and exits (see run_worker), then a little for the process itself."""
        grace = float(self.setting("TABJOB_WORKER_SHUTDOWN_TIMEOUT_S", str(DEFAULT_WORKER_SHUTDOWN_TIMEOUT_S)))
        return grace + WORKER_STOP_MARGIN_S + 5.0

    def child_env(self) -> dict[str, str]:
        assert self.valkey and self.s3
        secrets = load_secrets(self.data_dir)
        return {
            **with_stack_defaults(os.environ),
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
            **core_pool_env(),  # every worker's jobs take their cores from one pool
            "PYTHONUNBUFFERED": "1",
            **shared_metrics.env(self.data_dir),
            **self.env,
        }

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
        """Start everything; return once the bucket exists and the API answers /readyz (the
        workers are still starting then)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "scratch").mkdir(parents=True, exist_ok=True)
        shared_metrics.reset(self.data_dir)
        secrets = load_secrets(self.data_dir)
        self.valkey = Valkey(self.data_dir / "valkey", secrets["redis_password"])
        self.s3 = SeaweedS3(self.data_dir / "seaweedfs", secrets["s3_access_key"], secrets["s3_secret_key"])
        # Everything starts side by side, the slowest (SeaweedFS, about 2 s) first; the API
        # imports meanwhile and answers /readyz once it reaches both servers.
        self.s3.launch(self.logs / "seaweedfs.log")
        self.valkey.launch(self.logs / "valkey.log")
        self.write_env_file()
        python = [sys.executable, "-m", "app.cli"]
        api = Child("api", [*python, "api", "--host", self.host, "--port", str(self.port)])
        self.children = [api]
        self._spawn(api)
        self.valkey.wait_ready(timeout_s)
        self.s3.wait_ready(timeout_s)
        # Uploads by POST form (size-bounded) need the bucket; only a PUT creates it on SeaweedFS.
        # Readiness (a sentinel read in the bucket) needs it too.
        self.s3.ensure_bucket(self.setting("TABJOB_S3_BUCKET", "tabjob"), timeout_s)
        self._wait_for_api(api, timeout_s)
        self.ready.set()
        for worker in worker_children(python, self.lanes, self.on_demand.managed_lanes()):
            self.children.append(worker)
            if self.on_demand.starts_with_the_stack(worker.lane):
                self._spawn(worker)

    def _spawn(self, child: Child) -> None:
        log_file = open(self.logs / f"{child.name}.log", "ab")  # noqa: SIM115 - the child owns it
        child.process = subprocess.Popen(
            child.args,
            env={**self.child_env(), **child.env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log_file.close()
        child.restarts.started_at = time.monotonic()

    def _wait_for_api(self, api: Child, timeout_s: float) -> None:
        def exited() -> str | None:
            if api.process and api.process.poll() is not None:
                return f"the API exited with code {api.process.returncode}; see {self.logs}/api.log"
            return None

        wait_until(
            lambda: http_status(f"{self.url}/readyz") == 200,
            what="the API to answer /readyz",
            timeout_s=timeout_s,
            interval_s=0.05,
            ignore=(OSError,),  # urllib's errors, refused connections and timeouts
            give_up=exited,
        )

    def wait_for_workers(self, timeout_s: float = 120.0) -> None:
        """Return once every worker has registered (for callers that need warm workers)."""

        def exited() -> str | None:
            dead = [c.name for c in self.children if c.process is not None and c.process.poll() is not None]
            return f"{', '.join(dead)} exited; see {self.logs}" if dead else None

        wait_until(
            self.workers_registered,
            what="every worker to register",
            timeout_s=timeout_s,
            interval_s=0.05,
            ignore=(valkey_probe.ValkeyProbeError,),
            give_up=exited,
        )

    def workers_registered(self) -> bool:
        """True once every running worker registered, those started with the stack all running (first
        heartbeat; an id ends in its pid)."""
        v, workers = self.valkey, [c for c in self.children if c.lane is not None]
        assert v is not None
        sets = valkey_probe.members(v.host, v.port, v.password, [lane_workers_key(lane) for lane in self.lanes])
        ids = [member.rsplit("-", 1)[-1] for members in sets for member in members]
        pids = {str(c.process.pid) for c in workers if c.process is not None}
        up = all(c.process for c in workers if self.on_demand.starts_with_the_stack(c.lane)) and pids <= set(ids)
        return up and sum(pid in pids for pid in ids) >= self.concurrent_workers()

    def supervise_once(self) -> list[str]:
        """Collect the exit status of whatever died and restart it (with back-off): the servers
        first, on their own port and data, then the API and workers. Return the names restarted."""
        restarted: list[str] = []
        for name, server in (("valkey", self.valkey), ("seaweedfs", self.s3)):
            if self.stopping.is_set() or server is None or server.process is None:
                continue
            if server.process.poll() is not None and self.server_restarts[name].due(name, server.process.returncode):
                self._restart_server(name)
                restarted.append(name)
        for child in self.children:
            if self.stopping.is_set() or child.process is None or child.process.poll() is None:
                continue
            shared_metrics.forget(child.process.pid, self.data_dir)
            if self.on_demand.stopped_on_purpose(child):
                continue
            if child.restarts.due(child.name, child.process.returncode):
                self._spawn(child)
                restarted.append(child.name)
        if not self.stopping.is_set() and self.valkey is not None:
            self.on_demand.scale(self.children, self.valkey, self._spawn)
        return restarted

    def _restart_server(self, name: str) -> None:
        try:
            if name == "valkey":
                assert self.valkey
                self.valkey.start(self.logs / "valkey.log")  # replays its AOF before answering
            else:
                assert self.s3
                self.s3.start(self.logs / "seaweedfs.log")
                self.s3.ensure_bucket(self.setting("TABJOB_S3_BUCKET", "tabjob"))
            log.warning("%s restarted on its port and data", name)
        except (RuntimeError, OSError) as exc:  # the next round tries again, after its back-off
            log.error("%s did not restart: %s", name, exc)

    def handle_signals(self) -> None:
        """Turn SIGINT/SIGTERM into a clean stop (install before start(), so a signal during
        start-up stops what was started)."""

        def on_signal(signum: int, frame: object) -> None:
            if not self.stopping.is_set():
                self.stopping.set()
                if not self.ready.is_set():
                    raise KeyboardInterrupt  # still starting: unwind start() and stop

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)

    def run_forever(self) -> None:
        """Supervise until SIGINT/SIGTERM, then stop everything."""
        try:
            self.supervise()
        finally:
            self.stop()

    def supervise(self) -> None:
        """``supervise_once`` every tick until ``stopping`` is set; say once all workers registered."""
        announced = False
        while not self.stopping.wait(SUPERVISE_INTERVAL_S):
            self.supervise_once()
            if not announced:
                with contextlib.suppress(valkey_probe.ValkeyProbeError):  # Valkey restarting
                    if announced := self.workers_registered():
                        log.info("all %d workers registered", self.concurrent_workers())

    def stop(self) -> None:
        """Stop the API and the workers (they finish or hand back their jobs, each within its grace
        period, broker or not), then the servers."""
        self.stopping.set()
        # All at once: each worker finishes (or hands back) its running job in parallel.
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in self.children:
            _stop(child.process, self.worker_stop_timeout_s if child.lane else 15.0)
        if self.s3:
            self.s3.stop()
        if self.valkey:
            self.valkey.stop()
