"""Alertmanager's configuration from `tabjob:alerting`: kube-prometheus-stack's `alertmanager.config`
value, and the Secret its receivers' credentials are read from.

kube-prometheus-stack's default configuration routes every alert to a receiver named `null`
(its values.yaml, `alertmanager.config`). Helm merges maps but replaces lists, so this module
writes the whole configuration and keeps the defaults that matter: `resolve_timeout`, the
`null` receiver for info alerts and InfoInhibitor, the severity inhibitions, the template path.

Credentials are never inlined: they live in a Secret listed in `alertmanagerSpec.secrets`, which
the Prometheus Operator mounts at `/etc/alertmanager/secrets/<secret-name>/<key>`
(prometheus-operator, pkg/apis/monitoring/v1/alertmanager_types.go, `Secrets`), and the
configuration points at those files with Alertmanager's `_file` fields
(https://prometheus.io/docs/alerting/latest/configuration/: `smtp_auth_password_file` and
`slack_api_url_file` in `global`, since Alertmanager 0.25). Alertmanager reads them on every
notification (notify/email/email.go `getPassword`, notify/slack/slack.go), so a rotated secret
needs no restart.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.config_alerting import AlertingSettings

RECEIVERS_SECRET = "tabjob-alertmanager-receivers"
SECRETS_DIR = f"/etc/alertmanager/secrets/{RECEIVERS_SECRET}"
SMTP_PASSWORD_FILE_KEY = "smtp-password"
SLACK_WEBHOOK_URL_FILE_KEY = "slack-webhook-url"

NULL_RECEIVER = "null"  # kube-prometheus-stack's: notifies nobody
CRITICAL_RECEIVER = "tabjob-critical"
WARNING_RECEIVER = "tabjob-warning"
HEARTBEAT_RECEIVER = "heartbeat"

# Every tabjob alert's name starts with this (tests/charts checks the rule names).
TABJOB_ALERTS = "Tabjob.+"
# One notification per alert and lane: a broken lane does not hide behind another one.
TABJOB_GROUP_BY = ["alertname", "lane"]
GROUP_WAIT = "30s"  # lets the lanes of one incident arrive in the same first notification
GROUP_INTERVAL = "5m"  # a new alert in a group that already notified waits at most this
CRITICAL_REPEAT_INTERVAL = "4h"
WARNING_REPEAT_INTERVAL = "12h"  # kube-prometheus-stack's default
# Watchdog always fires; the dead man's switch expects a ping about every 5 minutes and raises
# its own alarm when they stop (Prometheus, Alertmanager or the path out is down).
HEARTBEAT_GROUP_INTERVAL = "1m"
HEARTBEAT_REPEAT_INTERVAL = "5m"

BROKER_ALERT = "TabjobBrokerUnreachable"
# What a broker outage causes: workers cannot take work (lanes look workerless, jobs wait) and
# the API's readiness probe, which checks the broker, fails; one page says it all.
CAUSED_BY_BROKER = ("TabjobLaneHasWorkButNoWorker", "TabjobJobsWaitingTooLong", "TabjobApiNotReady")

# kube-prometheus-stack's own inhibitions (values.yaml `alertmanager.config.inhibit_rules`):
# a critical alert silences the warning/info of the same name, InfoInhibitor silences info.
CHART_INHIBIT_RULES: list[dict[str, Any]] = [
    {
        "source_matchers": ["severity = critical"],
        "target_matchers": ["severity =~ warning|info"],
        "equal": ["namespace", "alertname"],
    },
    {
        "source_matchers": ["severity = warning"],
        "target_matchers": ["severity = info"],
        "equal": ["namespace", "alertname"],
    },
    {"source_matchers": ["alertname = InfoInhibitor"], "target_matchers": ["severity = info"], "equal": ["namespace"]},
    {"target_matchers": ["alertname = InfoInhibitor"]},
]
CHART_TEMPLATES = ["/etc/alertmanager/config/*.tmpl"]

SLACK_TITLE = (
    "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}{{ with .CommonLabels.lane }} ({{ . }} lane){{ end }}"
)
SLACK_TEXT = (
    "{{ range .Alerts }}{{ .Annotations.summary }}"
    "{{ with .Annotations.runbook_url }} <{{ . }}|runbook>{{ end }}\n{{ end }}"
)


def _receivers(settings: AlertingSettings) -> list[dict[str, Any]]:
    email = [{"to": ", ".join(settings.email.to), "send_resolved": True}] if settings.email else []
    slack = (
        [{"channel": settings.slack.channel, "send_resolved": True, "title": SLACK_TITLE, "text": SLACK_TEXT}]
        if settings.slack
        else []
    )
    webhook = [{"url": settings.webhook_url, "send_resolved": True}] if settings.webhook_url else []
    critical = {"name": CRITICAL_RECEIVER}
    for field, configs in (("email_configs", email), ("slack_configs", slack), ("webhook_configs", webhook)):
        if configs:
            critical[field] = configs
    # Warnings go to the quietest channel there is: chat, then a webhook, e-mail only when alone.
    if slack:
        warning: dict[str, Any] = {"name": WARNING_RECEIVER, "slack_configs": slack}
    elif webhook:
        warning = {"name": WARNING_RECEIVER, "webhook_configs": webhook}
    else:
        warning = {"name": WARNING_RECEIVER, "email_configs": email}
    receivers = [{"name": NULL_RECEIVER}, critical, warning]
    if settings.heartbeat_url:
        receivers.append(
            {"name": HEARTBEAT_RECEIVER, "webhook_configs": [{"url": settings.heartbeat_url, "send_resolved": False}]}
        )
    return receivers


def _route(settings: AlertingSettings) -> dict[str, Any]:
    watchdog: dict[str, Any] = {"receiver": NULL_RECEIVER, "matchers": ['alertname = "Watchdog"']}
    if settings.heartbeat_url:
        watchdog = {
            "receiver": HEARTBEAT_RECEIVER,
            "matchers": ['alertname = "Watchdog"'],
            "group_wait": "0s",
            "group_interval": HEARTBEAT_GROUP_INTERVAL,
            "repeat_interval": HEARTBEAT_REPEAT_INTERVAL,
        }
    # kube-prometheus-stack's InfoInhibitor only silences info alerts; its rule says to route it
    # to a null receiver (templates/prometheus/rules-1.14/general.rules.yaml).
    info_inhibitor = {"receiver": NULL_RECEIVER, "matchers": ['alertname = "InfoInhibitor"']}
    tabjob = {
        "receiver": WARNING_RECEIVER,  # a tabjob alert always reaches someone, whatever its severity
        "matchers": [f'alertname =~ "{TABJOB_ALERTS}"'],
        "group_by": TABJOB_GROUP_BY,
        "group_wait": GROUP_WAIT,
        "group_interval": GROUP_INTERVAL,
        "repeat_interval": WARNING_REPEAT_INTERVAL,
        "routes": [
            {
                "receiver": CRITICAL_RECEIVER,
                "matchers": ['severity = "critical"'],
                "repeat_interval": CRITICAL_REPEAT_INTERVAL,
            }
        ],
    }
    # The cluster's own critical alerts (kube-prometheus-stack's rules: nodes, Prometheus,
    # Alertmanager itself) go to the quiet channel; its warnings and info stay where the chart
    # sends them, nowhere, as many fire on managed control planes that cannot be scraped.
    cluster_critical = {"receiver": WARNING_RECEIVER, "matchers": ['severity = "critical"']}
    return {
        "receiver": NULL_RECEIVER,
        "group_by": ["namespace"],
        "group_wait": GROUP_WAIT,
        "group_interval": GROUP_INTERVAL,
        "repeat_interval": WARNING_REPEAT_INTERVAL,
        "routes": [watchdog, info_inhibitor, tabjob, cluster_critical],
    }


def _global(settings: AlertingSettings) -> dict[str, Any]:
    settings_global: dict[str, Any] = {"resolve_timeout": "5m"}
    if settings.email:
        settings_global.update(
            smtp_from=settings.email.sender,
            smtp_smarthost=settings.email.smarthost,
            smtp_require_tls=True,
        )
        if settings.email.username:
            settings_global["smtp_auth_username"] = settings.email.username
            settings_global["smtp_auth_password_file"] = f"{SECRETS_DIR}/{SMTP_PASSWORD_FILE_KEY}"
    if settings.slack:
        settings_global["slack_api_url_file"] = f"{SECRETS_DIR}/{SLACK_WEBHOOK_URL_FILE_KEY}"
    return settings_global


def alertmanager_config(settings: AlertingSettings) -> dict[str, Any]:
    """kube-prometheus-stack's `alertmanager.config`: receivers, routes and inhibitions."""
    broker_inhibition = {
        "source_matchers": [f'alertname = "{BROKER_ALERT}"'],
        "target_matchers": [f'alertname =~ "{"|".join(CAUSED_BY_BROKER)}"'],
        "equal": ["namespace"],
    }
    return {
        "global": _global(settings),
        "inhibit_rules": [*CHART_INHIBIT_RULES, broker_inhibition],
        "route": _route(settings),
        "receivers": _receivers(settings),
        "templates": CHART_TEMPLATES,
    }


def receiver_secrets(settings: AlertingSettings) -> dict[str, pulumi.Output[str]]:
    """The Secret's entries (file name to secret value) the configuration's `_file` fields read."""
    data: dict[str, pulumi.Output[str]] = {}
    if settings.email and settings.email.password is not None:
        # Alertmanager sends the file's bytes as they are: a newline from `pulumi config set`
        # reading stdin would become part of the password.
        data[SMTP_PASSWORD_FILE_KEY] = settings.email.password.apply(lambda p: p.rstrip("\r\n"))
    if settings.slack:
        data[SLACK_WEBHOOK_URL_FILE_KEY] = settings.slack.webhook_url
    return data


def alertmanager_values(settings: AlertingSettings) -> dict[str, Any]:
    """kube-prometheus-stack's `alertmanager` values for these receivers."""
    values: dict[str, Any] = {"config": alertmanager_config(settings)}
    if (settings.email and settings.email.password is not None) or settings.slack:
        values["alertmanagerSpec"] = {"secrets": [RECEIVERS_SECRET]}
    return values
