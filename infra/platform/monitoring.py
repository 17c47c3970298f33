"""kube-prometheus-stack (Prometheus, Alertmanager, Grafana, kube-state-metrics and the
Prometheus Operator's CRDs), installed when `tabjob:monitoring` is true, and the values that
turn on the tabjob chart's ServiceMonitor, PodMonitor, PrometheusRule and Grafana dashboard.

The tabjob chart's monitors and rules carry the label `release: kube-prometheus-stack`, which
this release's Prometheus selects by default; its Grafana sidecar loads every ConfigMap labelled
`grafana_dashboard: "1"` in any namespace.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.config_alerting import AlertingSettings
from infra.platform.alerting import RECEIVERS_SECRET, alertmanager_values, receiver_secrets

PROMETHEUS_COMMUNITY_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
MONITORING_NAMESPACE = "monitoring"
# A fixed release name: the chart's monitors are selected by `release: <this name>`.
RELEASE_NAME = "kube-prometheus-stack"
PROMETHEUS_RETENTION = "15d"


def tabjob_monitoring_values() -> dict[str, Any]:
    """The tabjob chart's `monitoring` values for a cluster with this release."""
    return {
        "labels": {"release": RELEASE_NAME},
        "prometheusNamespace": MONITORING_NAMESPACE,
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    }


def stack_values(grafana_password: pulumi.Input[str], alerting: AlertingSettings | None = None) -> dict[str, Any]:
    """kube-prometheus-stack's values: Grafana's dashboard sidecar on every namespace, an admin
    password of our own instead of the chart's well-known default, and Alertmanager's receivers
    when the stack configures some (else the chart's default, which notifies nobody)."""
    values: dict[str, Any] = {
        "grafana": {
            "adminPassword": grafana_password,
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": "grafana_dashboard",
                    "labelValue": "1",
                    "searchNamespace": "ALL",
                }
            },
        },
        "prometheus": {"prometheusSpec": {"retention": PROMETHEUS_RETENTION}},
    }
    if alerting is not None:
        values["alertmanager"] = alertmanager_values(alerting)
    return values


class KubePrometheusStack(pulumi.ComponentResource):
    """The monitoring stack in namespace `monitoring`.

    Attributes:
        release: the Helm release; the tabjob chart depends on it for the CRDs.
        grafana_password: Grafana's `admin` password (a secret output).
        receivers_secret: the Secret Alertmanager reads its receivers' credentials from, or None.
    """

    release: k8s.helm.v3.Release
    grafana_password: pulumi.Output[str]
    receivers_secret: k8s.core.v1.Secret | None

    def __init__(
        self,
        name: str,
        *,
        version: str,
        provider: k8s.Provider,
        alerting: AlertingSettings | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:platform:KubePrometheusStack", name, None, opts)
        password = random.RandomPassword(
            f"{name}-grafana-admin", length=24, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.grafana_password = password.result
        self.release = k8s.helm.v3.Release(
            name,
            name=RELEASE_NAME,
            chart="kube-prometheus-stack",
            version=version,
            repository_opts={"repo": PROMETHEUS_COMMUNITY_REPOSITORY},
            namespace=MONITORING_NAMESPACE,
            create_namespace=True,
            values=stack_values(password.result, alerting),
            atomic=True,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.receivers_secret = self._receivers_secret(name, alerting, provider)
        self.register_outputs({"version": version})

    def _receivers_secret(
        self, name: str, alerting: AlertingSettings | None, provider: k8s.Provider
    ) -> k8s.core.v1.Secret | None:
        data = receiver_secrets(alerting) if alerting is not None else {}
        if not data:
            return None
        # After the release: Helm creates the namespace. Alertmanager's pod waits for the
        # volume (the kubelet retries the mount) the first time only. A fixed name, since the
        # release's values name it; its data changes in place, never by replacement.
        return k8s.core.v1.Secret(
            f"{name}-alertmanager-receivers",
            metadata={"name": RECEIVERS_SECRET, "namespace": MONITORING_NAMESPACE},
            type="Opaque",
            string_data=data,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[self.release]),
        )
