"""A regional GKE cluster: Workload Identity, a CPU pool and a GPU pool that scales to zero.

The component is split into named helpers (`_node_account`, `_cluster`, `_cpu_pool`,
`_gpu_pool`, `_control_plane_firewall`), one per concern."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml

from infra.cluster.network import PODS_RANGE, SERVICES_RANGE, Vpc
from infra.cluster.node_lifecycle import CPU_DISK, CPU_UPGRADE, GPU_DISK, GPU_UPGRADE, MAINTENANCE_WINDOW
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
    # Project IAM bindings (the node account's roles) go through the Resource Manager API.
    "cloudresourcemanager.googleapis.com",
)
# On a private cluster GKE's own firewall rule lets the control plane reach nodes on 443 and
# 10250 only; KEDA serves the external metrics API on 6443 and its admission webhooks on 9443.
KEDA_CONTROL_PLANE_PORTS = ("6443", "9443")


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
        workload_pool: PROJECT.svc.id.goog, read from the cluster: the pool exists only once
            the cluster does, so a binding that uses it waits for the cluster.
    """

    cluster: gcp.container.Cluster
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    workload_pool: pulumi.Output[str]

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
        self._name, self._settings = name, settings
        self._child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.node_account = self._node_account(node_account_id)
        self.cluster = self._cluster(vpc)
        self.workload_pool = self.cluster.workload_identity_config.apply(_workload_pool_of)
        node_config = self._common_node_config()
        self.cpu_pool = self._cpu_pool(node_config)
        self.gpu_pool = self._gpu_pool(node_config)
        self.control_plane_firewall = self._control_plane_firewall(vpc)
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, self.cluster.endpoint, self.cluster.master_auth).apply(
                lambda args: gke_kubeconfig(args[0], args[1], _ca_of(args[2]))
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # Workloads need somewhere to run, and KEDA's webhooks a way in, before anything
            # is deployed through it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cpu_pool, self.control_plane_firewall]),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig, "cluster": self.cluster.name})

    def _node_account(self, account_id: str) -> gcp.serviceaccount.Account:
        """The nodes' service account, with only the roles logging and metrics need."""
        nodes = gcp.serviceaccount.Account(
            f"{self._name}-nodes", account_id=account_id, display_name="tabjob GKE nodes", opts=self._child
        )
        for role in NODE_ROLES:
            gcp.projects.IAMMember(
                f"{self._name}-nodes-{role.split('/')[1].replace('.', '-').lower()}",
                project=self._settings.project,
                role=role,
                member=nodes.member,
                opts=self._child,
            )
        return nodes

    def _cluster(self, vpc: Vpc) -> gcp.container.Cluster:
        settings = self._settings
        return gcp.container.Cluster(
            self._name,
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
            workload_identity_config={"workload_pool": f"{settings.project}.svc.id.goog"},
            private_cluster_config={
                "enable_private_nodes": True,
                "enable_private_endpoint": False,
                # A fixed range, so the firewall rule below can name the control plane.
                "master_ipv4_cidr_block": settings.master_cidr,
            },
            # NetworkPolicies in the chart are enforced by Dataplane V2.
            datapath_provider="ADVANCED_DATAPATH",
            maintenance_policy={"recurring_window": MAINTENANCE_WINDOW},
            deletion_protection=settings.deletion_protection,
            opts=self._child,
        )

    def _common_node_config(self) -> dict:
        return {
            "service_account": self.node_account.email,
            "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            # Pods see the GKE metadata server, so they get Workload Identity, not node creds.
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        }

    def _cpu_pool(self, node_config: dict) -> gcp.container.NodePool:
        settings = self._settings
        return gcp.container.NodePool(
            f"{self._name}-cpu",
            cluster=self.cluster.name,
            location=settings.region,
            initial_node_count=1,
            autoscaling={
                "total_min_node_count": settings.cpu_min_nodes,
                "total_max_node_count": settings.cpu_max_nodes,
                "location_policy": "BALANCED",
            },
            management={"auto_repair": True, "auto_upgrade": True},
            upgrade_settings=CPU_UPGRADE,
            node_config={
                **node_config,
                **CPU_DISK,
                "machine_type": settings.cpu_machine_type,
                "labels": {"tabjob.io/pool": "cpu"},
            },
            opts=self._child,
        )

    def _gpu_pool(self, node_config: dict) -> gcp.container.NodePool:
        settings = self._settings
        accelerator = {
            "type": settings.gpu_type,
            "count": settings.gpu_count,
            # GKE installs the NVIDIA driver itself; no driver DaemonSet to manage.
            "gpu_driver_installation_config": {"gpu_driver_version": settings.gpu_driver_version},
        }
        return gcp.container.NodePool(
            f"{self._name}-gpu",
            cluster=self.cluster.name,
            location=settings.region,
            # Only zones that have the accelerator: elsewhere a scale-up can never succeed.
            node_locations=settings.gpu_zones,
            initial_node_count=0,
            autoscaling={
                # Zero when no GPU job is queued: GPU nodes are the stack's biggest cost.
                "total_min_node_count": 0,
                "total_max_node_count": settings.gpu_max_nodes,
                # Take a GPU wherever one of those zones has capacity.
                "location_policy": "ANY",
            },
            management={"auto_repair": True, "auto_upgrade": True},
            upgrade_settings=GPU_UPGRADE,
            node_config={
                **node_config,
                **GPU_DISK,
                "machine_type": settings.gpu_machine_type,
                "spot": settings.gpu_spot,
                "guest_accelerators": [accelerator],
                # Only pods that tolerate the GPU taint (the gpu lane's Jobs) land here.
                "taints": [GPU_TAINT],
                "labels": {"tabjob.io/pool": "gpu"},
            },
            opts=self._child,
        )

    def _control_plane_firewall(self, vpc: Vpc) -> gcp.compute.Firewall:
        """Let the private control plane reach KEDA's metrics API and webhooks on the nodes."""
        return gcp.compute.Firewall(
            f"{self._name}-control-plane-to-keda",
            network=vpc.network.id,
            direction="INGRESS",
            source_ranges=[self._settings.master_cidr],
            target_service_accounts=[self.node_account.email],
            allows=[{"protocol": "tcp", "ports": list(KEDA_CONTROL_PLANE_PORTS)}],
            description="GKE control plane to KEDA's metrics API server (6443) and admission webhooks (9443)",
            opts=self._child,
        )


def _ca_of(master_auth: object) -> str:
    """The cluster CA from master_auth (a typed object from the provider, a dict under mocks)."""
    if master_auth is None:
        return ""
    if isinstance(master_auth, dict):
        return master_auth.get("cluster_ca_certificate") or master_auth.get("clusterCaCertificate") or ""
    return getattr(master_auth, "cluster_ca_certificate", "") or ""


def _workload_pool_of(config: object) -> str | None:
    """workload_identity_config.workload_pool (a typed dict from the provider, a dict under mocks)."""
    if not isinstance(config, dict):
        return getattr(config, "workload_pool", None)
    return config.get("workload_pool") or config.get("workloadPool")
