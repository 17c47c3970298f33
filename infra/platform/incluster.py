"""Pieces shared by the in-cluster servers of the kind stack (Valkey, SeaweedFS)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s


def data_volume_claim(storage: str) -> dict:
    """The StatefulSet volume claim template ``data`` of ``storage`` (e.g. "5Gi"), one per replica."""
    return {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
    }


def service_host(service: k8s.core.v1.Service, namespace: str) -> pulumi.Output[str]:
    """The cluster DNS name of ``service``."""
    return pulumi.Output.concat(service.metadata.name, ".", namespace, ".svc.cluster.local")
