"""The chart's Dask engine (dask.enabled): a DaskCluster, its DaskAutoscaler to zero, a GPU
DaskWorkerGroup when the GPU lane is on, and NetworkPolicies letting only tabjob's workers reach the
scheduler. Dask objects are validated strictly against the Dask Kubernetes operator's CRDs vendored
in tests/charts/crds/dask-kubernetes-2025.4.3 (tag 2025.4.3 of dask/dask-kubernetes); core objects
with kubernetes-validate, as tests/charts/test_chart_schemas.py does for the rest."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import safe_yaml
from chart_render import KUBERNETES_VERSION, NAMESPACE, by_kind, objects_of, render_files
from test_chart_schemas import _strict

DASK_CRD_DIR = Path(__file__).resolve().parent / "crds" / "dask-kubernetes-2025.4.3"
DASK_KINDS = frozenset({"DaskCluster", "DaskAutoscaler", "DaskWorkerGroup"})
ON = {"dask": {"enabled": True}, "networkPolicy": {"enabled": True}}


@cache
def dask_validators() -> dict[str, jsonschema.Draft7Validator]:
    validators = {}
    for path in sorted(DASK_CRD_DIR.glob("*.yaml")):
        crd = safe_yaml.load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        validators[crd["spec"]["names"]["kind"]] = jsonschema.Draft7Validator(
            _strict(version["schema"]["openAPIV3Schema"])
        )
    return validators


@cache
def rendered(gpu: bool = False) -> list[dict[str, Any]]:
    values: dict[str, Any] = (
        {
            **ON,
            "gpu": {"enabled": True},
            "dask": {
                "enabled": True,
                "gpuWorkers": {
                    "replicas": 1,
                    "resources": {
                        "requests": {"cpu": "3", "memory": "12Gi", "nvidia.com/gpu": "1"},
                        "limits": {"cpu": "3", "memory": "12Gi", "nvidia.com/gpu": "1"},
                    },
                },
            },
        }
        if gpu
        else ON
    )
    return objects_of(render_files(values))


def test_off_by_default_nothing_of_dask_is_rendered() -> None:
    objects = objects_of(render_files({}))
    assert not [o for o in objects if o["kind"] in DASK_KINDS or "dask" in o["metadata"]["name"]]
    assert "TABJOB_DASK_SCHEDULER_ADDRESS" not in by_kind(objects, "ConfigMap")[0]["data"]


def test_dask_objects_are_valid_for_the_operators_crds() -> None:
    assert set(dask_validators()) == DASK_KINDS
    found = [o for o in rendered(gpu=True) if o["kind"] in DASK_KINDS]
    assert {o["kind"] for o in found} == DASK_KINDS
    for obj in found:
        # The operator's schemas declare spec and status only; the API server supplies the rest.
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        errors = sorted(dask_validators()[obj["kind"]].iter_errors(body), key=str)
        assert not errors, [e.message for e in errors]
        assert obj["metadata"]["namespace"] == NAMESPACE


def test_the_pods_the_operator_makes_are_valid_kubernetes() -> None:
    for obj in rendered(gpu=True):
        if obj["kind"] == "DaskCluster":
            specs = [obj["spec"]["scheduler"]["spec"], obj["spec"]["worker"]["spec"]]
        elif obj["kind"] == "DaskWorkerGroup":
            specs = [obj["spec"]["worker"]["spec"]]
        else:
            continue
        for spec in specs:
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": NAMESPACE}, "spec": spec}
            kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
            for container in spec["containers"]:
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
                assert container["resources"]["limits"]["memory"]
            # No credentials in Dask pods: no Secret reference, no ServiceAccount token.
            assert spec["automountServiceAccountToken"] is False
            assert "secretKeyRef" not in str(spec) and "envFrom" not in str(spec)


def test_cpu_workers_scale_to_zero_and_gpu_workers_run_one_per_gpu_on_the_gpu_pool() -> None:
    objects = rendered(gpu=True)
    cluster = by_kind(objects, "DaskCluster")[0]
    autoscaler = by_kind(objects, "DaskAutoscaler")[0]
    assert cluster["spec"]["worker"]["replicas"] == 0
    assert autoscaler["spec"] == {"cluster": cluster["metadata"]["name"], "minimum": 0, "maximum": 8}
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    assert worker["args"][worker["args"].index("--memory-limit") + 1] == "8Gi"
    assert "nodeSelector" not in cluster["spec"]["worker"]["spec"]
    gpu = by_kind(objects, "DaskWorkerGroup")[0]["spec"]["worker"]["spec"]
    # One GPU per pod: a plain Dask worker of one thread (dask-cuda is not in the GPU image)
    args = gpu["containers"][0]["args"]
    assert args[:3] == ["python", "-m", "distributed.cli.dask_worker"]
    assert args[args.index("--nthreads") + 1] == "1"
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"])


def test_the_service_points_at_the_scheduler_it_creates() -> None:
    objects = rendered()
    name = by_kind(objects, "DaskCluster")[0]["metadata"]["name"]
    address = by_kind(objects, "ConfigMap")[0]["data"]["TABJOB_DASK_SCHEDULER_ADDRESS"]
    # The operator names the scheduler's Service <cluster>-scheduler (controller.py, tag 2025.4.3).
    assert address == f"tcp://{name}-scheduler.{NAMESPACE}.svc:8786"


def test_only_tabjob_workers_reach_the_scheduler() -> None:
    policies = {p["metadata"]["name"]: p for p in by_kind(rendered(), "NetworkPolicy")}
    for policy in policies.values():
        kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    scheduler = policies["tabjob-dask-scheduler"]
    outside, inside = scheduler["spec"]["ingress"]
    assert outside["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert outside["ports"] == [{"port": 8786, "protocol": "TCP"}]
    assert inside["from"] == [{"podSelector": {"matchLabels": {"dask.org/cluster-name": "tabjob-dask"}}}]
    # Dask workers reach DNS, the store and their own cluster; not the broker.
    worker = policies["tabjob-dask-worker"]["spec"]["egress"]
    ports = {p["port"] for rule in worker for p in rule.get("ports", [])}
    assert ports == {53, 8333}
    assert policies["tabjob-worker-to-dask"]["spec"]["egress"][0]["ports"] == [{"port": 8786, "protocol": "TCP"}]
