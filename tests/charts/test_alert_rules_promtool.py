"""Every alert of the chart's PrometheusRule fires on series that should fire it and stays quiet
on series that should not, checked by Prometheus' own rule evaluator: `promtool test rules`
(https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/).

The rules are rendered from the chart as the GKE scenario deploys them; their annotations (text
for people, with templates) are left out here: the runbook test checks them, this one the
expressions, `for` durations and labels."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_render import by_kind
from test_chart_observability import gke_objects

PROMTOOL = shutil.which("promtool")
NS = 'namespace="tabjob"'


def case(alert: str, eval_time: str, series: dict[str, str], fires: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {"eval_time": eval_time, "alertname": alert, "exp_alerts": [{"exp_labels": labels} for labels in fires]}
        ],
    }


def failed(lane: str, per_min: int) -> dict[str, str]:
    return {
        f'tabjob_job_failures_total{{{NS},lane="{lane}",kind="fit",code="job.timeout"}}': f"0+{per_min}x60",
        f'tabjob_jobs_total{{{NS},lane="{lane}",kind="fit",model="hgb",status="failed"}}': f"0+{per_min}x60",
    }


CASES = [
    # A quarter of the jobs failing on a lane with traffic, for 10 minutes.
    case("TabjobJobFailureRateHigh", "30m", failed("small", 1),
         [{"namespace": "tabjob", "lane": "small", "severity": "warning"}]),
    case("TabjobJobFailureRateHigh", "30m",
         {**failed("small", 1),
          f'tabjob_jobs_total{{{NS},lane="small",kind="fit",model="hgb",status="finished"}}': "0+10x60"}, []),
    case("TabjobPlatformFailures", "10m",
         {f'tabjob_job_failures_total{{{NS},lane="large",kind="fit",code="platform.store_unavailable"}}': "0+1x20"},
         [{"namespace": "tabjob", "lane": "large", "code": "platform.store_unavailable", "severity": "critical"}]),
    case("TabjobPlatformFailures", "10m",
         {f'tabjob_job_failures_total{{{NS},lane="large",kind="fit",code="dataset.missing_target"}}': "0+1x20"}, []),
    case("TabjobJobsWaitingTooLong", "10m", {f'tabjob_oldest_queued_job_age_seconds{{{NS},lane="small"}}': "400x20"},
         [{"namespace": "tabjob", "lane": "small", "severity": "warning"}]),
    case("TabjobJobsWaitingTooLong", "10m", {f'tabjob_oldest_queued_job_age_seconds{{{NS},lane="small"}}': "200x20",
                                             f'tabjob_oldest_queued_job_age_seconds{{{NS},lane="large"}}': "1000x20"},
         []),
    case("TabjobLaneHasWorkButNoWorker", "15m", {f'tabjob_queue_messages{{{NS},lane="small"}}': "3x30"},
         [{"namespace": "tabjob", "lane": "small", "severity": "critical"}]),
    case("TabjobLaneHasWorkButNoWorker", "15m", {f'tabjob_queue_messages{{{NS},lane="small"}}': "3x30",
                                                 f'tabjob_workers{{{NS},lane="small",state="idle"}}': "1x30"}, []),
    case("TabjobWorkerRestarting", "35m",
         {f'kube_pod_container_status_restarts_total{{{NS},pod="tabjob-worker-small-7c9d",container="worker"}}':
          "0+1x40"},
         [{"namespace": "tabjob", "lane": "small", "pod": "tabjob-worker-small-7c9d", "severity": "warning"}]),
    case("TabjobWorkerRestarting", "35m",
         {f'kube_pod_container_status_restarts_total{{{NS},pod="tabjob-worker-small-7c9d",container="worker"}}':
          "0x30 1 2"}, []),
    case("TabjobGpuJobsPendingNoGpuNode", "30m", {f'tabjob_jobs_queued{{{NS},lane="gpu"}}': "1x40"},
         [{"namespace": "tabjob", "lane": "gpu", "severity": "warning"}]),
    case("TabjobGpuJobsPendingNoGpuNode", "30m",
         {f'tabjob_jobs_queued{{{NS},lane="gpu"}}': "1x40",
          'kube_node_status_allocatable{node="gpu-1",resource="nvidia_com_gpu",unit="integer"}': "1x40"}, []),
    case("TabjobApiNotReady", "5m",
         {f'kube_deployment_status_replicas_available{{{NS},deployment="tabjob-api"}}': "0x10"},
         [{"namespace": "tabjob", "deployment": "tabjob-api", "severity": "critical"}]),
    case("TabjobApiNotReady", "5m",
         {f'kube_deployment_status_replicas_available{{{NS},deployment="tabjob-api"}}': "2x10"}, []),
    case("TabjobBrokerUnreachable", "5m", {f'tabjob_broker_up{{{NS},pod="tabjob-api-1"}}': "0x10"},
         [{"namespace": "tabjob", "severity": "critical"}]),
    case("TabjobBrokerUnreachable", "5m", {f'tabjob_broker_up{{{NS},pod="tabjob-api-1"}}': "1x10"}, []),
]  # fmt: skip


def rules_without_annotations() -> dict[str, Any]:
    [rule_object] = by_kind(gke_objects(), "PrometheusRule")
    groups = []
    for group in rule_object["spec"]["groups"]:
        rules = [{k: v for k, v in rule.items() if k != "annotations"} for rule in group["rules"]]
        groups.append({**group, "rules": rules})
    return {"groups": groups}


def test_every_alert_has_a_firing_and_a_quiet_case():
    alerts = {rule["alert"] for group in rules_without_annotations()["groups"] for rule in group["rules"]}
    tested = {(c["alert_rule_test"][0]["alertname"], bool(c["alert_rule_test"][0]["exp_alerts"])) for c in CASES}
    assert tested == {(alert, fires) for alert in alerts for fires in (True, False)}


def test_promtool_evaluates_every_alert_as_expected(tmp_path: Path):
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus)")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules_without_annotations()))
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": CASES}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_would_catch_an_alert_that_stopped_firing(tmp_path: Path):
    """The check can fail: the same cases against a failure-rate threshold no series reaches."""
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus)")
    rules = rules_without_annotations()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == "TabjobJobFailureRateHigh":
                rule["expr"] = rule["expr"].replace("> 0.25", "> 2")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": CASES[:1]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    done = subprocess.run([PROMTOOL, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0 and "TabjobJobFailureRateHigh" in done.stdout + done.stderr
