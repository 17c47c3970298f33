"""The broker's settings (Valkey / Redis protocol): where it is, how processes log in and check
it, and how workers ride out its outages. A part of ``app.core.settings.Settings``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class BrokerSettings(BaseSettings):
    """Broker and job state."""

    redis_url: str = Field(
        description="Valkey/Redis URL of the broker and job state (`redis://` or `rediss://` for TLS); "
        "non-cluster mode only, since Dramatiq's Lua scripts touch several keys."
    )
    redis_password: SecretStr | None = Field(None, description="Broker password; unset or empty means no AUTH.")
    redis_ca_file: str | None = Field(
        None,
        description="PEM CA bundle that signs a `rediss://` broker's certificate (e.g. Memorystore's private CA); "
        "the chart mounts `secrets.redisCaKey` there.",
    )
    redis_auth: Literal["password", "gcp-iam"] = Field(
        "password",
        description="How processes log in to the broker: `password` (`TABJOB_REDIS_PASSWORD`, or none) or "
        "`gcp-iam` (Memorystore for Valkey IAM authentication: the pod's Google service account's access "
        "token from the metadata server, refreshed before it expires).",
    )
    redis_tls_check_hostname: bool | None = Field(
        None,
        description="Match a `rediss://` broker's certificate names to the address dialled. Unset: not when "
        "`TABJOB_REDIS_CA_FILE` names a private per-instance CA (the chain alone identifies the instance), "
        "yes with the system roots.",
    )
    scaler_token: SecretStr | None = Field(
        None,
        description="Bearer token KEDA's metrics-api trigger sends to `GET /internal/scaling/lanes/{lane}` "
        "(the lane's messages, for clusters where KEDA cannot log in to the broker itself); unset turns "
        "that route off (404).",
    )
    broker_heartbeat_timeout_s: float = Field(
        60.0,
        gt=0,
        description="A worker silent for this long is dead and its unacknowledged messages are requeued "
        "(`tabjob stack` sets 5).",
    )
    broker_maintenance_chance: int = Field(
        20_000,
        ge=1,
        le=1_000_000,
        description="Out of a million broker commands, how many also requeue dead workers' messages.",
    )
    broker_outage_wait_s: float = Field(
        120.0,
        ge=0,
        description="How long a worker keeps trying to enqueue a message (a job's retry) while the broker "
        "cannot be reached, in seconds: long enough for a restarted Valkey (pod or process) to come back, "
        "so a job that failed because the broker went away is retried instead of lost.",
    )
