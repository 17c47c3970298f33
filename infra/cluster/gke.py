"""A regional GKE cluster: Workload Identity, a CPU pool and a GPU pool that scales to zero."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml

from infra.cluster.network import PODS_RANGE, SERVICES_RANGE, Vpc
from infra.config import GkeSettings

# What GKE nodes need to report logs and metrics; nothing more (not the Editor role the
# default compute service account carries).
NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/autoscaling.metricsWriter",
)
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
GPU_NODE_LABEL = "cloud.google.com/gke-accelerator"
APIS = (
    "compute.googleapis.com",
    "container.googleapis.com",
    "artifactregistry.googleapis.com",
    "memorystore.googleapis.com",
    "networkconnectivity.googleapis.com",
    "serviceconsumermanagement.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
)


def gke_kubeconfig(name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig that authenticates with `gke-gcloud-auth-plugin` (no static credentials)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": f"https://{endpoint}",
                    "certificate-authority-data": ca_certificate,
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "gke-gcloud-auth-plugin",
                        "provideClusterInfo": True,
                        "installHint": "gcloud components install gke-gcloud-auth-plugin",
                    }
                },
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


class ProjectApis(pulumi.ComponentResource):
    """The Google APIs the stack uses, enabled (and left enabled on destroy)."""

    services: list[gcp.projects.Service]

    def __init__(self, name: str, *, provider: gcp.Provider, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("tabjob:cluster:ProjectApis", name, None, opts)
        self.services = [
            gcp.projects.Service(
                f"{name}-{api.split('.')[0]}",
                service=api,
                # Other workloads in the project may use the same APIs.
                disable_on_destroy=False,
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            for api in APIS
        ]
        self.register_outputs({})


class GkeCluster(pulumi.ComponentResource):
    """A regional, VPC-native GKE cluster with private nodes and two autoscaling node pools.

    Attributes:
        cluster: the GKE cluster.
        kubeconfig: its kubeconfig (secret).
        provider: the explicit Kubernetes provider every in-cluster resource must use.
        workload_pool: PROJECT.svc.id.goog, for Workload Identity bindings.
    """

    cluster: gcp.container.Cluster
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    workload_pool: str

    def __init__(
        self,
        name: str,
        *,
        settings: GkeSettings,
        vpc: Vpc,
        provider: gcp.Provider,
        node_account_id: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:cluster:GkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.workload_pool = f"{settings.project}.svc.id.goog"
        nodes = gcp.serviceaccount.Account(
            f"{name}-nodes",
            account_id=node_account_id,
            display_name="tabjob GKE nodes",
            opts=child,
        )
        self.node_account = nodes
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('/')[1].replace('.', '-').lower()}",
                project=settings.project,
                role=role,
                member=nodes.member,
                opts=child,
            )
        self.cluster = gcp.container.Cluster(
            name,
            location=settings.region,
            network=vpc.network.id,
            subnetwork=vpc.subnet.id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy={
                "cluster_secondary_range_name": PODS_RANGE,
                "services_secondary_range_name": SERVICES_RANGE,
            },
            # Node pools are managed below; GKE insists on creating a default one first.
            remove_default_node_pool=True,
            initial_node_count=1,
            release_channel={"channel": settings.release_channel},
            workload_identity_config={"workload_pool": self.workload_pool},
            private_cluster_config={"enable_private_nodes": True, "enable_private_endpoint": False},
            # NetworkPolicies in the chart are enforced by Dataplane V2.
            datapath_provider="ADVANCED_DATAPATH",
            deletion_protection=settings.deletion_protection,
            opts=child,
        )
        common_node_config = {
            "service_account": nodes.email,
            "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            # Pods see the GKE metadata server, so they get Workload Identity, not node creds.
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "shielded_instance_config": {
                "enable_secure_boot": True,
                "enable_integrity_monitoring": True,
            },
        }
        self.cpu_pool = gcp.container.NodePool(
            f"{name}-cpu",
            cluster=self.cluster.name,
            location=settings.region,
            initial_node_count=1,
            autoscaling={
                "total_min_node_count": settings.cpu_min_nodes,
                "total_max_node_count": settings.cpu_max_nodes,
                "location_policy": "BALANCED",
            },
            management={"auto_repair": True, "auto_upgrade": True},
            node_config={
                **common_node_config,
                "machine_type": settings.cpu_machine_type,
                "labels": {"tabjob.io/pool": "cpu"},
            },
            opts=child,
        )
        self.gpu_pool = gcp.container.NodePool(
            f"{name}-gpu",
            cluster=self.cluster.name,
            location=settings.region,
            initial_node_count=0,
            autoscaling={
                # Zero when no GPU job is queued: L4 nodes are the stack's biggest cost.
                "total_min_node_count": 0,
                "total_max_node_count": settings.gpu_max_nodes,
                # Take a GPU wherever a zone has capacity.
                "location_policy": "ANY",
            },
            management={"auto_repair": True, "auto_upgrade": True},
            node_config={
                **common_node_config,
                "machine_type": settings.gpu_machine_type,
                "spot": settings.gpu_spot,
                "guest_accelerators": [
                    {
                        "type": settings.gpu_type,
                        "count": settings.gpu_count,
                        # GKE installs the NVIDIA driver itself; no driver DaemonSet to manage.
                        "gpu_driver_installation_config": {"gpu_driver_version": settings.gpu_driver_version},
                    }
                ],
                # Only pods that tolerate the GPU taint (the gpu lane's Jobs) land here.
                "taints": [GPU_TAINT],
                "labels": {"tabjob.io/pool": "gpu"},
            },
            opts=child,
        )
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, self.cluster.endpoint, self.cluster.master_auth).apply(
                lambda args: gke_kubeconfig(args[0], args[1], (args[2] or {}).get("cluster_ca_certificate", ""))
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # Workloads need somewhere to run before anything is deployed through it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cpu_pool]),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig, "cluster": self.cluster.name})
