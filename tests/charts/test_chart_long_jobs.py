"""Long jobs on Kubernetes (issue 22): every worker pod checkpoints its long fits at an interval
its grace period covers, asks the cluster autoscaler not to evict it, and the small lane keeps a
consumer for small work in the pod already running.

Rules encoded here, with their sources:
- KEDA hands a ScaledObject's scale-in to the HPA, which picks the pod to remove, busy or not
  (kedacore/keda#3674, a maintainer: "KEDA doesn't have any control about which pods are
  killed"); the HPA's scale-down stabilization window is at most 3600 s (kedacore/keda#4976), so
  no window covers a multi-hour fit. A SIGTERM must therefore cost at most one checkpoint interval:
  the interval plus the margin must fit in the grace period.
- The cluster autoscaler does not remove a node whose pods carry
  `cluster-autoscaler.kubernetes.io/safe-to-evict: "false"` (kubernetes/autoscaler, cluster-autoscaler
  FAQ, "What types of pods can prevent CA from removing a node?").
- Spot and preemptible GKE nodes get a 30 s notice, of which the kubelet gives non-system pods
  about 15 s on a best-effort basis (cloud.google.com/kubernetes-engine/docs/how-to/preemptible-vms,
  "Termination and graceful shutdown"): the gpu lane's interval stays within it.
"""

from __future__ import annotations

import helm_python as helm
import pytest
from chart_render import containers_of, env_of, merged_values, objects_of, pod_templates, render_objects, scenario_files
from chart_render import scenario_values as all_scenarios

SPOT_GRACE_S = 15


def worker_pods(objects: list[dict]) -> list[tuple[str, str, dict]]:
    """(where, lane, pod template) of every worker."""
    return [
        (where, t["metadata"]["labels"]["tabjob.io/lane"], t)
        for where, t in pod_templates(objects)
        if t["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    ]


@pytest.mark.parametrize("scenario", sorted(all_scenarios()))
def test_every_worker_checkpoints_within_its_grace_period_and_is_not_evicted_by_the_autoscaler(scenario):
    values = merged_values(all_scenarios()[scenario])
    pods = worker_pods(objects_of(scenario_files(scenario)))
    assert pods
    for where, lane, template in pods:
        configured = values["gpu"] if lane == "gpu" else values["workers"][lane]
        [container] = [c for c in containers_of(template["spec"]) if c["name"] == "worker"]
        env = env_of(container)
        interval_s = int(env["TABJOB_CHECKPOINT_INTERVAL_S"]["value"])
        assert interval_s == configured["checkpointIntervalS"], where
        # SIGTERM: the fit saves at its chunk's end (at most the interval), then the worker exits
        assert template["spec"]["terminationGracePeriodSeconds"] >= interval_s + values["gracePeriodMarginS"], where
        assert template["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false", where
        if lane == "gpu":  # spot GPU nodes: about 15 s between SIGTERM and the end
            assert interval_s <= SPOT_GRACE_S, where


def test_the_small_lane_keeps_a_consumer_for_small_work_in_every_pod():
    pods = {lane: template for _, lane, template in worker_pods(render_objects())}
    small = env_of(containers_of(pods["small"]["spec"])[0])
    assert small["TABJOB_WORKER_SMALL_WORK_CONSUMERS"]["value"] == "1"
    # The large lane's one job per pod is the whole pod's: no reserved consumer there
    assert "TABJOB_WORKER_SMALL_WORK_CONSUMERS" not in env_of(containers_of(pods["large"]["spec"])[0])
    # It can be turned off
    off = {lane: t for _, lane, t in worker_pods(render_objects({"workers": {"small": {"smallWorkConsumers": 0}}}))}
    assert "TABJOB_WORKER_SMALL_WORK_CONSUMERS" not in env_of(containers_of(off["small"]["spec"])[0])


@pytest.mark.parametrize(
    "values",
    [
        {"workers": {"large": {"checkpointIntervalS": 0}}},
        {"workers": {"small": {"smallWorkConsumers": 5}}},
        {"gpu": {"checkpointIntervalS": "15"}},
    ],
)
def test_the_schema_refuses_bad_checkpoint_and_small_work_values(values):
    with pytest.raises(helm.HelmValuesError):
        render_objects(values)
