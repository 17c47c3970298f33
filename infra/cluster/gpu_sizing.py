"""What a GPU node can give a GPU Job: machine types, GKE's reservations, zones with the GPU.

GKE keeps part of every node for the kubelet, the container runtime and eviction, and its own
DaemonSets (networking, logging, metadata server, the NVIDIA device plugin) request more. A GPU
Job that asks for the machine's nominal size never schedules, so its CPU and memory requests
are derived here from the machine type, or the configuration is refused at preview.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuMachine:
    """A Compute Engine machine type with GPUs: vCPUs, memory in GiB (GCE's "GB" are GiB),
    its accelerator type and how many GPUs it may carry: fixed for g2/a2 (built in), and 1, 2
    or 4 T4s attached to an n1 (https://cloud.google.com/compute/docs/gpus#t4-gpus: GCE offers
    no 3-GPU T4 shape)."""

    vcpus: int
    memory_gib: float
    accelerator: str
    max_gpus: int
    fixed_gpus: bool = True

    @property
    def gpu_counts(self) -> tuple[int, ...]:
        """The GPU counts GCE offers for this machine type."""
        if self.fixed_gpus:
            return (self.max_gpus,)
        return tuple(n for n in (1, 2, 4) if n <= self.max_gpus)


MACHINES: dict[str, GpuMachine] = {
    "g2-standard-4": GpuMachine(4, 16, "nvidia-l4", 1),
    "g2-standard-8": GpuMachine(8, 32, "nvidia-l4", 1),
    "g2-standard-12": GpuMachine(12, 48, "nvidia-l4", 1),
    "g2-standard-16": GpuMachine(16, 64, "nvidia-l4", 1),
    "g2-standard-24": GpuMachine(24, 96, "nvidia-l4", 2),
    "g2-standard-32": GpuMachine(32, 128, "nvidia-l4", 1),
    "g2-standard-48": GpuMachine(48, 192, "nvidia-l4", 4),
    "g2-standard-96": GpuMachine(96, 384, "nvidia-l4", 8),
    "a2-highgpu-1g": GpuMachine(12, 85, "nvidia-tesla-a100", 1),
    "a2-highgpu-2g": GpuMachine(24, 170, "nvidia-tesla-a100", 2),
    "a2-highgpu-4g": GpuMachine(48, 340, "nvidia-tesla-a100", 4),
    "a2-highgpu-8g": GpuMachine(96, 680, "nvidia-tesla-a100", 8),
    "a2-ultragpu-1g": GpuMachine(12, 170, "nvidia-a100-80gb", 1),
    "n1-standard-4": GpuMachine(4, 15, "nvidia-tesla-t4", 4, fixed_gpus=False),
    "n1-standard-8": GpuMachine(8, 30, "nvidia-tesla-t4", 4, fixed_gpus=False),
    "n1-standard-16": GpuMachine(16, 60, "nvidia-tesla-t4", 4, fixed_gpus=False),
    "n1-highmem-8": GpuMachine(8, 52, "nvidia-tesla-t4", 4, fixed_gpus=False),
}

# Zones known to offer each accelerator, per region: the GPU pool's node locations unless
# tabjob:gpuZones says otherwise. Check with
# `gcloud compute accelerator-types list --filter="name=<type> AND zone~<region>"`.
GPU_ZONES: dict[tuple[str, str], tuple[str, ...]] = {
    ("us-central1", "nvidia-l4"): ("us-central1-a", "us-central1-b", "us-central1-c"),
    ("us-east4", "nvidia-l4"): ("us-east4-a", "us-east4-c"),
    ("europe-west4", "nvidia-l4"): ("europe-west4-a", "europe-west4-b", "europe-west4-c"),
    ("us-central1", "nvidia-tesla-t4"): ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
    ("us-central1", "nvidia-tesla-a100"): ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
}

# CPU and memory requests of the DaemonSets GKE runs on a GPU node, summed and rounded up:
# anetd (Dataplane V2), the NVIDIA driver installer and device plugin, fluentbit (logging),
# the GKE metadata server (Workload Identity), the DCGM exporter (GPU metrics) and the PD CSI
# node plugin come to about 780m CPU. GKE publishes the reservation
# formula (below), not these requests: they are read from `kubectl describe node` on a GKE GPU
# node, which docs/operations.md asks the first run to re-check.
SYSTEM_PODS_CPU_M = 800
SYSTEM_PODS_MEMORY_MI = 1280
# Hard eviction threshold GKE's kubelet keeps free (memory.available<100Mi).
EVICTION_MEMORY_MI = 100
# The kubelet's memory capacity is the guest's MemTotal, not the machine type's nominal size:
# the kernel and firmware keep part of it (about 2-3 % on GCE). Sized from 97 % of nominal.
KUBELET_CAPACITY_SHARE = 0.97
# The least a GPU Job needs besides its GPU: a core to feed it and room for the prepared matrix.
MIN_JOB_CPU_M = 1000
MIN_JOB_MEMORY_MI = 4096


@dataclass(frozen=True)
class JobResources:
    """CPU (millicores, whole cores) and memory (MiB) of one GPU Job; requests equal limits."""

    cpu_m: int
    memory_mi: int

    def as_values(self) -> dict[str, dict[str, str]]:
        """The chart's gpu.resources (the chart adds nvidia.com/gpu itself)."""
        amounts = {"cpu": f"{self.cpu_m}m", "memory": f"{self.memory_mi}Mi"}
        return {"requests": dict(amounts), "limits": dict(amounts)}


def reserved_cpu_m(vcpus: int) -> int:
    """GKE's CPU reservation: 6% of the first core, 1% of the second, 0.5% of the next two,
    0.25% of every core above four."""
    steps = ((1, 60.0), (1, 10.0), (2, 5.0), (max(0, vcpus - 4), 2.5))
    left, total = vcpus, 0.0
    for cores, per_core_m in steps:
        taken = min(left, cores)
        total += taken * per_core_m
        left -= taken
    return int(total + 0.999)


def reserved_memory_mi(memory_gib: float) -> int:
    """GKE's memory reservation: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8,
    6% of the next 112 and 2% above 128 GiB, plus 100 MiB for eviction."""
    steps = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (float("inf"), 0.02))
    left, total = memory_gib, 0.0
    for size, share in steps:
        taken = min(left, size)
        total += taken * share
        left -= taken
    return int(total * 1024 + 0.999) + EVICTION_MEMORY_MI


def machine(machine_type: str) -> GpuMachine:
    """The known GPU machine type, or ValueError naming the known ones."""
    if machine_type not in MACHINES:
        raise ValueError(
            f"tabjob:gpuMachineType {machine_type!r} is not a GPU machine type tabjob can size GPU "
            f"Jobs for; use one of {', '.join(MACHINES)}"
        )
    return MACHINES[machine_type]


def check_accelerator(machine_type: str, gpu_type: str, gpu_count: int) -> None:
    """Refuse a GPU type or count the machine type cannot carry."""
    spec = machine(machine_type)
    if gpu_type != spec.accelerator:
        raise ValueError(f"tabjob:gpuType {gpu_type!r} does not fit {machine_type}, which carries {spec.accelerator}")
    if gpu_count not in spec.gpu_counts:
        allowed = " or ".join(str(n) for n in spec.gpu_counts)
        raise ValueError(f"tabjob:gpuCount must be {allowed} for {machine_type}; got {gpu_count}")


def gpu_job_resources(machine_type: str, gpus_per_node: int, gpus_per_job: int = 1) -> JobResources:
    """Each GPU Job's share of the node's allocatable CPU and memory, after GKE's reservations
    and its DaemonSets, with as many Jobs per node as it has GPUs for.

    Raises:
        ValueError: naming the machine type and what a Job needs, when the share is too small.
    """
    spec = machine(machine_type)
    jobs = max(1, gpus_per_node // gpus_per_job)
    cpu_m = (spec.vcpus * 1000 - reserved_cpu_m(spec.vcpus) - SYSTEM_PODS_CPU_M) // jobs
    # Whole cores: OMP_NUM_THREADS is limits.cpu rounded up, so threads then match the quota.
    cpu_m = cpu_m // 1000 * 1000
    memory_mi = allocatable(machine_type).memory_mi - SYSTEM_PODS_MEMORY_MI
    memory_mi = memory_mi // jobs // 256 * 256
    if cpu_m < MIN_JOB_CPU_M or memory_mi < MIN_JOB_MEMORY_MI:
        raise ValueError(
            f"tabjob:gpuMachineType {machine_type} leaves {cpu_m / 1000:g} CPU and {memory_mi} MiB to each of "
            f"{jobs} GPU Job(s) after GKE's reservations; a GPU Job needs at least {MIN_JOB_CPU_M / 1000:g} CPU "
            f"and {MIN_JOB_MEMORY_MI} MiB: choose a larger machine type or fewer GPUs per node"
        )
    return JobResources(cpu_m=cpu_m, memory_mi=memory_mi)


def allocatable(machine_type: str) -> JobResources:
    """The node's allocatable CPU (millicores) and memory (MiB), before any DaemonSet: the
    kubelet's capacity less GKE's reservations and eviction threshold
    (https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes#memory_and_cpu_reservations)."""
    spec = machine(machine_type)
    return JobResources(
        cpu_m=spec.vcpus * 1000 - reserved_cpu_m(spec.vcpus),
        memory_mi=int(spec.memory_gib * 1024 * KUBELET_CAPACITY_SHARE) - reserved_memory_mi(spec.memory_gib),
    )


def gpu_zones(region: str, gpu_type: str, configured: list[str] | None) -> list[str]:
    """The GPU pool's zones: tabjob:gpuZones when set (each in the region), else the known
    zones of the accelerator in the region, else ValueError saying what to set."""
    if configured:
        outside = [zone for zone in configured if not zone.startswith(f"{region}-")]
        if outside:
            raise ValueError(f"tabjob:gpuZones must be zones of {region}; got {', '.join(outside)}")
        return list(configured)
    known = GPU_ZONES.get((region, gpu_type))
    if known is None:
        raise ValueError(
            f"No known zones of {region} offer {gpu_type}: set tabjob:gpuZones to the zones that do "
            f'(gcloud compute accelerator-types list --filter="name={gpu_type} AND zone~{region}")'
        )
    return list(known)
