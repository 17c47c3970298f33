"""The app layer: tabjob's Secret and the local chart `charts/tabjob`, as one Helm release."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

# infra/app.py -> repository root -> charts/tabjob
CHART_PATH = Path(__file__).resolve().parent.parent / "charts" / "tabjob"
RELEASE_NAME = "tabjob"
SERVICE_ACCOUNT = "tabjob"
API_PORT = 8000
# The chart's API pods carry these labels (prometheus-community style selector labels plus
# a component label); kind's host-port Service selects them.
REDIS_CA_KEY = "redis-ca.pem"
API_POD_LABELS = {"app.kubernetes.io/instance": RELEASE_NAME, "app.kubernetes.io/component": "api"}


@dataclass(frozen=True)
class Backends:
    """Where the app finds its broker and its object store (values for the chart's config)."""

    redis_url: pulumi.Input[str]
    redis_address: pulumi.Input[str]
    redis_tls: bool
    redis_password: pulumi.Input[str]
    s3_endpoint: pulumi.Input[str]
    s3_public_endpoint: pulumi.Input[str]
    s3_bucket: pulumi.Input[str]
    s3_region: str
    s3_access_key: pulumi.Input[str]
    s3_secret_key: pulumi.Input[str]
    # PEM of a private CA the broker's TLS certificate is signed by (Memorystore); None: none.
    redis_ca: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class Images:
    """Resolved image references; a digest, when set, wins over the tag in the chart."""

    repository: pulumi.Input[str]
    gpu_repository: pulumi.Input[str]
    tag: str
    digest: str | None
    gpu_digest: str | None
    pull_policy: str = "IfNotPresent"


@dataclass(frozen=True)
class Placement:
    """Cluster-specific values: GPU lane, Workload Identity annotation, API exposure."""

    gpu_enabled: bool
    gpu_node_selector: dict[str, str] = field(default_factory=dict)
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    ingress: dict[str, Any] = field(default_factory=lambda: {"enabled": False})


def chart_values(
    *,
    environment: str,
    images: Images,
    backends: Backends,
    placement: Placement,
    secret_name: pulumi.Input[str],
    monitoring: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Values for charts/tabjob, using only the keys of the shared values contract (plus the
    `monitoring` section when the stack installs kube-prometheus-stack)."""
    gpu: dict[str, Any] = {"enabled": placement.gpu_enabled}
    if placement.gpu_enabled:
        gpu["nodeSelector"] = placement.gpu_node_selector
        gpu["tolerations"] = [
            {
                "key": "nvidia.com/gpu",
                "operator": "Equal",
                "value": "present",
                "effect": "NoSchedule",
            }
        ]
    return {
        "image": {
            "repository": images.repository,
            "tag": images.tag,
            "digest": images.digest or "",
            "pullPolicy": images.pull_policy,
        },
        "gpuImage": {
            "repository": images.gpu_repository,
            "tag": images.tag,
            "digest": images.gpu_digest or "",
        },
        "serviceAccount": {
            "create": True,
            "name": SERVICE_ACCOUNT,
            "annotations": placement.service_account_annotations,
        },
        "config": {
            "environment": environment,
            "redisUrl": backends.redis_url,
            "s3Endpoint": backends.s3_endpoint,
            "s3PublicEndpoint": backends.s3_public_endpoint,
            "s3Bucket": backends.s3_bucket,
            "s3Region": backends.s3_region,
        },
        "secrets": {
            "existingSecret": secret_name,
            "redisPasswordKey": "redis-password",
            "s3AccessKeyKey": "s3-access-key",
            "s3SecretKeyKey": "s3-secret-key",
            # The chart hands this key to KEDA's redis trigger to verify the broker's TLS.
            "redisCaKey": REDIS_CA_KEY if backends.redis_ca is not None else "",
        },
        "api": {"service": {"type": "ClusterIP", "port": API_PORT}, "ingress": placement.ingress},
        "gpu": gpu,
        "keda": {"redisAddress": backends.redis_address, "redisTls": backends.redis_tls},
    } | ({"monitoring": monitoring} if monitoring else {})


class TabjobRelease(pulumi.ComponentResource):
    """The app's Secret (broker and store credentials) and the tabjob chart release.

    Attributes:
        secret_name: the Secret the chart reads (`secrets.existingSecret`).
        release: the Helm release of charts/tabjob.
    """

    secret_name: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        *,
        namespace: pulumi.Input[str],
        environment: str,
        images: Images,
        backends: Backends,
        placement: Placement,
        provider: k8s.Provider,
        monitoring: dict[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:app:TabjobRelease", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        credentials: dict[str, pulumi.Input[str]] = {
            "redis-password": backends.redis_password,
            "s3-access-key": backends.s3_access_key,
            "s3-secret-key": backends.s3_secret_key,
        }
        if backends.redis_ca is not None:
            credentials[REDIS_CA_KEY] = backends.redis_ca
        secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata={"namespace": namespace},
            string_data=credentials,
            opts=child,
        )
        self.secret_name = secret.metadata.name
        self.release = k8s.helm.v3.Release(
            name,
            # Fixed, not auto-named: the API pods' instance label (API_POD_LABELS) uses it.
            name=RELEASE_NAME,
            chart=str(CHART_PATH),
            namespace=namespace,
            values=chart_values(
                environment=environment,
                images=images,
                backends=backends,
                placement=placement,
                secret_name=secret.metadata.name,
                monitoring=monitoring,
            ),
            atomic=True,
            cleanup_on_fail=True,
            opts=child,
        )
        self.register_outputs({"secret_name": self.secret_name})
