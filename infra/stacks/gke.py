"""The staging and production stacks: GKE, Memorystore for Valkey, GCS and Artifact Registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from infra.cluster import gpu_sizing
from infra.cluster.gke import GPU_NODE_LABEL, GkeCluster, ProjectApis
from infra.cluster.network import Vpc
from infra.config import GkeSettings, StackConfig
from infra.platform.broker import ManagedValkey
from infra.platform.identity import ANNOTATION, WorkloadIdentity
from infra.platform.registry import ArtifactRegistry
from infra.platform.storage import GcsStorage
from infra.release_values import SERVICE_ACCOUNT, Backends, Placement
from infra.stacks.common import app_layer, namespace, release_images, release_outputs


@dataclass(frozen=True)
class _Platform:
    """The Google Cloud resources the app runs on."""

    apis: ProjectApis
    gke: GkeCluster
    registry: ArtifactRegistry
    storage: GcsStorage
    broker: ManagedValkey
    identity: WorkloadIdentity


def build_gke(cfg: StackConfig) -> dict[str, Any]:
    settings = cfg.gke
    assert settings is not None  # load_config fills it for cluster=gke
    assert cfg.api_host is not None  # load_config requires it for cluster=gke
    apis = ProjectApis("apis", provider=gcp.Provider("gcp", project=settings.project, region=settings.region))
    # Every other Google resource goes through this provider, which waits for the APIs: a
    # component's depends_on does not reach its children, a provider does.
    gcp_provider = gcp.Provider(
        "gcp-after-apis",
        project=settings.project,
        region=settings.region,
        opts=pulumi.ResourceOptions(depends_on=apis.services),
    )
    platform = _platform(cfg, settings, apis, gcp_provider)
    provider = platform.gke.provider
    ns = namespace(cfg, provider)
    # A reserved address keeps apiUrl stable across Ingress re-creation.
    address = gcp.compute.GlobalAddress("api", opts=pulumi.ResourceOptions(provider=gcp_provider))
    release = app_layer(
        cfg,
        provider=provider,
        namespace=ns,
        images=release_images(cfg, f"{platform.registry.url}/tabjob"),
        backends=_backends(platform),
        placement=_placement(cfg.api_host, settings, platform, ns, address, provider),
        depends_on=[platform.gke.gpu_pool, platform.broker, platform.storage, platform.identity],
    )
    return {
        "apiUrl": f"https://{cfg.api_host}",
        "kubeconfig": platform.gke.kubeconfig,
        "bucket": platform.storage.bucket,
        "imageRegistry": platform.registry.url,
        # Point the apiHost DNS A record here.
        "apiAddress": address.address,
        **release_outputs(cfg, release),
    }


def _platform(cfg: StackConfig, settings: GkeSettings, apis: ProjectApis, gcp_provider: gcp.Provider) -> _Platform:
    env = cfg.environment
    vpc = Vpc(
        "vpc",
        region=settings.region,
        node_cidr=settings.node_cidr,
        pods_cidr=settings.pods_cidr,
        services_cidr=settings.services_cidr,
        provider=gcp_provider,
    )
    gke = GkeCluster("gke", settings=settings, vpc=vpc, provider=gcp_provider, node_account_id=f"tabjob-nodes-{env}")
    registry = ArtifactRegistry(
        "registry",
        project=settings.project,
        region=settings.region,
        reader_member=gke.node_account.member,
        provider=gcp_provider,
    )
    storage = GcsStorage(
        "storage",
        region=settings.region,
        account_id=f"tabjob-s3-{env}",
        retention_days=settings.object_retention_days,
        expiring_suffixes=settings.expiring_suffixes,
        # Production data outlives a mistaken `pulumi destroy`.
        force_destroy=not settings.deletion_protection,
        provider=gcp_provider,
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
    )
    identity = WorkloadIdentity(
        "app-identity",
        account_id=f"tabjob-app-{env}",
        # The cluster's output, not a string: the binding waits for the pool to exist.
        workload_pool=gke.workload_pool,
        namespace=cfg.namespace,
        service_account=SERVICE_ACCOUNT,
        bucket=storage.bucket,
        provider=gcp_provider,
    )
    # The app's pods log in to the broker as their Google service account (IAM authentication).
    broker.allow_connect(pulumi.Output.concat("serviceAccount:", identity.email))
    return _Platform(apis, gke, registry, storage, broker, identity)


def _placement(
    api_host: str,
    settings: GkeSettings,
    platform: _Platform,
    ns: k8s.core.v1.Namespace,
    address: gcp.compute.GlobalAddress,
    provider: k8s.Provider,
) -> Placement:
    # GKE provisions and renews the certificate once the name resolves to the address.
    certificate = k8s.apiextensions.CustomResource(
        "api-certificate",
        api_version="networking.gke.io/v1",
        kind="ManagedCertificate",
        metadata={"namespace": ns.metadata.name},
        spec={"domains": [api_host]},
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
    return Placement(
        gpu_enabled=True,
        gpu_node_selector={GPU_NODE_LABEL: settings.gpu_type},
        service_account_annotations={ANNOTATION: platform.identity.email},
        ingress={
            "enabled": True,
            # GKE's controller is chosen by the annotation above, not by an IngressClass.
            "className": "",
            "host": api_host,
            # TLS is terminated by the load balancer with the managed certificate.
            "tls": {"enabled": False, "secretName": ""},
            "annotations": annotations,
        },
        # Sized from the GPU pool's machine type (load_config refused sizes that do not fit).
        gpu_resources=gpu_sizing.gpu_job_resources(settings.gpu_machine_type, settings.gpu_count).as_values(),
        # One GPU per Job: never more Jobs than the pool can ever hold GPUs.
        gpu_max_jobs=settings.gpu_max_nodes * settings.gpu_count,
        # scaledjob (default): a Job per message, rolled out gradually, so a deploy or a rotated
        # secret never stops a GPU job that has run for hours. deployment: warm pods (a model
        # step 3.6 s instead of 40 s, docs/models.md), rolled by every image change.
        gpu_scaling=settings.gpu_scaling,
        backend_config=True,
    )


def _backends(platform: _Platform) -> Backends:
    broker, storage = platform.broker, platform.storage
    return Backends(
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
        redis_auth=broker.auth,
    )
