"""Every setting of the service, read once from the environment (prefix ``TABJOB_``).

Required values have no default, so a missing one stops start-up with a clear message.
Values that only make sense on a laptop (auth off, the well-known local credentials) are
refused outside ``environment=local``.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Lane = Literal["small", "large", "gpu"]
LANES: tuple[Lane, ...] = ("small", "large", "gpu")

# A stopping worker's time after its job's grace period (worker_shutdown_timeout_s) to hand the
# job back and exit, broker or not; the pod's terminationGracePeriodSeconds must cover both.
WORKER_STOP_MARGIN_S = 10.0

# Credentials that ship in docs and examples; never acceptable in a real deployment.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "minioadmin", "password", "secret"})


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def available_cpus() -> int:
    """Cores this process may use: the cgroup CPU quota when set, else the affinity mask."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            cpus = min(cpus or 1, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus or 1)


class Settings(BaseSettings):
    """The service's configuration. Each field is documented in the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="TABJOB_", extra="ignore")

    environment: Literal["local", "dev", "staging", "production"] = "local"
    log_level: str = "INFO"

    # Broker and job state (Valkey / Redis protocol).
    redis_url: str
    redis_password: SecretStr | None = None
    # PEM bundle that signs the broker's TLS certificate (rediss://), e.g. Memorystore's private CA.
    redis_ca_file: str | None = None
    broker_heartbeat_timeout_s: float = Field(60.0, gt=0)
    # Out of a million broker commands, how many also requeue a dead worker's messages.
    broker_maintenance_chance: int = Field(20_000, ge=1, le=1_000_000)
    broker_outage_wait_s: float = Field(
        120.0,
        ge=0,
        description="How long a worker keeps trying to enqueue a message (a job's retry) while the broker "
        "cannot be reached, in seconds: long enough for a restarted Valkey (pod or process) to come back, "
        "so a job that failed because the broker went away is retried instead of lost.",
    )

    # Object store (S3 API).
    s3_endpoint: str
    s3_public_endpoint: str | None = None
    s3_access_key: SecretStr
    s3_secret_key: SecretStr
    s3_bucket: str = "tabjob"
    s3_region: str = "us-east-1"
    presign_expiry_s: int = Field(3600, ge=60, le=7 * 24 * 3600)

    # API.
    auth_enabled: bool = True
    api_host: str = "127.0.0.1"

    # Work management.
    max_dataset_bytes: int = Field(2 * 1024**3, gt=0)
    lane_large_min_bytes: int = Field(64 * 1024**2, gt=0)
    lane_large_min_rows: int = Field(1_000_000, gt=0)
    tenant_max_queued: int = Field(100, ge=1)
    tenant_max_running: int = Field(8, ge=1)
    time_limit_small_s: float = Field(15 * 60, gt=0)
    time_limit_large_s: float = Field(6 * 3600, gt=0)
    time_limit_gpu_s: float = Field(6 * 3600, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    retry_min_backoff_s: float = Field(2.0, gt=0)
    retry_max_backoff_s: float = Field(120.0, gt=0)
    job_retention_s: int = Field(30 * 24 * 3600, ge=60)
    idempotency_ttl_s: int = Field(24 * 3600, ge=60)

    # Workers.
    worker_threads: int | None = Field(None, ge=1)
    # Jobs on datasets with fewer rows than this run single-threaded (see app/jobs/actors.py).
    single_thread_max_rows: int = Field(20_000, ge=0)
    worker_shutdown_timeout_s: float = Field(30.0, ge=0)
    worker_warm_start: bool = Field(
        True,
        description="Start the worker's job process (pandas and scikit-learn imported, one tiny fit run) "
        "when the worker starts, so its first job does not pay those seconds. The embedded stack turns it "
        "off for the large and gpu lanes, whose jobs run minutes to hours, to keep idle memory low.",
    )
    worker_health_port: int = Field(8001, ge=0, le=65535)
    cancel_poll_s: float = Field(0.5, gt=0)
    scratch_dir: str | None = None

    @field_validator("s3_endpoint", "s3_public_endpoint")
    @classmethod
    def _endpoint_has_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (for example http://127.0.0.1:8333)")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _refuse_unsafe_outside_local(self) -> Settings:
        if self.environment == "local":
            return self
        if not self.auth_enabled:
            raise ValueError("auth_enabled=false is only allowed with environment=local")
        for name in ("s3_access_key", "s3_secret_key"):
            if getattr(self, name).get_secret_value().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(f"{name} is a placeholder; set a real credential")
        return self

    @property
    def public_endpoint(self) -> str:
        """The endpoint users reach for presigned URLs (the internal one when unset)."""
        return self.s3_public_endpoint or self.s3_endpoint

    def time_limit_s(self, lane: Lane) -> float:
        """The wall-clock limit of one attempt of a job on ``lane``, in seconds."""
        return {
            "small": self.time_limit_small_s,
            "large": self.time_limit_large_s,
            "gpu": self.time_limit_gpu_s,
        }[lane]

    def threads_for_worker(self) -> int:
        """OpenMP/BLAS threads a worker's job may use: its own cores, never more."""
        return self.worker_threads or available_cpus()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (not at import, so ``ml/`` and tests need
    no environment)."""
    return Settings()  # type: ignore[call-arg]
