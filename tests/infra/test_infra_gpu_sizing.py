"""GPU Job sizing from GKE's documented reservations, the DaemonSets a GKE GPU node runs and the
kubelet's memory capacity; GPU counts GCE offers.

Sources: GKE's reservation formula, https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes
(CPU: 6 % of the first core, 1 % of the second, 0.5 % of the next two, 0.25 % above four;
memory: 25 % of the first 4 GiB, 20 % of the next 4, 10 % of the next 8, 6 % of the next 112,
2 % above 128, plus a 100 MiB eviction threshold); T4 shapes on n1,
https://cloud.google.com/compute/docs/gpus#t4-gpus (1, 2 or 4 GPUs).
"""

from __future__ import annotations

import pytest

from infra.cluster import gpu_sizing


@pytest.mark.parametrize(("vcpus", "reserved_m"), [(1, 60), (2, 70), (4, 80), (8, 90), (16, 110)])
def test_cpu_reservation_follows_gkes_table(vcpus, reserved_m):
    assert gpu_sizing.reserved_cpu_m(vcpus) == reserved_m


def test_memory_reservation_follows_gkes_table_for_16_gib():
    # 1 GiB + 0.8 GiB + 0.8 GiB, plus the eviction threshold.
    assert gpu_sizing.reserved_memory_mi(16) == int(2.6 * 1024 + 0.999) + 100


def test_daemonsets_of_a_gpu_node_are_counted_at_gkes_figure_not_below():
    # anetd, NVIDIA driver installer and device plugin, fluentbit, metadata server, DCGM
    # exporter: about 780m on a GKE GPU node (the old 500m let a Job request more than is left).
    assert gpu_sizing.SYSTEM_PODS_CPU_M >= 780


@pytest.mark.parametrize("machine_type", sorted(gpu_sizing.MACHINES))
def test_every_job_and_the_daemonsets_fit_the_kubelets_capacity_not_the_nominal_size(machine_type):
    spec = gpu_sizing.machine(machine_type)
    for gpus in spec.gpu_counts:
        try:
            job = gpu_sizing.gpu_job_resources(machine_type, gpus)
        except ValueError:
            continue  # refused at preview, which is the point
        node = gpu_sizing.allocatable(machine_type)
        assert node.memory_mi < spec.memory_gib * 1024 - gpu_sizing.reserved_memory_mi(spec.memory_gib)
        assert gpus * job.cpu_m + gpu_sizing.SYSTEM_PODS_CPU_M <= node.cpu_m
        assert gpus * job.memory_mi + gpu_sizing.SYSTEM_PODS_MEMORY_MI <= node.memory_mi


@pytest.mark.parametrize("count", [1, 2, 4])
def test_n1_takes_one_two_or_four_t4s(count):
    gpu_sizing.check_accelerator("n1-standard-16", "nvidia-tesla-t4", count)


@pytest.mark.parametrize("count", [0, 3, 5])
def test_n1_refuses_other_t4_counts(count):
    with pytest.raises(ValueError, match=r"tabjob:gpuCount must be 1 or 2 or 4 for n1-standard-16"):
        gpu_sizing.check_accelerator("n1-standard-16", "nvidia-tesla-t4", count)


def test_g2_counts_are_fixed_by_the_machine_type():
    with pytest.raises(ValueError, match="must be 2 for g2-standard-24"):
        gpu_sizing.check_accelerator("g2-standard-24", "nvidia-l4", 1)
