"""`tabjob:alerting`: where Alertmanager sends the stack's alerts, read into frozen dataclasses.

The object (Pulumi config, so a stack file holds it as YAML) names the receivers; their secrets
are separate secret keys, so that nothing secret sits in a stack file in plain text::

    tabjob:alerting:
      email: {to: oncall@example.com, from: alertmanager@example.com,
              smarthost: smtp.example.com:587, username: alertmanager@example.com}
      slack: {channel: "#tabjob-alerts"}          # + tabjob:alertSlackWebhookUrl (secret)
      webhook: {url: https://hooks.example.com/alertmanager}
      heartbeat: {url: https://hc-ping.com/<uuid>}  # Watchdog, the dead man's switch

`email.to` is one address, several separated by commas, or a list. `tabjob:alertSmtpPassword`
(secret) goes with `email.username`. Invalid values raise
`ValueError` naming what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.config_reader import Reader

SMTP_PASSWORD_KEY = "alertSmtpPassword"
SLACK_WEBHOOK_URL_KEY = "alertSlackWebhookUrl"
# Alertmanager's smarthost is host:port (https://prometheus.io/docs/alerting/latest/configuration/#email_config).
_SMARTHOST = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")
_ADDRESS = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_URL = re.compile(r"^https?://[^\s]+$")
_FIELDS = {
    "email": ({"to", "from", "smarthost"}, {"username"}),
    "slack": ({"channel"}, set()),
    "webhook": ({"url"}, set()),
    "heartbeat": ({"url"}, set()),
}


@dataclass(frozen=True)
class EmailReceiver:
    to: list[str]
    sender: str
    smarthost: str
    # SMTP AUTH: both or neither (an open relay inside the network needs none).
    username: str | None
    password: pulumi.Output[str] | None


@dataclass(frozen=True)
class SlackReceiver:
    channel: str
    webhook_url: pulumi.Output[str]


@dataclass(frozen=True)
class AlertingSettings:
    """The receivers a stack configured; at least one of email, slack and webhook."""

    email: EmailReceiver | None = None
    slack: SlackReceiver | None = None
    webhook_url: str | None = None
    # A dead man's switch (healthchecks.io, Dead Man's Snitch, ...) that Watchdog pings.
    heartbeat_url: str | None = None


def _section(value: Mapping[str, Any], name: str) -> dict[str, str] | None:
    section = value.get(name)
    if section is None:
        return None
    required, optional = _FIELDS[name]
    allowed = ", ".join(sorted(required | optional))
    if name == "email" and isinstance(section, dict) and isinstance(section.get("to"), list):
        section = {**section, "to": ", ".join(map(str, section["to"]))}  # a list of addresses
    if not isinstance(section, dict) or not all(isinstance(v, str) and v.strip() for v in section.values()):
        raise ValueError(f"tabjob:alerting.{name} must be an object of non-empty strings ({allowed})")
    unknown = set(section) - required - optional
    missing = required - set(section)
    if unknown or missing:
        raise ValueError(
            f"tabjob:alerting.{name} takes {allowed}; "
            + "; ".join(
                filter(None, [unknown and f"unknown: {sorted(unknown)}", missing and f"missing: {sorted(missing)}"])
            )
        )
    return {k: v.strip() for k, v in section.items()}


def _url(section: dict[str, str] | None, name: str) -> str | None:
    if section is None:
        return None
    if not _URL.match(section["url"]):
        raise ValueError(f"tabjob:alerting.{name}.url must be an http(s):// URL; got {section['url']!r}")
    return section["url"]


def _email(section: dict[str, str] | None, password: pulumi.Output[str] | None) -> EmailReceiver | None:
    if section is None:
        if password is not None:
            raise ValueError(f"tabjob:{SMTP_PASSWORD_KEY} is set but tabjob:alerting has no email receiver")
        return None
    to = [address.strip() for address in section["to"].split(",")]
    for address in [*to, section["from"]]:
        if not _ADDRESS.match(address):
            raise ValueError(f"tabjob:alerting.email: {address!r} is not an e-mail address")
    if not _SMARTHOST.match(section["smarthost"]):
        raise ValueError(f"tabjob:alerting.email.smarthost must be host:port; got {section['smarthost']!r}")
    username = section.get("username")
    if (username is None) != (password is None):
        raise ValueError(
            f"tabjob:alerting.email.username and tabjob:{SMTP_PASSWORD_KEY} (secret) go together: "
            "set both for SMTP AUTH, or neither"
        )
    return EmailReceiver(
        to=to, sender=section["from"], smarthost=section["smarthost"], username=username, password=password
    )


def _secret(r: Reader, key: str) -> pulumi.Output[str] | None:
    value = r.secret(key)
    if value is not None and not pulumi.runtime.is_config_secret(f"tabjob:{key}"):
        # The value would sit in the stack file in plain text.
        raise ValueError(f"tabjob:{key} must be a secret: pulumi config set --secret {key} ...")
    return value


def alerting_settings(r: Reader, *, monitoring: bool) -> AlertingSettings | None:
    """The stack's receivers, or None when `tabjob:alerting` is unset or empty.

    Raises:
        ValueError: on unknown or missing fields, malformed addresses or URLs, a secret without
            its receiver (or stored in plain text), or alerting without `tabjob:monitoring`.
    """
    value = r.mapping("alerting")
    password = _secret(r, SMTP_PASSWORD_KEY)
    slack_url = _secret(r, SLACK_WEBHOOK_URL_KEY)
    unknown = set(value) - set(_FIELDS)
    if unknown:
        raise ValueError(f"tabjob:alerting takes {', '.join(_FIELDS)}; unknown: {sorted(unknown)}")
    if not value:
        if password is not None or slack_url is not None:
            raise ValueError(f"tabjob:{SMTP_PASSWORD_KEY}/{SLACK_WEBHOOK_URL_KEY} are set but tabjob:alerting is not")
        return None
    if not monitoring:
        raise ValueError("tabjob:alerting configures kube-prometheus-stack's Alertmanager: set tabjob:monitoring true")
    slack = _section(value, "slack")
    if (slack is None) != (slack_url is None):
        raise ValueError(
            f"tabjob:alerting.slack and tabjob:{SLACK_WEBHOOK_URL_KEY} (secret, the incoming webhook's URL) go together"
        )
    settings = AlertingSettings(
        email=_email(_section(value, "email"), password),
        slack=SlackReceiver(channel=slack["channel"], webhook_url=slack_url) if slack and slack_url else None,
        webhook_url=_url(_section(value, "webhook"), "webhook"),
        heartbeat_url=_url(_section(value, "heartbeat"), "heartbeat"),
    )
    if settings.email is None and settings.slack is None and settings.webhook_url is None:
        raise ValueError(
            "tabjob:alerting needs a receiver for the alerts: email, slack or webhook (heartbeat is only Watchdog's)"
        )
    return settings
