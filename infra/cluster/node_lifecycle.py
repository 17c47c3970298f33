"""How GKE's nodes are shaped and replaced: the maintenance window, boot disks, and how each pool
upgrades without killing long jobs; and the SSD quota that follows from them."""

from __future__ import annotations

from infra.config import GkeSettings

# When GKE may upgrade the control plane and nodes: weekends, 02:00-08:00 UTC (12 h a week, above
# GKE's minimum of 48 h in any 32 days). Outside it GKE starts no automatic upgrade; a node
# upgrade drains a node, and GKE evicts its pods after at most an hour
# (https://cloud.google.com/kubernetes-engine/docs/concepts/maintenance-windows-and-exclusions).
MAINTENANCE_WINDOW = {
    "start_time": "2026-01-03T02:00:00Z",
    "end_time": "2026-01-03T08:00:00Z",
    "recurrence": "FREQ=WEEKLY;BYDAY=SA,SU",
}
# Boot disks. pd-balanced counts against the region's SSD_TOTAL_GB quota (often 500 GB in a new
# project; https://cloud.google.com/compute/resource-usage#disk_quota), so each pool's size is
# set here rather than GKE's 100 GB default, and docs/operations.md's quota table follows
# ssd_quota_gb(). GPU nodes keep room for the multi-GB CUDA image and its layers.
CPU_DISK = {"disk_type": "pd-balanced", "disk_size_gb": 50}
GPU_DISK = {"disk_type": "pd-balanced", "disk_size_gb": 100}
# The default pool GKE creates with the cluster (one node per zone of the region, GKE's default
# 100 GB pd-balanced disk) exists until the cluster is up and is then removed.
DEFAULT_POOL_SSD_GB = 3 * 100

# CPU nodes: a new node first, then drain the old one (surge 1, none unavailable).
CPU_UPGRADE = {"strategy": "SURGE", "max_surge": 1, "max_unavailable": 0}
# GPU nodes: no surge node (it would need a GPU beyond the pool's maximum and the project's
# quota); one node at a time is drained, its Jobs get SIGTERM (checkpoint and requeue, then the
# message runs again on the upgraded node). A pool at zero nodes upgrades instantly.
# https://cloud.google.com/kubernetes-engine/docs/concepts/node-pool-upgrade-strategies#surge
GPU_UPGRADE = {"strategy": "SURGE", "max_surge": 0, "max_unavailable": 1}


def ssd_quota_gb(settings: GkeSettings) -> int:
    """SSD_TOTAL_GB the stack's nodes can hold at once: every CPU node at the pool's maximum plus
    its upgrade surge node, every GPU node (no surge), or the cluster's creation (GKE's default
    pool beside the CPU pool's first node per zone), whichever is more."""
    cpu_nodes = settings.cpu_max_nodes + CPU_UPGRADE["max_surge"]
    running = cpu_nodes * CPU_DISK["disk_size_gb"] + settings.gpu_max_nodes * GPU_DISK["disk_size_gb"]
    creating = DEFAULT_POOL_SSD_GB + 3 * CPU_DISK["disk_size_gb"]
    return max(running, creating)
