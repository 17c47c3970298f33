"""Alertmanager's own tools on the configuration the program passes: `amtool check-config`, then
`amtool config routes test` for every alert the chart's PrometheusRule raises (fired by
Prometheus's rule engine, so with the labels its rule gives it), and the real Alertmanager for
the inhibitions (amtool cannot test those).

Debian's `prometheus-alertmanager` ships amtool and the server, `prometheus` ships promtool
(.ci/run installs both); the tests skip, saying so, where they are missing.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alert_firing import (
    ALERTMANAGER,
    AMTOOL,
    INFO_INHIBITOR,
    PROMTOOL,
    WATCHDOG,
    chart_rules,
    fired_alerts,
)
from alertmanager_server import listed_alerts, post_alerts, running_alertmanager, write_config
from infra_harness import DIGEST, GPU_DIGEST, StackRun, run_program, stack_config

from infra.platform.alerting import (
    BROKER_ALERT,
    CAUSED_BY_BROKER,
    CRITICAL_RECEIVER,
    HEARTBEAT_RECEIVER,
    NULL_RECEIVER,
    WARNING_RECEIVER,
)

RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "tabjob"
EMAIL = {"to": "oncall@example.com", "from": "alertmanager@example.com", "smarthost": "smtp.example.com:587"}
SMTP_AUTH = {"username": "alertmanager@example.com"}
SLACK = {"channel": "#tabjob-alerts"}
# Stacks as an operator would configure them: the receivers, and the secrets they need.
RECEIVER_SETS: dict[str, dict[str, Any]] = {
    "email": {"alerting": {"email": EMAIL | SMTP_AUTH}, "alertSmtpPassword": "smtp-password"},
    "email-slack-heartbeat": {
        "alerting": {"email": EMAIL | SMTP_AUTH, "slack": SLACK, "heartbeat": {"url": "https://hc-ping.com/0f1e"}},
        "alertSmtpPassword": "smtp-password",
        "alertSlackWebhookUrl": "https://hooks.slack.com/services/T0/B0/x",
    },
    "email-relay-webhook": {"alerting": {"email": EMAIL, "webhook": {"url": "https://hooks.example.com/am"}}},
    "webhook": {"alerting": {"webhook": {"url": "https://hooks.example.com/am"}}},
    "slack": {"alerting": {"slack": SLACK}, "alertSlackWebhookUrl": "https://hooks.slack.com/services/T0/B0/x"},
}
SENDERS = ("email_configs", "slack_configs", "webhook_configs")

needs_amtool = pytest.mark.skipif(
    AMTOOL is None or PROMTOOL is None,
    reason="amtool and promtool are not installed (apt-get install -y prometheus-alertmanager prometheus)",
)


def _staging(**extra: Any) -> StackRun:
    config = stack_config("staging") | {"imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST, "monitoring": True}
    return run_program("staging", config | extra)


def alertmanager_config(run: StackRun) -> dict[str, Any]:
    """The `alertmanager.config` value the program passes to kube-prometheus-stack."""
    return run.one(RELEASE, "monitoring").inputs["values"]["alertmanager"]["config"]


@pytest.fixture(scope="module")
def configs() -> dict[str, dict[str, Any]]:
    return {name: alertmanager_config(_staging(**extra)) for name, extra in RECEIVER_SETS.items()}


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    """Every alert of the staging stack's PrometheusRule (the GPU lane's included), fired."""
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus)")
    values = _staging().one(RELEASE, "tabjob").inputs["values"]
    return fired_alerts(chart_rules(values, NAMESPACE), NAMESPACE, tmp_path_factory.mktemp("rules"))


def routed_receivers(path: Path, labels: dict[str, str]) -> list[str]:
    """`amtool config routes test`: the receivers Alertmanager's routing tree picks for `labels`."""
    assert AMTOOL is not None
    matchers = [f"{k}={json.dumps(v)}" for k, v in labels.items()]
    done = subprocess.run(
        [AMTOOL, "config", "routes", "test", f"--config.file={path}", *matchers],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1].split(",")


@needs_amtool
@pytest.mark.parametrize("name", sorted(RECEIVER_SETS))
def test_amtool_accepts_the_configuration(configs, name, tmp_path):
    done = subprocess.run(
        [AMTOOL, "check-config", str(write_config(configs[name], tmp_path))], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_amtool
def test_amtool_refuses_a_broken_configuration(configs, tmp_path):
    broken = json.loads(json.dumps(configs["email"]))
    broken["route"]["routes"][0]["receiver"] = "pager"  # no such receiver
    done = subprocess.run([AMTOOL, "check-config", str(write_config(broken, tmp_path))], capture_output=True, text=True)
    assert done.returncode != 0 and "pager" in done.stdout + done.stderr


def _quietest(alerting: dict[str, Any]) -> str:
    return next(
        sender
        for key, sender in (("slack", "slack_configs"), ("webhook", "webhook_configs"), ("email", "email_configs"))
        if key in alerting
    )


@needs_amtool
@pytest.mark.parametrize("name", sorted(RECEIVER_SETS))
def test_every_tabjob_alert_reaches_a_receiver_that_sends(configs, alerts, name, tmp_path):
    config = configs[name]
    alerting = RECEIVER_SETS[name]["alerting"]
    path = write_config(config, tmp_path)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert len(alerts) >= 8, sorted(alerts)
    for alertname, instances in alerts.items():
        for labels in instances:
            [receiver] = routed_receivers(path, labels)
            senders = {key for key in SENDERS if receivers[receiver].get(key)}
            assert senders, f"{alertname} {labels}: {receiver} sends nothing"
            if labels["severity"] == "critical":
                # Critical: every channel there is, e-mail and Slack included when set.
                assert receiver == CRITICAL_RECEIVER, (alertname, receiver)
                expected = {f"{key}_configs" for key in ("email", "slack", "webhook") if key in alerting}
                assert senders == expected, (alertname, senders)
            else:
                assert receiver == WARNING_RECEIVER, (alertname, receiver)
                assert senders == {_quietest(alerting)}, (alertname, senders)


@needs_amtool
def test_critical_alerts_reach_the_email_receiver_when_email_is_set(configs, alerts, tmp_path):
    path = write_config(configs["email-slack-heartbeat"], tmp_path)
    email = {r["name"]: r for r in configs["email-slack-heartbeat"]["receivers"]}[CRITICAL_RECEIVER]["email_configs"]
    assert email == [{"to": EMAIL["to"], "send_resolved": True}]
    critical = [labels for instances in alerts.values() for labels in instances if labels["severity"] == "critical"]
    assert {labels["alertname"] for labels in critical} >= {BROKER_ALERT, "TabjobApiNotReady", "TabjobPlatformFailures"}
    for labels in critical:
        assert routed_receivers(path, labels) == [CRITICAL_RECEIVER], labels


@needs_amtool
def test_watchdog_pings_the_heartbeat_when_configured_and_nobody_otherwise(configs, tmp_path):
    assert routed_receivers(write_config(configs["email-slack-heartbeat"], tmp_path), WATCHDOG) == [HEARTBEAT_RECEIVER]
    assert routed_receivers(write_config(configs["email"], tmp_path), WATCHDOG) == [NULL_RECEIVER]
    heartbeat = {r["name"]: r for r in configs["email-slack-heartbeat"]["receivers"]}[HEARTBEAT_RECEIVER]
    # A ping, not a notification: "resolved" would never come (Watchdog always fires).
    assert heartbeat["webhook_configs"] == [{"url": "https://hc-ping.com/0f1e", "send_resolved": False}]
    assert HEARTBEAT_RECEIVER not in {r["name"] for r in configs["email"]["receivers"]}


@needs_amtool
def test_the_charts_defaults_that_matter_are_kept(configs, tmp_path):
    path = write_config(configs["email"], tmp_path)
    assert routed_receivers(path, INFO_INHIBITOR) == [NULL_RECEIVER]
    # The cluster's own alerts (kube-prometheus-stack's rules): critical ones reach the quiet
    # channel, the rest stay where the chart sends them.
    node_down = {"alertname": "KubeNodeNotReady", "severity": "critical", "namespace": "kube-system"}
    assert routed_receivers(path, node_down) == [WARNING_RECEIVER]
    assert routed_receivers(path, node_down | {"severity": "warning"}) == [NULL_RECEIVER]
    assert routed_receivers(path, {"alertname": "KubeletTooManyPods", "severity": "info"}) == [NULL_RECEIVER]
    config = configs["email"]
    assert config["global"]["resolve_timeout"] == "5m"
    assert config["templates"] == ["/etc/alertmanager/config/*.tmpl"]
    inhibitions = [(r.get("source_matchers"), r["target_matchers"]) for r in config["inhibit_rules"]]
    assert (["alertname = InfoInhibitor"], ["severity = info"]) in inhibitions
    assert (["severity = critical"], ["severity =~ warning|info"]) in inhibitions


def test_grouping_and_timing_are_an_on_call_engineers(configs):
    route = configs["email"]["route"]
    [tabjob] = [r for r in route["routes"] if r["matchers"] == ['alertname =~ "Tabjob.+"']]
    assert tabjob["group_by"] == ["alertname", "lane"]
    assert (tabjob["group_wait"], tabjob["group_interval"], tabjob["repeat_interval"]) == ("30s", "5m", "12h")
    [critical] = tabjob["routes"]
    assert critical["repeat_interval"] == "4h", "a critical alert still firing is repeated more often"


# ---- inhibition, on the real Alertmanager


@pytest.fixture
def alertmanager(configs, tmp_path) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 with the e-mail stack's configuration; its API URL."""
    if ALERTMANAGER is None:
        pytest.skip("Alertmanager is not installed (apt-get install -y prometheus-alertmanager)")
    with running_alertmanager(write_config(configs["email"], tmp_path), tmp_path) as url:
        yield url


def _suppressed(url: str, expected: set[str]) -> dict[str, list[str]]:
    """Alert name to its inhibitors, once Alertmanager's inhibitor has seen the sources (it
    learns them asynchronously) and the suppressed set is `expected`, or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        listed = listed_alerts(url)
        suppressed = {a["labels"]["alertname"] for a in listed if a["status"]["state"] == "suppressed"}
        if suppressed == expected or time.monotonic() > deadline:
            return {a["labels"]["alertname"]: a["status"]["inhibitedBy"] for a in listed} | {"": sorted(suppressed)}
        time.sleep(0.2)


@pytest.mark.slow  # starts its own server process
def test_broker_unreachable_silences_the_alerts_it_causes(alertmanager, alerts):
    everything = [labels for instances in alerts.values() for labels in instances]
    post_alerts(alertmanager, everything)
    states = _suppressed(alertmanager, set(CAUSED_BY_BROKER))
    assert set(states.pop("")) == set(CAUSED_BY_BROKER)
    for name, inhibitors in states.items():
        assert bool(inhibitors) == (name in CAUSED_BY_BROKER), (name, inhibitors)


@pytest.mark.slow  # starts its own server process
def test_without_the_broker_alert_nothing_is_silenced(alertmanager, alerts):
    others = [labels for name, instances in alerts.items() if name != BROKER_ALERT for labels in instances]
    post_alerts(alertmanager, others)
    states = _suppressed(alertmanager, set())
    assert states.pop("") == []
    assert set(CAUSED_BY_BROKER) <= set(states)


# ---- the labels the routes need, from the rules


SERVICE_WIDE = frozenset({"TabjobApiNotReady", BROKER_ALERT})  # about the whole service, not a lane


def test_every_alert_carries_the_labels_routing_needs(alerts):
    """Routing reads `severity`, grouping `alertname` and `lane`, the broker inhibition
    `namespace`: each fired alert must carry them (a missing lane would merge the lanes' alerts
    into one notification, a missing severity would send a critical alert to the quiet channel)."""
    for alertname, instances in alerts.items():
        for labels in instances:
            assert labels["severity"] in ("warning", "critical"), labels
            assert labels["namespace"] == NAMESPACE, labels
            if alertname in SERVICE_WIDE:
                assert "lane" not in labels, labels
            else:
                assert labels.get("lane") in ("small", "large", "gpu"), labels
    lanes = {labels["lane"] for labels in alerts["TabjobJobsWaitingTooLong"]}
    assert lanes == {"small", "large", "gpu"}, "one alert per lane, grouped apart"


def test_the_docs_table_says_what_the_rules_do(alerts):
    docs = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^\| \[(Tabjob\w+)\]\(#\1\) \| (\w+) \| (yes|no)[^|]*\|", docs, re.M | re.I)
    }
    assert set(rows) == set(alerts)
    for alertname, (severity, per_lane) in rows.items():
        assert {labels["severity"] for labels in alerts[alertname]} == {severity}, alertname
        assert (per_lane == "yes") == (alertname not in SERVICE_WIDE), alertname
