"""Every setting of the service, read once from the environment (prefix ``TABJOB_``).

Required values have no default, so a missing one stops start-up with a clear message.
Values that only make sense on a laptop (auth off, the well-known local credentials) are
refused outside ``environment=local``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from app.core.cpu import available_cpus
from app.core.domain import LANES as LANES  # re-exported: app.local.stack reads the lanes from here
from app.core.domain import Lane
from app.core.settings_broker import BrokerSettings
from app.core.settings_engines import EngineSettings
from app.core.settings_logs import JobLogSettings
from app.core.settings_tenants import TenantLimitSettings
from app.core.settings_userdata import UserDataSettings

# A stopping worker's time after its job's grace period (worker_shutdown_timeout_s) to hand the
# job back and exit, broker or not; the pod's terminationGracePeriodSeconds must cover both.
WORKER_STOP_MARGIN_S = 10.0

# Credentials that ship in docs and examples; never acceptable in a real deployment.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "minioadmin", "password", "secret"})


# Cached: with auth off, every request's Host header and local address are checked, and parsing
# them as addresses cost more than the rest of the request guards; a client sends few distinct ones.
@lru_cache(maxsize=256)
def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BrokerSettings, UserDataSettings, EngineSettings, TenantLimitSettings, JobLogSettings):
    """The service's configuration. docs/configuration.md is generated from these field descriptions
    (`uv run python -m app.core.settings_docs`)."""

    model_config = SettingsConfigDict(env_prefix="TABJOB_", extra="ignore")

    environment: Literal["local", "dev", "staging", "production"] = Field(
        "local",
        description="Where this runs. Outside `local`, auth off and placeholder S3 credentials are refused "
        "at start-up.",
    )
    log_level: str = Field("INFO", description="Python logging level of the API and worker processes.")
    log_format: Literal["json", "text"] = Field(
        "json",
        description="`json`: one JSON object per line with `job_id`, `tenant`, `lane` and `step` on every line "
        "about a job (what `tabjob logs` and log collectors read); `text`: plain lines for a terminal.",
    )

    # Object store (S3 API).
    s3_endpoint: str = Field(
        description="S3 endpoint the API and workers use (`http(s)://host:port`, no trailing path)."
    )
    s3_public_endpoint: str | None = Field(
        None,
        description="Endpoint presigned upload/download URLs are signed for, i.e. what users reach; "
        "unset means `TABJOB_S3_ENDPOINT`.",
    )
    s3_access_key: SecretStr = Field(description="S3 access key (secret; placeholders refused outside `local`).")
    s3_secret_key: SecretStr = Field(description="S3 secret key (secret; placeholders refused outside `local`).")
    s3_bucket: str = Field("tabjob", description="Bucket for datasets, models, results and job manifests.")
    s3_region: str = Field("us-east-1", description="Region the S3 requests are signed for.")
    presign_expiry_s: int = Field(
        3600, ge=60, le=7 * 24 * 3600, description="Lifetime of presigned upload and download URLs."
    )

    # API.
    auth_enabled: bool = Field(
        True,
        description="Require an API key (bearer token). `false` is allowed only with `environment=local`, "
        "and `tabjob api` then refuses a non-loopback address; every caller is tenant `local`.",
    )
    api_max_body_bytes: int = Field(
        1024**2,
        gt=0,
        description="Largest request body the API reads (data never passes through it); a larger one is "
        "refused with 413 before parsing.",
    )
    api_max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        description="Largest request head (request line and headers) `tabjob api` buffers; larger is refused "
        "by the server (app/api/http_protocol.py) and by the app's own check with 431.",
    )
    api_max_headers: int = Field(
        100, ge=10, description="Most request headers the API accepts; more is refused with 431."
    )
    api_host: str = Field(
        "127.0.0.1",
        description="The API's listen address as the process knows it; `tabjob api --host` always sets it, "
        "so this variable alone changes nothing.",
    )
    bootstrap_api_keys: SecretStr | None = Field(
        None,
        description=(
            "API keys the API stores (hashed) at start-up, as comma-separated tenant=token pairs "
            "(tokens in the tj_<key id>_<secret> form). The deployment uses it for the smoke "
            "test's key (tenant 'smoke'), generated by Pulumi and passed from a Secret."
        ),
    )

    # Work management.
    max_dataset_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest dataset a job accepts; a larger one is refused with 413."
    )
    max_dataset_rows: int = Field(
        50_000_000, gt=0, description="Most rows a dataset may have (from its Parquet footer); more are refused: 413."
    )
    max_dataset_columns: int = Field(
        10_000, gt=0, description="Most columns a dataset may have (from its Parquet footer); more is refused with 413."
    )
    max_footer_bytes: int = Field(
        8 * 1024**2,
        gt=0,
        description="Largest Parquet footer the API parses (checked from the file's last 8 bytes first); its "
        "memory is many times its size, so a larger one is refused with 413.",
    )
    target_scan_rows: int = Field(1_000_000, gt=0, description=(
        "Rows of `y` the API reads at submission, in small batches (the footer's statistics "
        "decide past them; the worker checks every row)."
    ))  # fmt: skip
    max_concurrent_inspections: int = Field(4, ge=1, description=(
        "Datasets one API process inspects at once (footer and `y` sample); more submissions wait, "
        "so memory stays bounded under parallel submissions."
    ))  # fmt: skip
    upload_put_urls: bool = Field(
        True,
        description="Also hand out presigned PUT URLs (the seed's clients use them; S3 cannot bound a PUT's "
        "size). `false`: only the size-bounded POST form of `POST /v1/datasets`; the legacy `/upload` is refused.",
    )
    lane_large_min_bytes: int = Field(
        64 * 1024**2, gt=0, description="Datasets at least this big go to the `large` lane (lane `auto`)."
    )
    lane_large_min_rows: int = Field(
        1_000_000, gt=0, description="Datasets with at least this many rows go to the `large` lane (lane `auto`)."
    )
    tenant_max_queued: int = Field(
        100, ge=1, description="Queued jobs per tenant; one more is refused with 429 and `Retry-After`."
    )
    tenant_max_running: int = Field(
        8, ge=1, description="Running jobs per tenant; more wait in the queue (event `waiting`)."
    )
    queue_handicap_s_per_million_cells: float = Field(2.0, ge=0, description=(
        "Short jobs first: waiting jobs start in order of queue time plus this many seconds per million cells "
        "(rows x columns), so a toy goes before a 75,000 x 50 fit queued up to 7.5 s earlier; 0: first in, first out."
    ))  # fmt: skip
    queue_handicap_max_s: float = Field(1800.0, ge=0, description=(
        "Aging: a job is never overtaken by jobs queued more than this many seconds after it."
    ))  # fmt: skip
    time_limit_small_s: float = Field(
        15 * 60, gt=0, description="Wall-clock limit of one attempt on the `small` lane (`job.timeout`, not retried)."
    )
    time_limit_large_s: float = Field(6 * 3600, gt=0, description="Wall-clock limit of one attempt, `large` lane.")
    time_limit_gpu_s: float = Field(6 * 3600, gt=0, description="Wall-clock limit of one attempt on the `gpu` lane.")
    max_retries: int = Field(
        3, ge=0, le=20, description="Retries of a job after a platform error (user errors are never retried)."
    )
    retry_min_backoff_s: float = Field(
        2.0, gt=0, description="Shortest back-off before a retry; Dramatiq doubles it per retry, with jitter."
    )
    retry_max_backoff_s: float = Field(120.0, gt=0, description="Longest back-off between two retries.")
    job_retention_s: int = Field(
        30 * 24 * 3600,
        ge=60,
        description="How long job records, events and fit deduplication keys stay in Valkey "
        "(the job manifests stay in the store).",
    )
    idempotency_ttl_s: int = Field(
        24 * 3600, ge=60, description="How long an `Idempotency-Key` of `POST /v1/jobs` returns the same job."
    )

    # Workers.
    worker_threads: int | None = Field(None, ge=1, description=(
        "Cores in this worker's core pool (a job takes the free ones, up to what its size uses), capped at the "
        "cores it may use; unset: the cgroup CPU quota (a pod's `limits.cpu`, rounded down) or affinity mask."
    ))  # fmt: skip
    worker_core_pool: Literal["process", "machine"] = Field("process", description="Where jobs take cores from: `process`, this process's (a pod's CPU limit); `machine`, one pool in Valkey for the host's workers (`tabjob stack`).")  # fmt: skip  # noqa: E501
    worker_max_cells: int | None = Field(None, ge=1, description=(
        "Reserves this worker for small work: it starts only jobs of at most this many cells (rows x columns)."
    ))  # fmt: skip
    worker_consumers: int = Field(1, ge=1, le=16, description=(
        "Jobs this worker process runs at once, each with its own consumer and job process, sharing the process's "
        "forkserver (pandas and scikit-learn loaded once). Pods run one; `tabjob stack` one per core, up to 4."
    ))  # fmt: skip
    worker_small_work_consumers: int = Field(0, ge=0, le=4, description=(
        "Consumers added to this process, reserved for small work (at most `TABJOB_WORKER_SMALL_WORK_MAX_CELLS` "
        "cells, one thread): a toy never waits for the others' big jobs. `tabjob stack` runs one on the small lane."
    ))  # fmt: skip
    worker_small_work_max_cells: int = Field(1_000_000, ge=1, description=(
        "The largest job (rows x columns) a small-work consumer starts: 1,000,000 is 20,000 x 50, under a second."
    ))  # fmt: skip
    # Jobs on datasets with fewer rows than this run single-threaded (see app/jobs/actors.py).
    single_thread_max_rows: int = Field(20_000, ge=0, description=(
        "Jobs on datasets with fewer rows run on one thread (faster, and leave cores to other jobs)."
    ))  # fmt: skip
    worker_shutdown_timeout_s: float = Field(30.0, ge=0, description=(
        "On SIGTERM, how long a running job may finish before it is handed back to the queue; "
        "the worker then has `WORKER_STOP_MARGIN_S` (10 s) more to exit, broker or not."
    ))  # fmt: skip
    checkpoint_interval_s: float = Field(30.0, gt=0, description="Longest time between two checkpoints of a long fit (also every 10 % of its rounds): what a lost worker costs it at most.")  # fmt: skip  # noqa: E501
    worker_warm_start: bool = Field(True, description=(
        "Start the worker's job process (pandas and scikit-learn imported, one tiny fit run) "
        "when the worker starts, so its first job does not pay those seconds. The embedded stack turns it "
        "off for the large and gpu lanes, whose jobs run minutes to hours, to keep idle memory low."
    ))  # fmt: skip
    worker_job_process_max_growth_mib: float = Field(8.0, ge=0, description=(
        "Private memory (USS, MiB) an idle job process may hold over what it held once warm: one "
        "that holds more 5 s after its last job (what a big fit left in its heap) is replaced by a "
        "fresh fork, as Celery's worker_max_memory_per_child does; 0: never replaced."
    ))  # fmt: skip
    worker_health_port: int = Field(
        8001, ge=0, le=65535, description="Port of the worker's `/healthz`; 0 turns it off (`tabjob stack` does)."
    )
    cancel_poll_s: float = Field(
        0.5, gt=0, description="How often a worker checks whether its running job was canceled."
    )
    scratch_dir: str | None = Field(
        None, description="Where jobs stage downloads; unset means the system's temporary directory."
    )

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
        """OpenMP/BLAS threads a worker's job may use: ``worker_threads`` when set (the embedded
        stack sets each worker's share of the machine), else the cores of the cgroup quota or
        affinity mask (a pod's CPU limit); never more than those cores."""
        cpus = available_cpus()
        return min(self.worker_threads, cpus) if self.worker_threads else cpus


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (not at import, so ``ml/`` and tests need
    no environment)."""
    return Settings()  # type: ignore[call-arg]
