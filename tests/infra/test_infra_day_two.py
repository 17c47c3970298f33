"""Day two on GKE: upgrades that do not kill long jobs, and a registry that does not grow forever.

Rules, with their sources:
- GKE starts automatic upgrades only inside a maintenance window, which must leave at least 48
  hours of availability in any 32 days
  (https://cloud.google.com/kubernetes-engine/docs/concepts/maintenance-windows-and-exclusions).
- Surge upgrades create max_surge new nodes and drain max_unavailable old ones at a time; GKE
  force-evicts a draining node's pods after one hour
  (https://cloud.google.com/kubernetes-engine/docs/concepts/node-pool-upgrade-strategies).
  A surge GPU node would need a GPU beyond the pool's maximum (and the project's quota).
- Artifact Registry cleanup: KEEP policies win over DELETE; `older_than` is a duration in
  seconds; `most_recent_versions.keep_count` keeps the newest versions of each package
  (https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

STACKS = ("staging", "production")


def _hours_per_week(window: dict) -> float:
    start = dt.datetime.fromisoformat(window["startTime"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(window["endTime"].replace("Z", "+00:00"))
    days = re.search(r"BYDAY=([A-Z,]+)", window["recurrence"]).group(1).split(",")
    return (end - start).total_seconds() / 3600 * len(days)


@pytest.mark.parametrize("stack", STACKS)
def test_the_cluster_upgrades_only_in_a_weekend_window_gke_accepts(deployed_stacks, stack):
    cluster = deployed_stacks[stack].one("gcp:container/cluster:Cluster")
    window = cluster.inputs["maintenancePolicy"]["recurringWindow"]
    assert window["recurrence"].startswith("FREQ=WEEKLY;BYDAY=")
    # 48 hours in any 32 days: 4 full weeks of the window must reach 48.
    assert _hours_per_week(window) * 4 >= 48


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_nodes_upgrade_without_a_surge_gpu_and_cpu_nodes_with_one(deployed_stacks, stack):
    run = deployed_stacks[stack]
    gpu = run.one("gcp:container/nodePool:NodePool", "gke-gpu").inputs["upgradeSettings"]
    cpu = run.one("gcp:container/nodePool:NodePool", "gke-cpu").inputs["upgradeSettings"]
    assert gpu == {"strategy": "SURGE", "maxSurge": 0, "maxUnavailable": 1}
    assert cpu == {"strategy": "SURGE", "maxSurge": 1, "maxUnavailable": 0}


@pytest.mark.parametrize("stack", STACKS)
def test_the_registry_keeps_recent_images_and_deletes_old_ones(deployed_stacks, stack):
    repository = deployed_stacks[stack].one("gcp:artifactregistry/repository:Repository")
    assert repository.inputs["cleanupPolicyDryRun"] is False
    policies = {p["id"]: p for p in repository.inputs["cleanupPolicies"]}
    keep, delete = policies["keep-recent"], policies["delete-old"]
    assert keep["action"] == "KEEP" and keep["mostRecentVersions"]["keepCount"] >= 10
    assert delete["action"] == "DELETE" and delete["condition"]["tagState"] == "ANY"
    seconds = re.fullmatch(r"(\d+)s", delete["condition"]["olderThan"])
    assert seconds and int(seconds.group(1)) >= 30 * 86400, "a rollback target outlives a month"


def test_pulumi_gcp_is_capped_at_the_major_the_tests_run():
    # A new major of pulumi-gcp renames and removes inputs; the mocks would not notice.
    import importlib.metadata
    import tomllib

    from infra_harness import ROOT

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["infra"]
    (spec,) = [d for d in dependencies if d.startswith("pulumi-gcp")]
    cap = int(re.search(r"<(\d+)", spec).group(1))
    installed = int(importlib.metadata.version("pulumi-gcp").split(".")[0])
    assert cap == installed + 1, spec


def test_the_docs_quota_table_says_what_each_stack_needs():
    # Boot disks count against SSD_TOTAL_GB (pd-balanced), often 500 GB in a new project.
    from infra_harness import ROOT, configure, stack_config

    from infra.cluster.node_lifecycle import ssd_quota_gb
    from infra.config import load_config

    docs = (ROOT / "docs" / "operations.md").read_text()
    row = re.search(r"\| SSD_TOTAL_GB \(boot disks\) \| (\d+) \| (\d+) \|", docs)
    assert row, "docs/operations.md has no SSD_TOTAL_GB row"
    for stack, documented in zip(STACKS, row.groups(), strict=True):
        configure(stack, stack_config(stack))
        assert ssd_quota_gb(load_config().gke) == int(documented), stack


@pytest.mark.parametrize(("scaling", "kind"), [("scaledjob", "ScaledJob"), ("deployment", "Deployment")])
def test_gpu_scaling_chooses_the_gpu_lanes_workload_on_gke(scaling, kind):
    from infra_harness import DIGEST, GPU_DIGEST, run_program, stack_config

    config = {**stack_config("staging"), "imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST, "gpuScaling": scaling}
    values = run_program("staging", config).one("kubernetes:helm.sh/v3:Release", "tabjob").inputs["values"]
    assert values["gpu"]["scaling"] == scaling, kind


def test_an_unknown_gpu_scaling_is_refused():
    from infra_harness import DIGEST, GPU_DIGEST, run_program, stack_config

    config = {**stack_config("staging"), "imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST, "gpuScaling": "pods"}
    with pytest.raises(ValueError, match="tabjob:gpuScaling must be one of scaledjob, deployment"):
        run_program("staging", config)
