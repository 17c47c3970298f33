"""The dev stack: a local kind cluster with Valkey and SeaweedFS inside it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.cluster.kind import API_NODE_PORT, S3_NODE_PORT, KindCluster
from infra.config import StackConfig
from infra.platform.broker import InClusterValkey
from infra.platform.seaweedfs import SeaweedFs
from infra.release_values import API_POD_LABELS, API_PORT, Backends, Placement
from infra.stacks.common import app_layer, namespace, release_images, release_outputs

KIND_BUCKET = "tabjob"


def build_kind(cfg: StackConfig) -> dict[str, Any]:
    settings = cfg.kind
    assert settings is not None  # load_config fills it for cluster=kind
    images = release_images(cfg, "tabjob")
    assert images is not None  # kind always releases what was built locally
    # The pods carry the image ID: a rebuilt tabjob:dev (same tag, IfNotPresent) rolls them.
    images = replace(images, local_id=settings.image_id)
    cluster = KindCluster("kind", settings=settings)
    provider = cluster.provider
    ns = namespace(cfg, provider)
    valkey = InClusterValkey(
        "valkey",
        namespace=ns.metadata.name,
        image=settings.valkey_image,
        storage=settings.valkey_storage,
        provider=provider,
    )
    seaweedfs = SeaweedFs(
        "seaweedfs",
        namespace=ns.metadata.name,
        image=settings.seaweedfs_image,
        storage=settings.seaweedfs_storage,
        bucket=KIND_BUCKET,
        node_port=S3_NODE_PORT,
        host_port=settings.s3_host_port,
        provider=provider,
    )
    _api_host_service(ns, provider)
    release = app_layer(
        cfg,
        provider=provider,
        namespace=ns,
        images=images,
        backends=_backends(valkey, seaweedfs),
        placement=Placement(gpu_enabled=False),
        # The bucket Job included: the API is ready only once its bucket exists.
        depends_on=[cluster.images_loaded, valkey, seaweedfs.bucket_job],
    )
    return {
        "apiUrl": f"http://127.0.0.1:{settings.api_host_port}",
        "kubeconfig": cluster.kubeconfig,
        "bucket": seaweedfs.bucket,
        "imageRegistry": f"kind://{settings.cluster_name}",
        **release_outputs(cfg, release),
    }


def _api_host_service(ns: k8s.core.v1.Namespace, provider: k8s.Provider) -> k8s.core.v1.Service:
    # The chart's API Service stays ClusterIP; this one pins the NodePort that kind
    # publishes on 127.0.0.1:<apiHostPort>.
    return k8s.core.v1.Service(
        "api-host",
        metadata={"namespace": ns.metadata.name},
        spec={
            "type": "NodePort",
            "selector": API_POD_LABELS,
            "ports": [{"name": "http", "port": API_PORT, "targetPort": API_PORT, "nodePort": API_NODE_PORT}],
        },
        opts=pulumi.ResourceOptions(provider=provider),
    )


def _backends(valkey: InClusterValkey, seaweedfs: SeaweedFs) -> Backends:
    return Backends(
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
