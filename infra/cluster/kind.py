"""A local kind cluster created and deleted by the Pulumi program itself."""

from __future__ import annotations

import shlex

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import yaml

from infra.config import KindSettings
from infra.config_env import KIND_IMAGE_ARCHIVE_ENV

# NodePorts inside the kind node that the host ports are mapped onto. The API host Service
# and the SeaweedFS S3 Service use exactly these.
API_NODE_PORT = 30800
S3_NODE_PORT = 30833


def kind_config(settings: KindSettings) -> str:
    """The kind cluster config: one node, the API and S3 NodePorts published on 127.0.0.1.

    Binding to 127.0.0.1 keeps a developer's services off the local network.
    """
    node: dict = {
        "role": "control-plane",
        "extraPortMappings": [
            {
                "containerPort": API_NODE_PORT,
                "hostPort": settings.api_host_port,
                "listenAddress": "127.0.0.1",
                "protocol": "TCP",
            },
            {
                "containerPort": S3_NODE_PORT,
                "hostPort": settings.s3_host_port,
                "listenAddress": "127.0.0.1",
                "protocol": "TCP",
            },
        ],
    }
    if settings.node_image:
        node["image"] = settings.node_image
    config = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [node]}
    return yaml.safe_dump(config, sort_keys=False)


class KindCluster(pulumi.ComponentResource):
    """A kind cluster, the locally built image loaded into it, and one Kubernetes provider for it.

    Attributes:
        kubeconfig: the cluster's kubeconfig (secret), from `kind get kubeconfig`.
        provider: the explicit Kubernetes provider every in-cluster resource must use.
        images_loaded: the `kind load image-archive` command; depend on it before deploying.
    """

    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    images_loaded: command.local.Command

    def __init__(
        self,
        name: str,
        *,
        settings: KindSettings,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:cluster:KindCluster", name, None, opts)
        cluster = shlex.quote(settings.cluster_name)
        config_yaml = kind_config(settings)
        # The generated config goes in on stdin (`--config -`): no file is left behind, and
        # a changed config replaces the cluster through `triggers`.
        created = command.local.Command(
            f"{name}-create",
            create=f"kind create cluster --name {cluster} --config - --wait 120s",
            delete=f"kind delete cluster --name {cluster}",
            stdin=config_yaml,
            triggers=[settings.cluster_name, config_yaml],
            # Delete before replace: the new cluster has the same name and host ports, so
            # Pulumi's default (create the replacement first) would fail on any port or
            # node-image change with "node(s) already exist for a cluster with the name".
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        kubeconfig_cmd = command.local.Command(
            f"{name}-kubeconfig",
            create=f"kind get kubeconfig --name {cluster}",
            # Re-read on every update: the API server port changes when the cluster is recreated.
            update=f"kind get kubeconfig --name {cluster}",
            triggers=[created.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[created], additional_secret_outputs=["stdout"]),
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig_cmd.stdout)
        self.images_loaded = _load_image_archive(name, cluster, settings, created, parent=self)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig})


def _load_image_archive(
    name: str, cluster: str, settings: KindSettings, created: command.local.Command, *, parent: pulumi.Resource
) -> command.local.Command:
    """Load `task dev`'s `docker save` archive into the node, again whenever the image ID changes.

    An archive, not `kind load docker-image`, which fails when Docker keeps images in its
    containerd image store. Keyed on the image ID, not the tag: every build is tagged
    tabjob:dev, so a trigger on the tag would never reload a rebuilt image. A new cluster (its
    id) needs the image too. The path travels in the environment, so the command itself, and
    with it the plan, stays the same from one build to the next.
    """
    return command.local.Command(
        f"{name}-load-image",
        create=f'kind load image-archive --name {cluster} "${KIND_IMAGE_ARCHIVE_ENV}"',
        environment={KIND_IMAGE_ARCHIVE_ENV: settings.image_archive},
        triggers=[created.id, settings.image_id],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[created]),
    )
