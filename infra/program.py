"""The Pulumi program: one function per cluster kind, all ending in the same app layer."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from infra.app import (
    API_POD_LABELS,
    API_PORT,
    SERVICE_ACCOUNT,
    Backends,
    Images,
    Placement,
    TabjobRelease,
)
from infra.cluster.gke import GPU_NODE_LABEL, GkeCluster, ProjectApis
from infra.cluster.kind import API_NODE_PORT, S3_NODE_PORT, KindCluster
from infra.cluster.network import Vpc
from infra.config import StackConfig
from infra.platform.broker import InClusterValkey, ManagedValkey
from infra.platform.identity import ANNOTATION, WorkloadIdentity
from infra.platform.keda import Keda
from infra.platform.monitoring import KubePrometheusStack, tabjob_monitoring_values
from infra.platform.registry import ArtifactRegistry
from infra.platform.storage import GcsStorage, SeaweedFs

KIND_BUCKET = "tabjob"


def build(cfg: StackConfig) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs (not yet exported)."""
    if cfg.cluster == "kind":
        return _build_kind(cfg)
    if cfg.cluster == "gke":
        return _build_gke(cfg)
    return _build_existing(cfg)


def _images(cfg: StackConfig, default_repository: pulumi.Input[str]) -> Images:
    repository = cfg.images.repository or default_repository
    gpu_repository = cfg.images.gpu_repository or pulumi.Output.concat(repository, "-gpu")
    return Images(
        repository=repository,
        gpu_repository=gpu_repository,
        tag=cfg.images.tag,
        digest=cfg.images.digest,
        gpu_digest=cfg.images.gpu_digest,
    )


def _namespace(cfg: StackConfig, provider: k8s.Provider) -> k8s.core.v1.Namespace:
    # A fixed name: Workload Identity binds `<namespace>/<service account>` by name.
    return k8s.core.v1.Namespace(
        "namespace",
        metadata={
            "name": cfg.namespace,
            "labels": {
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            },
        },
        opts=pulumi.ResourceOptions(provider=provider),
    )


def _app_layer(
    cfg: StackConfig,
    *,
    provider: k8s.Provider,
    namespace: k8s.core.v1.Namespace,
    images: Images,
    backends: Backends,
    placement: Placement,
    depends_on: list[pulumi.Resource],
    deploy_release: bool = True,
) -> TabjobRelease | None:
    """KEDA (unless the cluster has it already) and the tabjob release (unless told not to)."""
    waits = list(depends_on)
    if cfg.install_keda:
        waits.append(Keda("keda", version=cfg.keda_version, provider=provider).release)
    monitoring = None
    if cfg.monitoring_version is not None:  # its CRDs must exist before the chart's monitors
        waits.append(KubePrometheusStack("monitoring", version=cfg.monitoring_version, provider=provider).release)
        monitoring = tabjob_monitoring_values()
    if not deploy_release:
        return None
    return TabjobRelease(
        "tabjob",
        namespace=namespace.metadata.name,
        environment=cfg.environment,
        images=images,
        backends=backends,
        placement=placement,
        monitoring=monitoring,
        provider=provider,
        opts=pulumi.ResourceOptions(depends_on=waits),
    )


def _build_kind(cfg: StackConfig) -> dict[str, Any]:
    settings = cfg.kind
    assert settings is not None  # load_config fills it for cluster=kind
    images = _images(cfg, "tabjob")
    cluster = KindCluster("kind", settings=settings, images=[f"{images.repository}:{images.tag}"])
    provider = cluster.provider
    namespace = _namespace(cfg, provider)
    valkey = InClusterValkey(
        "valkey",
        namespace=namespace.metadata.name,
        image=settings.valkey_image,
        storage=settings.valkey_storage,
        provider=provider,
    )
    seaweedfs = SeaweedFs(
        "seaweedfs",
        namespace=namespace.metadata.name,
        image=settings.seaweedfs_image,
        storage=settings.seaweedfs_storage,
        bucket=KIND_BUCKET,
        node_port=S3_NODE_PORT,
        host_port=settings.s3_host_port,
        provider=provider,
    )
    # The chart's API Service stays ClusterIP; this one pins the NodePort that kind
    # publishes on 127.0.0.1:<apiHostPort>.
    k8s.core.v1.Service(
        "api-host",
        metadata={"namespace": namespace.metadata.name},
        spec={
            "type": "NodePort",
            "selector": API_POD_LABELS,
            "ports": [
                {
                    "name": "http",
                    "port": API_PORT,
                    "targetPort": API_PORT,
                    "nodePort": API_NODE_PORT,
                }
            ],
        },
        opts=pulumi.ResourceOptions(provider=provider),
    )
    backends = Backends(
        redis_url=valkey.redis_url,
        redis_address=valkey.redis_address,
        redis_tls=valkey.tls,
        redis_password=valkey.password,
        s3_endpoint=seaweedfs.endpoint,
        s3_public_endpoint=seaweedfs.public_endpoint,
        s3_bucket=seaweedfs.bucket,
        s3_region=seaweedfs.region,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
    )
    _app_layer(
        cfg,
        provider=provider,
        namespace=namespace,
        images=images,
        backends=backends,
        placement=Placement(gpu_enabled=False),
        depends_on=[cluster.images_loaded, valkey, seaweedfs],
    )
    return {
        "apiUrl": f"http://127.0.0.1:{settings.api_host_port}",
        "kubeconfig": cluster.kubeconfig,
        "bucket": seaweedfs.bucket,
        "imageRegistry": f"kind://{settings.cluster_name}",
    }


def _build_gke(cfg: StackConfig) -> dict[str, Any]:
    settings = cfg.gke
    assert settings is not None  # load_config fills it for cluster=gke
    env = cfg.environment
    gcp_provider = gcp.Provider("gcp", project=settings.project, region=settings.region)
    apis = ProjectApis("apis", provider=gcp_provider)
    after_apis = pulumi.ResourceOptions(depends_on=apis.services)
    vpc = Vpc(
        "vpc",
        region=settings.region,
        node_cidr=settings.node_cidr,
        pods_cidr=settings.pods_cidr,
        services_cidr=settings.services_cidr,
        provider=gcp_provider,
        opts=after_apis,
    )
    gke = GkeCluster(
        "gke",
        settings=settings,
        vpc=vpc,
        provider=gcp_provider,
        node_account_id=f"tabjob-nodes-{env}",
        opts=after_apis,
    )
    registry = ArtifactRegistry(
        "registry",
        project=settings.project,
        region=settings.region,
        reader_member=gke.node_account.member,
        provider=gcp_provider,
        opts=after_apis,
    )
    storage = GcsStorage(
        "storage",
        region=settings.region,
        account_id=f"tabjob-s3-{env}",
        retention_days=settings.object_retention_days,
        expiring_prefixes=settings.expiring_prefixes,
        # Production data outlives a mistaken `pulumi destroy`.
        force_destroy=not settings.deletion_protection,
        provider=gcp_provider,
        opts=after_apis,
    )
    broker = ManagedValkey(
        "valkey",
        instance_id=f"tabjob-{env}",
        region=settings.region,
        project=settings.project,
        network_id=vpc.network.id,
        subnet_id=vpc.subnet.id,
        node_type=settings.valkey_node_type,
        replicas=settings.valkey_replicas,
        engine_version=settings.valkey_engine_version,
        deletion_protection=settings.deletion_protection,
        provider=gcp_provider,
        opts=after_apis,
    )
    identity = WorkloadIdentity(
        "app-identity",
        account_id=f"tabjob-app-{env}",
        workload_pool=gke.workload_pool,
        namespace=cfg.namespace,
        service_account=SERVICE_ACCOUNT,
        bucket=storage.bucket,
        provider=gcp_provider,
        opts=after_apis,
    )
    provider = gke.provider
    namespace = _namespace(cfg, provider)
    # A reserved address keeps apiUrl stable across Ingress re-creation.
    address = gcp.compute.GlobalAddress(
        "api", opts=pulumi.ResourceOptions(provider=gcp_provider, depends_on=apis.services)
    )
    assert cfg.api_host is not None  # load_config requires it for cluster=gke
    # GKE provisions and renews the certificate once the name resolves to the address.
    certificate = k8s.apiextensions.CustomResource(
        "api-certificate",
        api_version="networking.gke.io/v1",
        kind="ManagedCertificate",
        metadata={"namespace": namespace.metadata.name},
        spec={"domains": [cfg.api_host]},
        opts=pulumi.ResourceOptions(provider=provider),
    )
    annotations: dict[str, pulumi.Input[str]] = {
        "kubernetes.io/ingress.class": "gce",
        "kubernetes.io/ingress.global-static-ip-name": address.name,
        # A CustomResource's metadata comes back untyped (a dict), hence no `.name`.
        "networking.gke.io/managed-certificates": certificate.metadata.apply(lambda m: m["name"]),
        # API keys travel in headers: no plain-HTTP listener at all.
        "kubernetes.io/ingress.allow-http": "false",
    }
    placement = Placement(
        gpu_enabled=True,
        gpu_node_selector={GPU_NODE_LABEL: settings.gpu_type},
        service_account_annotations={ANNOTATION: identity.email},
        ingress={
            "enabled": True,
            # GKE's controller is chosen by the annotation above, not by an IngressClass.
            "className": "",
            "host": cfg.api_host,
            # TLS is terminated by the load balancer with the managed certificate.
            "tls": {"enabled": False, "secretName": ""},
            "annotations": annotations,
        },
    )
    backends = Backends(
        redis_url=broker.redis_url,
        redis_address=broker.redis_address,
        redis_tls=broker.tls,
        redis_password=broker.password,
        s3_endpoint=storage.endpoint,
        s3_public_endpoint=storage.public_endpoint,
        s3_bucket=storage.bucket,
        s3_region=storage.region,
        s3_access_key=storage.access_key,
        s3_secret_key=storage.secret_key,
        redis_ca=broker.ca_certificate,
    )
    # Bootstrap: the first `pulumi up` creates the registry CI pushes to, so there is no image
    # to run yet; the release follows on the first deploy, which sets tabjob:imageDigest.
    bootstrap = cfg.images.digest is None and cfg.images.repository is None
    if bootstrap:
        pulumi.log.warn(
            "tabjob:imageDigest is not set: infrastructure only, no tabjob release. "
            f"Push images to {registry.url} and set the digests (CI/CD does) to deploy the app."
        )
    _app_layer(
        cfg,
        provider=provider,
        namespace=namespace,
        images=_images(cfg, f"{registry.url}/tabjob"),
        backends=backends,
        placement=placement,
        depends_on=[gke.gpu_pool, broker, storage, identity],
        deploy_release=not bootstrap,
    )
    return {
        "apiUrl": f"https://{cfg.api_host}",
        "kubeconfig": gke.kubeconfig,
        "bucket": storage.bucket,
        "imageRegistry": registry.url,
        # Point the apiHost DNS A record here.
        "apiAddress": address.address,
    }


def _build_existing(cfg: StackConfig) -> dict[str, Any]:
    settings = cfg.existing
    assert settings is not None  # load_config fills it for cluster=existing
    provider = k8s.Provider("existing", kubeconfig=settings.kubeconfig)
    namespace = _namespace(cfg, provider)
    ingress: dict[str, Any] = {"enabled": False}
    if cfg.api_host:
        ingress = {
            "enabled": True,
            "className": settings.ingress_class,
            "host": cfg.api_host,
            "tls": {"enabled": False, "secretName": ""},
            "annotations": {},
        }
    backends = Backends(
        redis_url=settings.redis_url,
        redis_address=settings.redis_url.split("://", 1)[1].split("/", 1)[0].split("@")[-1],
        redis_tls=settings.redis_url.startswith("rediss://"),
        redis_password=settings.redis_password or pulumi.Output.secret(""),
        s3_endpoint=settings.s3_endpoint,
        s3_public_endpoint=settings.s3_public_endpoint,
        s3_bucket=settings.s3_bucket,
        s3_region=settings.s3_region,
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
    )
    _app_layer(
        cfg,
        provider=provider,
        namespace=namespace,
        images=_images(cfg, ""),
        backends=backends,
        placement=Placement(gpu_enabled=False, ingress=ingress),
        depends_on=[],
    )
    repository = cfg.images.repository or ""
    return {
        "apiUrl": f"http://{cfg.api_host}" if cfg.api_host else "",
        "kubeconfig": settings.kubeconfig,
        "bucket": settings.s3_bucket,
        "imageRegistry": repository.rsplit("/", 1)[0] if "/" in repository else "",
    }
