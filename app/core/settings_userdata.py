"""Settings of what users keep and are told: data retention and job-end webhooks.

Part of ``app.core.settings.Settings`` (which inherits them, with its ``TABJOB_`` prefix); kept apart
so the settings module stays small. docs/configuration.md lists them with the others.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class UserDataSettings(BaseSettings):
    """Retention of datasets, models and predictions; notifications when jobs end."""

    data_retention_days: int | None = Field(
        None, ge=1, description="Delete datasets, model files and predictions this many days after they were "
        "written (a worker sweeps at most hourly, any stack and store); unset keeps them until deleted.",
    )  # fmt: skip

    # Job-end notifications (app/webhooks/delivery.py).
    webhooks_enabled: bool = Field(
        False,
        description="Let a job name a `webhook` (URL and secret) notified by a signed POST when it ends. "
        "Off by default: a job naming one is refused with 422 `webhook.disabled`.",
    )
    webhook_allow_private_targets: bool = Field(
        False,
        description="Allow webhook URLs that resolve to loopback, private or link-local addresses (tests, a "
        "laptop). Leave it off where users are not trusted: they could make the service call internal hosts.",
    )
    webhook_max_attempts: int = Field(5, ge=1, le=20, description="Tries per notification (on 429, 5xx, no answer).")
    webhook_backoff_s: float = Field(2.0, gt=0, description="Pause before a 2nd try; it doubles after each.")
    webhook_timeout_s: float = Field(10.0, gt=0, description="How long a receiver has to answer one try.")
