"""The chart's monitoring objects: ServiceMonitor, PodMonitor, PrometheusRule and the Grafana
dashboard ConfigMap, off by default and on in the GKE scenario.

The Prometheus Operator's CRDs are not vendored, so their structure is checked here against the
fields the operator documents; every PromQL expression (rules and dashboard) must parse with
`promtool` (where installed) and may only query metrics the app really exports (scraped from the
real API on the real broker) or kube-state-metrics' and KEDA's own.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml
from chart_render import (
    MONITORING_KINDS,
    REPO_ROOT,
    by_kind,
    named,
    objects_of,
    pod_templates,
    render_objects,
    scenario_files,
)

PROMTOOL = shutil.which("promtool")
GKE = "gke"
# Metrics other exporters provide, which the rules and the dashboard may use.
EXTERNAL_METRICS = frozenset(
    {
        "kube_pod_container_status_restarts_total",  # kube-state-metrics
        "kube_deployment_status_replicas_available",
        "kube_node_status_allocatable",
        "keda_scaler_metrics_value",  # KEDA's operator
    }
)
REQUIRED_ALERTS = frozenset(
    {
        "TabjobJobFailureRateHigh",
        "TabjobJobsWaitingTooLong",
        "TabjobLaneHasWorkButNoWorker",
        "TabjobWorkerRestarting",
        "TabjobApiNotReady",
        "TabjobGpuJobsPendingNoGpuNode",
    }
)
_DURATION = {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["matchLabels"],
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["port", "path"],
    "properties": {"port": {"type": "string"}, "path": {"const": "/metrics"}, "scheme": {"enum": ["http", "https"]}}
    | {"interval": _DURATION}
    # The scrape token from the app's Secret (test_chart_scrape_paths.py checks it against the CRD).
    | {"authorization": {"type": "object", "required": ["type", "credentials"]}},
}
_NAMESPACES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
}
# The parts of the Prometheus Operator's CRDs (monitoring.coreos.com/v1) the chart uses.
SPEC_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "additionalProperties": False,
        "required": ["selector", "endpoints"],
        "properties": {
            "selector": _SELECTOR,
            "namespaceSelector": _NAMESPACES,
            "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
        },
    },
    "PodMonitor": {
        "type": "object",
        "additionalProperties": False,
        "required": ["selector", "podMetricsEndpoints"],
        "properties": {
            "selector": _SELECTOR,
            "namespaceSelector": _NAMESPACES,
            "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
        },
    },
    "PrometheusRule": {
        "type": "object",
        "additionalProperties": False,
        "required": ["groups"],
        "properties": {
            "groups": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "rules"],
                    "properties": {
                        "name": {"type": "string"},
                        "rules": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["alert", "expr", "for", "labels", "annotations"],
                                "properties": {
                                    "alert": {"type": "string", "pattern": "^Tabjob[A-Za-z]+$"},
                                    "expr": {"type": "string", "minLength": 1},
                                    "for": _DURATION,
                                    "labels": {
                                        "type": "object",
                                        "required": ["severity"],
                                        "properties": {"severity": {"enum": ["warning", "critical"]}},
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "annotations": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["summary", "description", "runbook_url"],
                                        "properties": {
                                            "summary": {"type": "string", "minLength": 10},
                                            "description": {"type": "string", "minLength": 20},
                                            "runbook_url": {"type": "string", "pattern": "^https?://.+#[a-z]+$"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            }
        },
    },
}


def gke_objects() -> list[dict[str, Any]]:
    return objects_of(scenario_files(GKE))


def rules_of(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    [rule_object] = by_kind(objects, "PrometheusRule")
    return [rule for group in rule_object["spec"]["groups"] for rule in group["rules"]]


def dashboard_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    config_map = named(objects, "ConfigMap", "tabjob-grafana-dashboard")
    return json.loads(config_map["data"]["tabjob.json"])


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every panel query, with Grafana's variables replaced by values Prometheus accepts."""
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    return [e.replace("$__rate_interval", "5m").replace("$namespace", "tabjob") for e in exprs]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (strings, label matchers, ranges, grouping
    clauses and function names removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    keywords = {"by", "without", "on", "ignoring", "and", "or", "unless", "bool", "offset", "inf", "nan"}
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group(0) in keywords:
            continue  # a function or an operator
        names.add(match.group(0))
    return names


def test_monitoring_is_off_by_default() -> None:
    objects = render_objects({})
    assert not [obj for obj in objects if obj["kind"] in MONITORING_KINDS]
    assert not [obj for obj in by_kind(objects, "ConfigMap") if "grafana_dashboard" in obj["metadata"]["labels"]]
    assert all(p["metadata"]["name"] != "tabjob-worker-metrics" for p in by_kind(objects, "NetworkPolicy"))


def test_gke_scenario_turns_every_monitoring_object_on() -> None:
    objects = gke_objects()
    assert {obj["kind"] for obj in objects} >= MONITORING_KINDS
    for obj in objects:
        if obj["kind"] in MONITORING_KINDS:
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # the operator's selector
            errors = sorted(jsonschema.Draft7Validator(SPEC_SCHEMAS[obj["kind"]]).iter_errors(obj["spec"]), key=str)
            assert not errors, f"{obj['kind']}: {errors[0].message} at {list(errors[0].absolute_path)}"
    dashboard = named(objects, "ConfigMap", "tabjob-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_service_monitor_scrapes_the_api_service_port() -> None:
    objects = gke_objects()
    [monitor] = by_kind(objects, "ServiceMonitor")
    service = named(objects, "Service", "tabjob-api")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]


def test_pod_monitor_scrapes_every_worker_pod_on_its_health_port() -> None:
    objects = gke_objects()
    [monitor] = by_kind(objects, "PodMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    workers = [(w, t) for w, t in pod_templates(objects) if "worker" in w]
    assert len(workers) == 3  # small, large and the GPU ScaledJob
    for where, template in workers:
        assert selector.items() <= template["metadata"]["labels"].items(), where
        ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports, where
    api = [t for w, t in pod_templates(objects) if "api" in w]
    assert not selector.items() <= api[0]["metadata"]["labels"].items()


def test_prometheus_may_reach_the_workers_health_port_and_nothing_else() -> None:
    policy = named(gke_objects(), "NetworkPolicy", "tabjob-worker-metrics")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 8001, "protocol": "TCP"}]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def test_rules_cover_the_alerts_on_call_needs_with_runbooks_in_the_docs() -> None:
    rules = rules_of(gke_objects())
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    docs = (REPO_ROOT / "docs" / "observability.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-")) for h in re.findall(r"^#+ (.+)$", docs, re.M)
    }
    for rule in rules:
        assert rule["annotations"]["runbook_url"].split("#")[1] in anchors, rule["alert"]
        assert "tabjob" in rule["expr"] or "kube_" in rule["expr"]
    waits = {rule["labels"]["lane"]: rule["expr"] for rule in rules if rule["alert"] == "TabjobJobsWaitingTooLong"}
    assert set(waits) == {"small", "large", "gpu"} and waits["small"].rstrip().endswith("> 300")


def test_gpu_alert_follows_the_gpu_lane() -> None:
    values = {"monitoring": {"prometheusRule": {"enabled": True}}}
    assert "TabjobGpuJobsPendingNoGpuNode" not in {r["alert"] for r in rules_of(render_objects(values))}


def test_thresholds_come_from_values() -> None:
    rule = {"enabled": True, "failureRatio": 0.5, "maxQueueWaitS": {"small": 60, "large": 600, "gpu": 7200}}
    rules = rules_of(render_objects({"monitoring": {"prometheusRule": rule}}))
    [failure] = [r for r in rules if r["alert"] == "TabjobJobFailureRateHigh"]
    assert ") > 0.5\n" in failure["expr"]
    assert any(r["expr"].rstrip().endswith("> 60") for r in rules if r["alert"] == "TabjobJobsWaitingTooLong")


def test_values_schema_refuses_unknown_monitoring_keys() -> None:
    with pytest.raises(helm.HelmValuesError):
        render_objects({"monitoring": {"serviceMonitor": {"enabled": True, "port": 9090}}})
    with pytest.raises(helm.HelmValuesError):
        render_objects({"monitoring": {"prometheusRule": {"failureRatio": 2}}})


def test_dashboard_is_a_grafana_dashboard_on_a_chosen_data_source() -> None:
    dashboard = dashboard_of(gke_objects())
    assert dashboard["uid"] == "tabjob-overview" and dashboard["title"] == "tabjob"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus" and "namespace" in variables
    queries = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(queries) >= 15
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in queries:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        assert all("$namespace" in t["expr"] or "kube_node" in t["expr"] for t in panel["targets"]), panel["title"]


@pytest.fixture(scope="module")
def exported_metrics(settings) -> set[str]:
    """Metric names a real API and worker export: scraped from the app on the real broker,
    families without samples included (their # TYPE line), expanded to their sample names."""
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text  # the API (and the worker's metrics: same registry)
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        # The text format's # TYPE line names a counter with its _total already.
        suffixes = {"histogram": ["_bucket", "_count", "_sum"]}.get(kind, [""])
        names.update(name + suffix for suffix in suffixes)
    return {n for n in names if n.startswith("tabjob_")}


def test_every_query_uses_only_metrics_that_exist(exported_metrics: set[str]) -> None:
    objects = gke_objects()
    exprs = [rule["expr"] for rule in rules_of(objects)] + dashboard_exprs(dashboard_of(objects))
    used = set().union(*(metric_names(e) for e in exprs))
    assert {"tabjob_jobs_total", "tabjob_job_failures_total", "tabjob_queue_messages"} <= used
    unknown = used - exported_metrics - EXTERNAL_METRICS
    assert not unknown, f"queried but exported by nobody: {sorted(unknown)}"


def test_metric_name_extraction_ignores_functions_labels_and_grouping() -> None:
    expr = 'sum by (lane) (rate(a_total{code=~"x|y"}[5m])) / on (lane) b unless on () (sum(c) > 0)'
    assert metric_names(expr) == {"a_total", "b", "c"}


def _promtool_check(rules: dict[str, Any], tmp_path: Path) -> None:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus)")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_pass_promtool(tmp_path: Path) -> None:
    [rule_object] = by_kind(gke_objects(), "PrometheusRule")
    _promtool_check(rule_object["spec"], tmp_path)


def test_dashboard_queries_parse_with_promtool(tmp_path: Path) -> None:
    exprs = dashboard_exprs(dashboard_of(gke_objects()))
    records = [{"record": f"tabjob:dashboard_query_{i}:value", "expr": e} for i, e in enumerate(exprs)]
    _promtool_check({"groups": [{"name": "dashboard", "rules": records}]}, tmp_path)


def test_promtool_catches_a_broken_expression(tmp_path: Path) -> None:
    broken = {"groups": [{"name": "x", "rules": [{"alert": "X", "expr": "sum by (lane (tabjob_jobs_total)"}]}]}
    with pytest.raises(AssertionError):
        _promtool_check(broken, tmp_path)
