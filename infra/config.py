"""Stack configuration, read once into frozen dataclasses.

Every `tabjob:` key the program reads is listed in `infra.config_keys.DEFAULTS` (with its
default, or `None` where there is none or the default depends on other keys), so the key set,
the defaults and Pulumi.yaml's schema can be checked against each other in tests. Invalid
values raise `ValueError` naming what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from infra.cluster import gpu_sizing
from infra.config_alerting import AlertingSettings, alerting_settings
from infra.config_env import kind_image
from infra.config_keys import (
    CHART_VERSION_PATTERN,
    CLUSTER_KINDS,
    DEFAULTS,
    DIGEST_PATTERN,
    ENVIRONMENTS,
    GPU_DRIVER_VERSIONS,
    GPU_SCALINGS,
    KEDA_VERSION_PATTERN,
    RELEASE_CHANNELS,
    SECRET_KEYS,
    VALKEY_NODE_TYPES,
    ClusterKind,
)
from infra.config_reader import Reader

__all__ = ["DEFAULTS", "SECRET_KEYS", "StackConfig", "load_config"]


@dataclass(frozen=True)
class ImageSettings:
    """Container images. `repository` None means: derive it from the cluster kind."""

    repository: str | None
    gpu_repository: str | None
    # tabjob:imageTag when set (a hand-run deploy of a tag), else None: no tag is ever assumed
    # on gke or existing, where only CI's digests name an image that exists.
    tag: str | None
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
    # The locally built image: its ID (sha256:...) keys the reload into the node and rolls the
    # pods; the archive is what `kind load image-archive` loads.
    image_id: str
    image_archive: str


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
    gpu_zones: list[str]
    # The chart's gpu.scaling: scaledjob (a Job per message; deploys never stop a running one)
    # or deployment (warm pods; every image change rolls them).
    gpu_scaling: str
    master_cidr: str
    valkey_node_type: str
    valkey_replicas: int
    valkey_engine_version: str
    object_retention_days: int
    expiring_suffixes: list[str]


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
    # gke: no image exists yet; declare the infrastructure only (tabjob:bootstrap).
    bootstrap: bool = False
    kind: KindSettings | None = None
    gke: GkeSettings | None = None
    existing: ExistingSettings | None = None
    # kube-prometheus-stack's chart version when the stack installs it (tabjob:monitoring), else None.
    monitoring_version: str | None = None
    # Alertmanager's receivers (tabjob:alerting); None: alerts go nowhere, as the chart's default.
    alerting: AlertingSettings | None = None
    # The chart's dask.enabled (tabjob:daskEngine): a DaskCluster for jobs with engine "dask".
    dask_engine: bool = False


def _digest(reader: Reader, key: str) -> str | None:
    value = reader.string(key)
    if value is not None and not DIGEST_PATTERN.match(value):
        raise ValueError(f"tabjob:{key} must look like sha256:<64 hex digits>; got {value!r}")
    return value


def _kind_settings(r: Reader, environ: Mapping[str, str]) -> KindSettings:
    image_id, image_archive = kind_image(environ)
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
        image_id=image_id,
        image_archive=image_archive,
    )


def _gke_settings(r: Reader) -> GkeSettings:
    cpu_min = r.integer("cpuMinNodes")
    cpu_max = r.integer("cpuMaxNodes", minimum=1)
    if cpu_min > cpu_max:
        raise ValueError("tabjob:cpuMinNodes must not exceed tabjob:cpuMaxNodes")
    region = r.string("region")
    gpu_machine_type = r.string("gpuMachineType")
    gpu_type = r.string("gpuType")
    gpu_count = r.integer("gpuCount", minimum=1)
    # Refused here, at preview: a GPU type, count or size the machine cannot give.
    gpu_sizing.check_accelerator(gpu_machine_type, gpu_type, gpu_count)
    gpu_sizing.gpu_job_resources(gpu_machine_type, gpu_count)
    configured_zones = r.strings("gpuZones") or None
    return GkeSettings(
        project=r.required("gcpProject", "when tabjob:cluster is gke"),
        region=region,
        release_channel=r.choice("releaseChannel", RELEASE_CHANNELS),
        deletion_protection=r.boolean("deletionProtection"),
        node_cidr=r.string("nodeCidr"),
        pods_cidr=r.string("podsCidr"),
        services_cidr=r.string("servicesCidr"),
        cpu_machine_type=r.string("cpuMachineType"),
        cpu_min_nodes=cpu_min,
        cpu_max_nodes=cpu_max,
        gpu_machine_type=gpu_machine_type,
        gpu_type=gpu_type,
        gpu_count=gpu_count,
        gpu_max_nodes=r.integer("gpuMaxNodes", minimum=1),
        gpu_spot=r.boolean("gpuSpot"),
        gpu_driver_version=r.choice("gpuDriverVersion", GPU_DRIVER_VERSIONS),
        gpu_zones=gpu_sizing.gpu_zones(region, gpu_type, configured_zones),
        gpu_scaling=r.choice("gpuScaling", GPU_SCALINGS),
        master_cidr=r.string("masterCidr"),
        valkey_node_type=r.choice("valkeyNodeType", VALKEY_NODE_TYPES),
        valkey_replicas=r.integer("valkeyReplicas"),
        valkey_engine_version=r.string("valkeyEngineVersion"),
        object_retention_days=r.integer("objectRetentionDays", minimum=1),
        expiring_suffixes=r.strings("expiringSuffixes"),
    )


def _existing_settings(r: Reader) -> ExistingSettings:
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


def load_config(config: pulumi.Config | None = None, environ: Mapping[str, str] | None = None) -> StackConfig:
    """Read and validate the `tabjob:` configuration of the current stack.

    `environ` (default: the process environment) is read only for the kind stack's image.
    """
    r = Reader(config or pulumi.Config("tabjob"))
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
    if monitoring_version is not None and not CHART_VERSION_PATTERN.match(monitoring_version):
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
        bootstrap=r.boolean("bootstrap"),
        kind=_kind_settings(r, os.environ if environ is None else environ) if cluster == "kind" else None,
        gke=_gke_settings(r) if cluster == "gke" else None,
        existing=_existing_settings(r) if cluster == "existing" else None,
        monitoring_version=monitoring_version,
        alerting=alerting_settings(r, monitoring=monitoring_version is not None),
        dask_engine=r.boolean("daskEngine"),
    )
