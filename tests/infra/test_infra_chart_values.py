"""The values each stack gives charts/tabjob render with the real Helm engine.

Helm here is helm-python-sdk (Helm 4's Go library): it applies the chart's strict
values.schema.json, so a key the contract does not offer, or a wrong type, fails here
instead of at `pulumi up`.
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
import safe_yaml
from infra_harness import EXISTING_CONFIG, run_program

from infra.app import CHART_PATH, RELEASE_NAME

STACKS = ("dev", "staging", "production")


def _render(values: dict[str, Any], namespace: str = "tabjob") -> list[dict[str, Any]]:
    with helm.Chart.load(CHART_PATH) as chart:
        files = chart.render(values, name=RELEASE_NAME, namespace=namespace)
    return [
        doc for path, text in sorted(files.items()) if path.endswith(".yaml") for doc in safe_yaml.load_all(text) if doc
    ]


def _release_values(run) -> dict[str, Any]:
    return run.one("kubernetes:helm.sh/v3:Release", "tabjob").inputs["values"]


def _find(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> list[dict]:
    return [
        o
        for o in objects
        if o["kind"] == kind
        and (component is None or o["metadata"]["labels"].get("app.kubernetes.io/component") == component)
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_stack_values_render_the_chart(deployed_stacks, stack):
    objects = _render(_release_values(deployed_stacks[stack]))
    assert _find(objects, "Deployment", "api")


def test_kind_host_service_selects_the_charts_api_pods(deployed_stacks):
    run = deployed_stacks["dev"]
    selector = run.one("kubernetes:core/v1:Service", "api-host").inputs["spec"]["selector"]
    (api,) = _find(_render(_release_values(run)), "Deployment", "api")
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    ports = {p["containerPort"] for c in api["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    assert 8000 in ports


@pytest.mark.parametrize("stack", ("staging", "production"))
def test_gke_values_annotate_the_workload_identity_service_account(deployed_stacks, stack):
    objects = _render(_release_values(deployed_stacks[stack]))
    (account,) = _find(objects, "ServiceAccount")
    assert account["metadata"]["name"] == "tabjob", "the name Workload Identity binds"
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    (gpu,) = _find(objects, "ScaledJob")
    assert gpu["metadata"]["name"].endswith("worker-gpu"), "the GPU lane runs on GKE, a Job per message"
    assert gpu["spec"]["rollout"]["strategy"] == "gradual", "a deploy never deletes a running GPU Job"


def test_existing_cluster_values_render_the_chart():
    run = run_program("production", EXISTING_CONFIG)
    objects = _render(_release_values(run))
    (ingress,) = _find(objects, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == EXISTING_CONFIG["apiHost"]


@pytest.mark.parametrize("stack", STACKS)
def test_only_gke_gets_a_backend_config_with_its_own_health_check(deployed_stacks, stack):
    objects = _render(_release_values(deployed_stacks[stack]))
    configs = _find(objects, "BackendConfig")
    if stack == "dev":
        assert configs == []
        return
    (config,) = configs
    assert config["spec"]["healthCheck"]["requestPath"] == "/healthz"
    (service,) = [s for s in _find(objects, "Service", "api")]
    assert service["metadata"]["annotations"]["cloud.google.com/neg"] == '{"ingress": true}'
