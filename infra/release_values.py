"""What the app layer hands charts/tabjob: the stack's backends, images and placement, mapped onto
the chart's values contract (see infra/app.py for the release itself)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pulumi

# infra/release_values.py -> repository root -> charts/tabjob
CHART_PATH = Path(__file__).resolve().parent.parent / "charts" / "tabjob"
RELEASE_NAME = "tabjob"
SERVICE_ACCOUNT = "tabjob"
API_PORT = 8000
# The load balancer's health check on GKE: liveness (the process answers), not /readyz.
API_HEALTH_PATH = "/healthz"
# Keys of the app's Secret the chart is told about.
REDIS_CA_KEY = "redis-ca.pem"
SCALER_TOKEN_KEY = "scaler-token"
# The token /metrics and /readyz require (TABJOB_METRICS_TOKEN): the ServiceMonitor and the API's
# readiness probe send it, and the Ingress routes neither path (charts/tabjob README).
METRICS_TOKEN_KEY = "metrics-token"
# The Secret key holding TABJOB_BOOTSTRAP_API_KEYS ("smoke=<token>"), seeded by the API at start.
BOOTSTRAP_KEYS_KEY = "bootstrap-api-keys"
SMOKE_TENANT = "smoke"
# The chart's API pods carry these labels (prometheus-community style selector labels plus
# a component label); kind's host-port Service selects them.
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
    # How pods log in to the broker: "password" (redis_password) or "gcp-iam" (Memorystore IAM
    # authentication with the pods' Workload Identity; KEDA then scales from the API's count).
    redis_auth: str = "password"


@dataclass(frozen=True)
class Images:
    """Resolved image references; a digest, when set, wins over the tag in the chart."""

    repository: pulumi.Input[str]
    gpu_repository: pulumi.Input[str]
    tag: str
    digest: str | None
    gpu_digest: str | None
    pull_policy: str = "IfNotPresent"
    # kind: the ID (sha256:...) of the locally built image, which runs under a fixed tag; the
    # chart puts it on the API and CPU worker pods so a rebuilt image rolls them. None elsewhere.
    local_id: str | None = None


@dataclass(frozen=True)
class Placement:
    """Cluster-specific values: GPU lane, Workload Identity annotation, API exposure."""

    gpu_enabled: bool
    gpu_node_selector: dict[str, str] = field(default_factory=dict)
    service_account_annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    ingress: dict[str, Any] = field(default_factory=lambda: {"enabled": False})
    # The chart's gpu.resources (derived from the GPU pool's machine type) and the most GPU
    # Jobs at once (the pool's GPU nodes times GPUs per node); None: the chart's defaults.
    gpu_resources: dict[str, Any] | None = None
    gpu_max_jobs: int | None = None
    # The chart's gpu.scaling: "scaledjob" on GKE (one Job per message; a deploy never stops a
    # running Job), the chart's default elsewhere.
    gpu_scaling: str | None = None
    # GKE: a BackendConfig with its own health check and the explicit NEG annotation.
    backend_config: bool = False


def scales_from_api(backends: Backends) -> bool:
    """KEDA's redis trigger sends a static password; with IAM auth there is none to send, so KEDA
    reads each lane's count from the API instead (charts/tabjob: keda.scaleFrom)."""
    return backends.redis_auth == "gcp-iam"


def endpoint_port(url: str) -> int:
    """The TCP port of ``url``: explicit, else 443 for https/rediss and 80/6379 otherwise."""
    parts = urlsplit(url)
    if parts.port:
        return parts.port
    return {"https": 443, "rediss": 6379, "redis": 6379}.get(parts.scheme, 80)


def _port_of(url: pulumi.Input[str]) -> pulumi.Output[int]:
    return pulumi.Output.from_input(url).apply(endpoint_port)


def _gpu_values(placement: Placement) -> dict[str, Any]:
    gpu: dict[str, Any] = {"enabled": placement.gpu_enabled}
    if not placement.gpu_enabled:
        return gpu
    gpu["nodeSelector"] = placement.gpu_node_selector
    gpu["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}]
    if placement.gpu_resources is not None:
        gpu["resources"] = placement.gpu_resources
    if placement.gpu_max_jobs is not None:
        gpu["maxReplicaCount"] = placement.gpu_max_jobs
    if placement.gpu_scaling is not None:
        gpu["scaling"] = placement.gpu_scaling
    return gpu


def secret_checksum(contents: dict[str, str]) -> str:
    """sha256 of the Secret's keys and values: the chart's secrets.checksum, which every pod
    template carries, so a rotated credential rolls the pods before the old one is revoked."""
    return hashlib.sha256(json.dumps(contents, sort_keys=True).encode()).hexdigest()


def _secrets_values(
    backends: Backends, secret_name: pulumi.Input[str], checksum: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    """The chart's `secrets`: which keys of the Secret hold what, and the checksum of its contents."""
    return {
        "existingSecret": secret_name,
        "redisPasswordKey": "redis-password",
        "s3AccessKeyKey": "s3-access-key",
        "s3SecretKeyKey": "s3-secret-key",
        # The chart hands this key to KEDA's redis trigger to verify the broker's TLS.
        "redisCaKey": REDIS_CA_KEY if backends.redis_ca is not None else "",
        "scalerTokenKey": SCALER_TOKEN_KEY if scales_from_api(backends) else "",
        "bootstrapApiKeysKey": BOOTSTRAP_KEYS_KEY,
        "metricsTokenKey": METRICS_TOKEN_KEY,
        "checksum": checksum,
    }


def _keda_values(backends: Backends) -> dict[str, Any]:
    """The chart's `keda`: where its triggers find each lane's count."""
    return {
        "redisAddress": backends.redis_address,
        "redisTls": backends.redis_tls,
        "scaleFrom": "api" if scales_from_api(backends) else "redis",
    }


def chart_values(
    *,
    environment: str,
    images: Images,
    backends: Backends,
    placement: Placement,
    secret_name: pulumi.Input[str],
    secret_checksum: pulumi.Input[str] = "",
    monitoring: dict[str, Any] | None = None,
    dask_engine: bool = False,
) -> dict[str, Any]:
    """Values for charts/tabjob, using only the keys of the shared values contract (plus the
    `monitoring` section when the stack installs kube-prometheus-stack). ``dask_engine``: the
    chart's ``dask.enabled`` (its other Dask values keep the chart's defaults)."""
    return {
        "image": {
            "repository": images.repository,
            "tag": images.tag,
            "digest": images.digest or "",
            "pullPolicy": images.pull_policy,
            "id": images.local_id or "",
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
            "redisAuth": backends.redis_auth,
            "s3Endpoint": backends.s3_endpoint,
            "s3PublicEndpoint": backends.s3_public_endpoint,
            "s3Bucket": backends.s3_bucket,
            "s3Region": backends.s3_region,
        },
        "secrets": _secrets_values(backends, secret_name, secret_checksum),
        "api": {
            "service": {"type": "ClusterIP", "port": API_PORT},
            "ingress": placement.ingress,
            "backendConfig": {"enabled": placement.backend_config, "healthCheckPath": API_HEALTH_PATH},
        },
        "gpu": _gpu_values(placement),
        "dask": {"enabled": dask_engine},
        "keda": _keda_values(backends),
        # Egress follows the configured endpoints: 443 for GCS, 8333 for SeaweedFS, ...
        "networkPolicy": {
            "enabled": True,
            "brokerPort": _port_of(backends.redis_url),
            "storagePort": _port_of(backends.s3_endpoint),
            "extraEgressCIDRs": [],
            # Job webhooks: TCP 80/443 to public addresses (the chart excludes private ranges).
            "webhookEgress": True,
        },
    } | ({"monitoring": monitoring} if monitoring else {})
