"""The VPC GKE and Memorystore share: one subnet with secondary ranges, and NAT for egress."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

PODS_RANGE = "pods"
SERVICES_RANGE = "services"


class Vpc(pulumi.ComponentResource):
    """A custom-mode VPC, a regional subnet with pod/service ranges, and Cloud NAT.

    Nodes are private (no external IPs), so Cloud NAT gives them egress for image pulls
    from public registries (KEDA's images, Docker Hub).

    Attributes:
        network: the VPC.
        subnet: the node subnet, with secondary ranges `pods` and `services`.
    """

    network: gcp.compute.Network
    subnet: gcp.compute.Subnetwork

    def __init__(
        self,
        name: str,
        *,
        region: str,
        node_cidr: str,
        pods_cidr: str,
        services_cidr: str,
        provider: gcp.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tabjob:cluster:Vpc", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.network = gcp.compute.Network(name, auto_create_subnetworks=False, routing_mode="REGIONAL", opts=child)
        self.subnet = gcp.compute.Subnetwork(
            name,
            network=self.network.id,
            region=region,
            ip_cidr_range=node_cidr,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                {"range_name": PODS_RANGE, "ip_cidr_range": pods_cidr},
                {"range_name": SERVICES_RANGE, "ip_cidr_range": services_cidr},
            ],
            opts=child,
        )
        router = gcp.compute.Router(name, network=self.network.id, region=region, opts=child)
        gcp.compute.RouterNat(
            name,
            router=router.name,
            region=region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            opts=child,
        )
        self.register_outputs({"network": self.network.id, "subnet": self.subnet.id})
