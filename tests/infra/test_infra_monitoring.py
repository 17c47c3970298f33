"""`tabjob:monitoring`: the stack installs kube-prometheus-stack (pinned, from the
prometheus-community repository) before the app, and the app's chart turns on its monitors,
alerts and dashboard, which the real Helm engine renders."""

from __future__ import annotations

import helm_python as helm
import pytest
import safe_yaml
from infra_harness import DIGEST, GPU_DIGEST, run_program, stack_config

from infra.app import CHART_PATH, RELEASE_NAME
from infra.config import DEFAULTS, load_config
from infra.platform.monitoring import MONITORING_NAMESPACE, PROMETHEUS_COMMUNITY_REPOSITORY

RELEASE = "kubernetes:helm.sh/v3:Release"


def _run(stack: str, **extra: object):
    config = stack_config(stack) | {"imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST} | extra
    return run_program(stack, config)


@pytest.fixture(scope="module")
def monitored():
    return _run("dev", monitoring=True)


def test_monitoring_is_off_unless_asked(deployed_stacks):
    for run in deployed_stacks.values():
        assert [r.inputs["chart"] for r in run.of_type(RELEASE) if r.inputs["chart"] == "kube-prometheus-stack"] == []
        assert "monitoring" not in run.one(RELEASE, "tabjob").inputs["values"]


def test_the_stack_installs_a_pinned_kube_prometheus_stack(monitored):
    stack = monitored.one(RELEASE, "monitoring")
    assert stack.inputs["chart"] == "kube-prometheus-stack"
    assert stack.inputs["version"] == DEFAULTS["kubePrometheusStackVersion"]
    assert stack.inputs["repositoryOpts"] == {"repo": PROMETHEUS_COMMUNITY_REPOSITORY}
    assert stack.inputs["namespace"] == MONITORING_NAMESPACE and stack.inputs["createNamespace"] is True
    values = stack.inputs["values"]
    dashboards = values["grafana"]["sidecar"]["dashboards"]
    assert dashboards["label"] == "grafana_dashboard" and dashboards["labelValue"] == "1"
    # Grafana's admin password is generated, never the chart's well-known default.
    assert values["grafana"]["adminPassword"] not in ("", "prom-operator")


def test_the_app_chart_turns_its_monitors_on_for_that_prometheus(monitored):
    values = monitored.one(RELEASE, "tabjob").inputs["values"]["monitoring"]
    assert values["labels"] == {"release": monitored.one(RELEASE, "monitoring").inputs["name"]}
    assert values["prometheusNamespace"] == MONITORING_NAMESPACE
    for part in ("serviceMonitor", "podMonitor", "prometheusRule", "grafanaDashboard"):
        assert values[part] == {"enabled": True}, part


def test_the_app_values_render_the_monitoring_objects(monitored):
    values = monitored.one(RELEASE, "tabjob").inputs["values"]
    with helm.Chart.load(CHART_PATH) as chart:
        files = chart.render(values, name=RELEASE_NAME, namespace="tabjob")
    docs = [doc for path, text in files.items() if path.endswith(".yaml") for doc in safe_yaml.load_all(text)]
    kinds = {doc["kind"] for doc in docs if doc}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} <= kinds


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_gke_stacks_can_turn_it_on_too(stack):
    run = _run(stack, monitoring=True, kubePrometheusStackVersion="80.0.1")
    assert run.one(RELEASE, "monitoring").inputs["version"] == "80.0.1"
    assert run.one(RELEASE, "tabjob").inputs["values"]["monitoring"]["podMonitor"] == {"enabled": True}


def test_a_bad_version_or_flag_is_refused():
    import pulumi
    from infra_harness import configure

    configure("dev", stack_config("dev") | {"monitoring": True, "kubePrometheusStackVersion": "latest"})
    with pytest.raises(ValueError, match="kubePrometheusStackVersion"):
        load_config(pulumi.Config("tabjob"))
    configure("dev", stack_config("dev") | {"monitoring": "yes"}, cli=False)  # the CLI refuses it first
    with pytest.raises(ValueError, match="tabjob:monitoring must be true or false"):
        load_config(pulumi.Config("tabjob"))
