"""What every cluster kind shares: the namespace, the images to release, KEDA and the release."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.app import Backends, Images, Placement, TabjobRelease
from infra.config import StackConfig
from infra.config_keys import KIND_IMAGE_TAG
from infra.platform.dask_operator import DaskOperator
from infra.platform.keda import Keda
from infra.platform.monitoring import KubePrometheusStack, tabjob_monitoring_values


def release_images(cfg: StackConfig, default_repository: pulumi.Input[str]) -> Images | None:
    """The images the release runs, or None when this run declares infrastructure only.

    kind runs what `task dev` built locally, by tag. Elsewhere a release needs a digest
    (what CI/CD passes, the last deploy's `imageDigest` output included) or an explicitly set
    `tabjob:imageTag`. Without either, a plan would remove the running app, so the program
    stops, unless `tabjob:bootstrap` says this is the first run of a new stack.

    Raises:
        ValueError: saying which keys to set.
    """
    images = cfg.images
    repository = images.repository or default_repository
    tag = images.tag or (KIND_IMAGE_TAG if cfg.cluster == "kind" else "")
    resolved = Images(
        repository=repository,
        gpu_repository=images.gpu_repository or pulumi.Output.concat(repository, "-gpu"),
        tag=tag,
        digest=images.digest,
        gpu_digest=images.gpu_digest,
    )
    if cfg.cluster == "kind" or images.digest is not None or images.tag is not None:
        if cfg.cluster == "gke" and images.digest is not None and images.gpu_digest is None:
            raise ValueError(
                "tabjob:gpuImageDigest is required with tabjob:imageDigest on gke: the GPU lane would "
                "otherwise run an image CI never pushed. Set it from the last deploy's gpuImageDigest output."
            )
        return resolved
    if cfg.bootstrap:
        pulumi.log.warn(
            "tabjob:bootstrap is true and no tabjob:imageDigest is set: infrastructure only, no tabjob "
            "release. Push the images, then deploy with the digests (CI/CD does) and set bootstrap false."
        )
        return None
    raise ValueError(
        "tabjob:imageDigest is not set, and a run without it would remove the deployed app. Set "
        "tabjob:imageDigest and tabjob:gpuImageDigest (the deploy workflow passes the last deploy's "
        "imageDigest/gpuImageDigest stack outputs; read them with `pulumi stack output imageDigest`), "
        "or tabjob:imageTag to deploy a tag, or tabjob:bootstrap=true for the first `pulumi up` of a "
        "new stack, before any image exists."
    )


def namespace(cfg: StackConfig, provider: k8s.Provider) -> k8s.core.v1.Namespace:
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


def app_layer(
    cfg: StackConfig,
    *,
    provider: k8s.Provider,
    namespace: k8s.core.v1.Namespace,
    images: Images | None,
    backends: Backends,
    placement: Placement,
    depends_on: list[pulumi.Resource],
) -> TabjobRelease | None:
    """KEDA (unless the cluster has it already) and the tabjob release (unless `images` is None)."""
    waits = list(depends_on)
    if cfg.install_keda:
        waits.append(Keda("keda", version=cfg.keda_version, provider=provider).release)
    if cfg.cluster in ("kind", "gke"):  # clusters we own; a customer's cluster installs it itself
        # The Dask engine's operator and CRDs (the chart's dask.enabled declares a DaskCluster).
        waits.append(DaskOperator("dask-operator", provider=provider).release)
    monitoring = None
    if cfg.monitoring_version is not None:  # its CRDs must exist before the chart's monitors
        stack = KubePrometheusStack(
            "monitoring", version=cfg.monitoring_version, provider=provider, alerting=cfg.alerting
        )
        waits.append(stack.release)
        monitoring = tabjob_monitoring_values()
    if images is None:
        return None
    return TabjobRelease(
        "tabjob",
        namespace=namespace.metadata.name,
        environment=cfg.environment,
        images=images,
        backends=backends,
        placement=placement,
        monitoring=monitoring,
        dask_engine=cfg.dask_engine,
        provider=provider,
        depends_on=waits,
    )


def release_outputs(cfg: StackConfig, release: TabjobRelease | None) -> dict[str, Any]:
    """Outputs every stack exports about its release.

    The digests go back into the next run's config (the workflows read them with
    `pulumi stack output`), so a run that builds nothing keeps what is deployed.
    `smokeApiKey` is the smoke test's key (secret; `--show-secrets` reads it).
    """
    return {
        "imageDigest": cfg.images.digest or "",
        "gpuImageDigest": cfg.images.gpu_digest or "",
        "smokeApiKey": release.smoke_api_key if release is not None else pulumi.Output.secret(""),
    }
