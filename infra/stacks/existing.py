"""An existing cluster with its own broker and S3 store: only the app layer is deployed."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import StackConfig
from infra.release_values import Backends, Placement
from infra.stacks.common import app_layer, namespace, release_images, release_outputs


def build_existing(cfg: StackConfig) -> dict[str, Any]:
    settings = cfg.existing
    assert settings is not None  # load_config fills it for cluster=existing
    provider = k8s.Provider("existing", kubeconfig=settings.kubeconfig)
    ns = namespace(cfg, provider)
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
    release = app_layer(
        cfg,
        provider=provider,
        namespace=ns,
        images=release_images(cfg, ""),
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
        **release_outputs(cfg, release),
    }
