"""Render charts/tabjob with the real Helm engine and walk the rendered objects.

Helm here is Helm 4's Go library through `helm-python-sdk` (import name `helm_python`): the same
template engine and values.schema.json validation `helm install` uses, with no cluster involved.
The module name is unique on purpose: test directories have no __init__.py, so pytest puts this
directory on sys.path and a generic name could collide with another directory's helpers.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python as helm
import safe_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "tabjob"
CI_DIR = CHART_DIR / "ci"
CRD_DIR = Path(__file__).resolve().parent / "crds" / "keda-2.20.2"

RELEASE = "tabjob"
NAMESPACE = "tabjob"
KUBERNETES_VERSION = "1.33"
KEDA_KINDS = frozenset({"ScaledObject", "ScaledJob", "TriggerAuthentication"})
# Prometheus Operator kinds: their CRDs are not vendored; test_chart_observability checks them.
MONITORING_KINDS = frozenset({"ServiceMonitor", "PodMonitor", "PrometheusRule"})
# GKE's own CRDs (ingress-gce), validated by tests/charts/test_chart_gke.py.
GKE_KINDS = frozenset({"BackendConfig"})
CPU_LANES = ("small", "large")


@cache
def scenario_values() -> dict[str, dict[str, Any]]:
    """Every scenario the chart must render: the defaults plus each ci/*-values.yaml file.

    Returns:
        Scenario name ("default", "kind", "gke", "existing", ...) to its values.
    """
    scenarios: dict[str, dict[str, Any]] = {"default": {}}
    for path in sorted(CI_DIR.glob("*.yaml")):
        scenarios[path.name.removesuffix(".yaml").removesuffix("-values")] = safe_yaml.load(path.read_text()) or {}
    return scenarios


@cache
def scenario_files(scenario: str) -> dict[str, str]:
    """The rendered files of a scenario, rendered once per test session."""
    return render_files(scenario_values()[scenario])


def render_files(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Render the chart like `helm template`, schema validation included.

    Returns:
        Template path (e.g. "tabjob/templates/api-deployment.yaml") to rendered text.

    Raises:
        helm_python.HelmValuesError: if the values break values.schema.json.
        helm_python.HelmRenderError: if a template fails (e.g. a `required` value is missing).
    """
    with helm.Chart.load(CHART_DIR) as chart:
        return chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)


def merged_values(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values an install with `values` really uses: them over the chart's defaults."""
    with helm.Chart.load(CHART_DIR) as chart:
        return chart.merge_values(values or {})


def objects_of(files: dict[str, str]) -> list[dict[str, Any]]:
    """The Kubernetes objects in rendered files (NOTES.txt and empty documents left out)."""
    objects: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if not path.endswith(".yaml"):
            continue
        objects.extend(doc for doc in safe_yaml.load_all(text) if doc)
    return objects


def render_objects(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Render the chart and parse it into objects."""
    return objects_of(render_files(values))


def notes_of(files: dict[str, str]) -> str:
    """The rendered NOTES.txt."""
    return next(text for path, text in files.items() if path.endswith("NOTES.txt"))


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The objects of one kind."""
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of a kind with a name; fails the test with a clear message if absent."""
    matches = [obj for obj in by_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_templates(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod template the chart renders, GPU ScaledJob included.

    Yields:
        ("<Kind>/<name>", pod template with metadata and spec).
    """
    for obj in objects:
        if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            template = obj["spec"]["template"]
        elif obj["kind"] == "ScaledJob":
            template = obj["spec"]["jobTargetRef"]["template"]
        else:
            continue
        yield f"{obj['kind']}/{obj['metadata']['name']}", template


def containers_of(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Init and regular containers of a pod spec."""
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's env entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def gpu_job_as_batch_job(scaled_job: dict[str, Any]) -> dict[str, Any]:
    """The Job a ScaledJob makes for each message, as a batch/v1 Job.

    KEDA copies jobTargetRef into the Jobs it creates, so validating this object against the
    Kubernetes schema (and scanning it with checkov, which does not know ScaledJob) checks what
    will really run. The ScaledJob's annotations come along so its checkov skips apply.
    """
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": scaled_job["metadata"]["name"],
            "namespace": scaled_job["metadata"]["namespace"],
            "labels": scaled_job["metadata"]["labels"],
            "annotations": scaled_job["metadata"].get("annotations", {}),
        },
        "spec": scaled_job["spec"]["jobTargetRef"],
    }


def url_port(url: str) -> int:
    """The TCP port a URL connects to: explicit, else 443 for https, 6379 for redis(s), else 80."""
    parts = urlsplit(url)
    return parts.port or {"https": 443, "redis": 6379, "rediss": 6379}.get(parts.scheme, 80)


def egress_ports(values: dict[str, Any]) -> set[int]:
    """The ports the chart's NetworkPolicies must open for ``values`` (merged): DNS, the broker
    and the store, each either set in networkPolicy or taken from its URL."""
    policy, config = values["networkPolicy"], values["config"]
    return {
        53,
        policy["brokerPort"] or url_port(config["redisUrl"]),
        policy["storagePort"] or url_port(config["s3Endpoint"]),
    }
