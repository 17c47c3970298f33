"""Stack configuration, read once into frozen dataclasses.

Every `tabjob:` key the program reads is listed in `DEFAULTS` (with its default, or `None`
where there is none or the default depends on other keys), so the key set, the defaults and
Pulumi.yaml's schema can be checked against each other in tests. Invalid values raise
`ValueError` naming what is allowed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import pulumi

ClusterKind = Literal["kind", "gke", "existing"]

CLUSTER_KINDS = ("kind", "gke", "existing")
ENVIRONMENTS = ("dev", "staging", "production")
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE")
GPU_DRIVER_VERSIONS = ("LATEST", "DEFAULT")
VALKEY_NODE_TYPES = ("SHARED_CORE_NANO", "STANDARD_SMALL", "HIGHMEM_MEDIUM", "HIGHMEM_XLARGE")
DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+$")
# KEDA's CRDs in ../shared/crds and the chart's ScaledObjects are written against 2.20.
KEDA_VERSION_PATTERN = re.compile(r"^2\.20\.\d+$")

# The one place each default lives. None: no default, or one derived from other keys
# (documented next to the getter that derives it).
DEFAULTS: dict[str, Any] = {
    # common
    "cluster": "kind",
    "environment": None,  # the stack name
    "namespace": "tabjob",
    "image": None,  # kind: "tabjob"; gke: <Artifact Registry>/tabjob; existing: required
    "gpuImage": None,  # <image>-gpu
    "imageTag": "dev",
    "imageDigest": None,
    "gpuImageDigest": None,
    "kedaVersion": "2.20.2",
    "installKeda": True,
    # observability (infra/platform/monitoring.py)
    "monitoring": False,
    "kubePrometheusStackVersion": "91.5.0",
    "apiHost": None,  # required for gke
    # kind
    "kindClusterName": "tabjob",
    "kindNodeImage": None,  # kind's own default node image
    "apiHostPort": 8000,
    "s3HostPort": 8333,
    "valkeyImage": "valkey/valkey:9.1",
    "seaweedfsImage": "chrislusf/seaweedfs:4.48",
    "valkeyStorage": "1Gi",
    "seaweedfsStorage": "10Gi",
    # gke
    "gcpProject": None,  # required for gke
    "region": "us-central1",
    "releaseChannel": "REGULAR",
    "deletionProtection": None,  # True when environment is production, else False
    "nodeCidr": "10.10.0.0/20",
    "podsCidr": "10.16.0.0/14",
    "servicesCidr": "10.20.0.0/20",
    "cpuMachineType": "e2-standard-4",
    "cpuMinNodes": 1,
    "cpuMaxNodes": 6,
    "gpuMachineType": "g2-standard-4",
    "gpuType": "nvidia-l4",
    "gpuCount": 1,
    "gpuMaxNodes": 2,
    "gpuSpot": False,
    "gpuDriverVersion": "LATEST",
    "valkeyNodeType": "SHARED_CORE_NANO",
    "valkeyReplicas": 0,
    "valkeyEngineVersion": "VALKEY_8_0",
    "objectRetentionDays": 30,
    "expiringPrefixes": ["datasets/", "results/"],
    # existing cluster
    "kubeconfig": None,  # secret; required for existing
    "redisUrl": None,
    "redisPassword": None,  # secret
    "s3Endpoint": None,
    "s3PublicEndpoint": None,  # s3Endpoint
    "s3Bucket": None,
    "s3Region": "us-east-1",
    "s3AccessKey": None,  # secret
    "s3SecretKey": None,  # secret
    "ingressClass": "nginx",
}

SECRET_KEYS = frozenset({"kubeconfig", "redisPassword", "s3AccessKey", "s3SecretKey"})


class _Reader:
    """Typed getters over `pulumi.Config` that only read declared keys."""

    def __init__(self, config: pulumi.Config) -> None:
        self._config = config

    def _raw(self, key: str) -> str | None:
        if key not in DEFAULTS:
            raise KeyError(f"tabjob:{key} is not declared in infra/config.py DEFAULTS")
        value = self._config.get(key)
        return None if value in (None, "") else value

    def string(self, key: str) -> str | None:
        value = self._raw(key)
        return value if value is not None else DEFAULTS[key]

    def required(self, key: str, why: str) -> str:
        value = self.string(key)
        if value is None:
            raise ValueError(f"tabjob:{key} is required {why}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self.string(key) or default
        if value not in allowed:
            raise ValueError(f"tabjob:{key} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def integer(self, key: str, minimum: int = 0) -> int:
        raw = self._raw(key)
        try:
            value = int(raw) if raw is not None else int(DEFAULTS[key])
        except ValueError:
            raise ValueError(f"tabjob:{key} must be an integer >= {minimum}; got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"tabjob:{key} must be an integer >= {minimum}; got {value}")
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        raw = self._raw(key)
        if raw is None:
            fallback = DEFAULTS[key] if default is None else default
            return bool(fallback)
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError(f"tabjob:{key} must be true or false; got {raw!r}")

    def strings(self, key: str) -> list[str]:
        raw = self._raw(key)
        if raw is None:
            return list(DEFAULTS[key])
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"tabjob:{key} must be a list of non-empty strings; got {raw!r}")
        return value

    def secret(self, key: str) -> pulumi.Output[str] | None:
        if self._raw(key) is None:
            return None
        return self._config.require_secret(key)


@dataclass(frozen=True)
class ImageSettings:
    """Container images. `repository` None means: derive it from the cluster kind."""

    repository: str | None
    gpu_repository: str | None
    tag: str
    digest: str | None
    gpu_digest: str | None


@dataclass(frozen=True)
class KindSettings:
    cluster_name: str
    node_image: str | None
    api_host_port: int
    s3_host_port: int
    valkey_image: str
    seaweedfs_image: str
    valkey_storage: str
    seaweedfs_storage: str


@dataclass(frozen=True)
class GkeSettings:
    project: str
    region: str
    release_channel: str
    deletion_protection: bool
    node_cidr: str
    pods_cidr: str
    services_cidr: str
    cpu_machine_type: str
    cpu_min_nodes: int
    cpu_max_nodes: int
    gpu_machine_type: str
    gpu_type: str
    gpu_count: int
    gpu_max_nodes: int
    gpu_spot: bool
    gpu_driver_version: str
    valkey_node_type: str
    valkey_replicas: int
    valkey_engine_version: str
    object_retention_days: int
    expiring_prefixes: list[str]


@dataclass(frozen=True)
class ExistingSettings:
    """Broker and store a customer already runs; the program deploys only the app layer."""

    kubeconfig: pulumi.Output[str]
    redis_url: str
    redis_password: pulumi.Output[str] | None
    s3_endpoint: str
    s3_public_endpoint: str
    s3_bucket: str
    s3_region: str
    s3_access_key: pulumi.Output[str]
    s3_secret_key: pulumi.Output[str]
    ingress_class: str


@dataclass(frozen=True)
class StackConfig:
    cluster: ClusterKind
    environment: str
    namespace: str
    images: ImageSettings
    keda_version: str
    install_keda: bool
    api_host: str | None
    kind: KindSettings | None = None
    gke: GkeSettings | None = None
    existing: ExistingSettings | None = None
    # kube-prometheus-stack's chart version when the stack installs it (tabjob:monitoring), else None.
    monitoring_version: str | None = None


def _digest(reader: _Reader, key: str) -> str | None:
    value = reader.string(key)
    if value is not None and not DIGEST_PATTERN.match(value):
        raise ValueError(f"tabjob:{key} must look like sha256:<64 hex digits>; got {value!r}")
    return value


def _kind_settings(r: _Reader) -> KindSettings:
    api_port = r.integer("apiHostPort", minimum=1)
    s3_port = r.integer("s3HostPort", minimum=1)
    if api_port == s3_port:
        raise ValueError("tabjob:apiHostPort and tabjob:s3HostPort must differ")
    return KindSettings(
        cluster_name=r.string("kindClusterName"),
        node_image=r.string("kindNodeImage"),
        api_host_port=api_port,
        s3_host_port=s3_port,
        valkey_image=r.string("valkeyImage"),
        seaweedfs_image=r.string("seaweedfsImage"),
        valkey_storage=r.string("valkeyStorage"),
        seaweedfs_storage=r.string("seaweedfsStorage"),
    )


def _gke_settings(r: _Reader, environment: str) -> GkeSettings:
    cpu_min = r.integer("cpuMinNodes")
    cpu_max = r.integer("cpuMaxNodes", minimum=1)
    if cpu_min > cpu_max:
        raise ValueError("tabjob:cpuMinNodes must not exceed tabjob:cpuMaxNodes")
    return GkeSettings(
        project=r.required("gcpProject", "when tabjob:cluster is gke"),
        region=r.string("region"),
        release_channel=r.choice("releaseChannel", RELEASE_CHANNELS),
        deletion_protection=r.boolean("deletionProtection", default=environment == "production"),
        node_cidr=r.string("nodeCidr"),
        pods_cidr=r.string("podsCidr"),
        services_cidr=r.string("servicesCidr"),
        cpu_machine_type=r.string("cpuMachineType"),
        cpu_min_nodes=cpu_min,
        cpu_max_nodes=cpu_max,
        gpu_machine_type=r.string("gpuMachineType"),
        gpu_type=r.string("gpuType"),
        gpu_count=r.integer("gpuCount", minimum=1),
        gpu_max_nodes=r.integer("gpuMaxNodes", minimum=1),
        gpu_spot=r.boolean("gpuSpot"),
        gpu_driver_version=r.choice("gpuDriverVersion", GPU_DRIVER_VERSIONS),
        valkey_node_type=r.choice("valkeyNodeType", VALKEY_NODE_TYPES),
        valkey_replicas=r.integer("valkeyReplicas"),
        valkey_engine_version=r.string("valkeyEngineVersion"),
        object_retention_days=r.integer("objectRetentionDays", minimum=1),
        expiring_prefixes=r.strings("expiringPrefixes"),
    )


def _existing_settings(r: _Reader) -> ExistingSettings:
    why = "when tabjob:cluster is existing"
    kubeconfig = r.secret("kubeconfig")
    access_key = r.secret("s3AccessKey")
    secret_key = r.secret("s3SecretKey")
    if kubeconfig is None or access_key is None or secret_key is None:
        raise ValueError(f"tabjob:kubeconfig, tabjob:s3AccessKey and tabjob:s3SecretKey (secrets) are required {why}")
    redis_url = r.required("redisUrl", why)
    if not redis_url.startswith(("redis://", "rediss://")):
        raise ValueError(f"tabjob:redisUrl must start with redis:// or rediss://; got {redis_url!r}")
    s3_endpoint = r.required("s3Endpoint", why)
    return ExistingSettings(
        kubeconfig=kubeconfig,
        redis_url=redis_url,
        redis_password=r.secret("redisPassword"),
        s3_endpoint=s3_endpoint,
        s3_public_endpoint=r.string("s3PublicEndpoint") or s3_endpoint,
        s3_bucket=r.required("s3Bucket", why),
        s3_region=r.string("s3Region"),
        s3_access_key=access_key,
        s3_secret_key=secret_key,
        ingress_class=r.string("ingressClass"),
    )


def load_config(config: pulumi.Config | None = None) -> StackConfig:
    """Read and validate the `tabjob:` configuration of the current stack."""
    r = _Reader(config or pulumi.Config("tabjob"))
    cluster = r.choice("cluster", CLUSTER_KINDS)
    environment = r.choice("environment", ENVIRONMENTS, default=pulumi.get_stack())
    keda_version = r.string("kedaVersion")
    if not KEDA_VERSION_PATTERN.match(keda_version):
        raise ValueError(f"tabjob:kedaVersion must be a 2.20.x release; got {keda_version!r}")
    image = r.string("image")
    if cluster == "existing" and image is None:
        raise ValueError("tabjob:image is required when tabjob:cluster is existing")
    images = ImageSettings(
        repository=image,
        gpu_repository=r.string("gpuImage"),
        tag=r.string("imageTag"),
        digest=_digest(r, "imageDigest"),
        gpu_digest=_digest(r, "gpuImageDigest"),
    )
    api_host = r.string("apiHost")
    if cluster == "gke" and api_host is None:
        # The API takes API keys: on GKE it is served over HTTPS only, which needs a name.
        raise ValueError("tabjob:apiHost (the API's DNS name) is required when tabjob:cluster is gke")
    monitoring_version = r.string("kubePrometheusStackVersion") if r.boolean("monitoring") else None
    if monitoring_version is not None and not VERSION_PATTERN.match(monitoring_version):
        raise ValueError(
            f"tabjob:kubePrometheusStackVersion must be a chart version like 91.5.0; got {monitoring_version!r}"
        )
    return StackConfig(
        cluster=cluster,  # type: ignore[arg-type]  # validated by choice()
        environment=environment,
        namespace=r.string("namespace"),
        images=images,
        keda_version=keda_version,
        install_keda=r.boolean("installKeda"),
        api_host=api_host,
        kind=_kind_settings(r) if cluster == "kind" else None,
        gke=_gke_settings(r, environment) if cluster == "gke" else None,
        existing=_existing_settings(r) if cluster == "existing" else None,
        monitoring_version=monitoring_version,
    )
