"""Policies every rendering of the chart must keep, whatever the scenario.

Hardened pods, sized containers with probes, one KEDA scaler per lane on the lane's Dramatiq
message hash, graceful shutdown longer than the lane's time limit, a GPU lane that lands on GPU
nodes, credentials only by reference, and network policies that leave no pod open.
"""

from __future__ import annotations

from typing import Any

import pytest
from chart_render import (
    CPU_LANES,
    by_kind,
    containers_of,
    env_of,
    merged_values,
    named,
    objects_of,
    pod_templates,
    render_objects,
    scenario_files,
    scenario_values,
)

SCENARIOS = sorted(scenario_values())
SECRET_ENV = {
    "TABJOB_REDIS_PASSWORD": "redisPasswordKey",
    "TABJOB_S3_ACCESS_KEY": "s3AccessKeyKey",
    "TABJOB_S3_SECRET_KEY": "s3SecretKeyKey",
}


def _objects(scenario: str) -> list[dict[str, Any]]:
    return objects_of(scenario_files(scenario))


def _merged(scenario: str) -> dict[str, Any]:
    """The values a scenario really renders with: its file over the chart's defaults."""
    return merged_values(scenario_values()[scenario])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_is_sized_probed_and_hardened(scenario: str) -> None:
    templates = list(pod_templates(_objects(scenario)))
    assert templates

    for where, template in templates:
        pod = template["spec"]
        pod_security = pod["securityContext"]
        assert pod_security["runAsNonRoot"] is True, where
        assert pod_security["runAsUser"] == 10001, where
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        # The root file system is read-only, so /tmp must be a writable emptyDir.
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}

        for container in containers_of(pod):
            name = f"{where}/{container['name']}"
            for side in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][side]), name
            assert "httpGet" in container["livenessProbe"], name
            assert "httpGet" in container["readinessProbe"], name
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security.get("privileged", False) is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in security["capabilities"], name
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_probes_use_the_contract_endpoints(scenario: str) -> None:
    objects = _objects(scenario)
    api = named(objects, "Deployment", "tabjob-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    for where, template in pod_templates(objects):
        if template["metadata"]["labels"]["app.kubernetes.io/component"] != "worker":
            continue
        worker = template["spec"]["containers"][0]
        assert {"name": "health", "containerPort": 8001, "protocol": "TCP"} in worker["ports"]
        assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}, where
        assert env_of(worker)["TABJOB_WORKER_HEALTH_PORT"]["value"] == "8001", where


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_cpu_lane_is_scaled_by_keda_on_its_message_hash(scenario: str) -> None:
    objects = _objects(scenario)
    values = _merged(scenario)
    auth = named(objects, "TriggerAuthentication", "tabjob-redis")
    secret = values["secrets"]["existingSecret"]
    assert {
        "parameter": "password",
        "name": secret,
        "key": values["secrets"]["redisPasswordKey"],
    } in (auth["spec"]["secretTargetRef"])
    workers = [
        d for d in by_kind(objects, "Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    ]
    assert workers
    scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in by_kind(objects, "ScaledObject")}

    for deployment in workers:
        lane = deployment["metadata"]["labels"]["tabjob.io/lane"]
        assert lane in CPU_LANES
        # KEDA owns the replica count; a fixed one would fight it on every upgrade.
        assert "replicas" not in deployment["spec"]
        so = scaled[deployment["metadata"]["name"]]
        assert so["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert so["spec"]["minReplicaCount"] == values["workers"][lane]["minReplicas"]
        assert so["spec"]["maxReplicaCount"] == values["workers"][lane]["maxReplicas"]
        [trigger] = so["spec"]["triggers"]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == f"dramatiq:{lane}.msgs"
        assert trigger["metadata"]["listLength"] == "1"
        assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
        assert trigger["metadata"]["enableTLS"] in {"true", "false"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scale_down_is_conservative(scenario: str) -> None:
    for so in by_kind(_objects(scenario), "ScaledObject"):
        scale_down = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert scale_down["stabilizationWindowSeconds"] >= 300
        assert scale_down["selectPolicy"] == "Min"
        assert scale_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_grace_period_outlasts_the_lane_time_limit(scenario: str) -> None:
    values = _merged(scenario)
    limits = {lane: values["workers"][lane]["timeLimitS"] for lane in CPU_LANES}
    limits["gpu"] = values["gpu"]["timeLimitS"]
    config = named(_objects(scenario), "ConfigMap", "tabjob-config")["data"]
    checked = 0

    for where, template in pod_templates(_objects(scenario)):
        lane = template["metadata"]["labels"].get("tabjob.io/lane")
        if lane is None:
            continue
        pod = template["spec"]
        worker = pod["containers"][0]
        assert pod["terminationGracePeriodSeconds"] > limits[lane], where
        assert env_of(worker)["TABJOB_WORKER_SHUTDOWN_TIMEOUT_S"]["value"] == str(limits[lane]), where
        assert config[f"TABJOB_TIME_LIMIT_{lane.upper()}_S"] == str(limits[lane])
        # The cluster autoscaler must not evict a busy worker with its short grace period.
        assert template["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
        checked += 1
    assert checked >= 1


def test_gpu_lane_is_a_scaled_job_on_gpu_nodes() -> None:
    objects = _objects("gke")
    values = _merged("gke")
    job = named(objects, "ScaledJob", "tabjob-worker-gpu")
    spec = job["spec"]
    pod = spec["jobTargetRef"]["template"]["spec"]
    [worker] = pod["containers"]

    [trigger] = spec["triggers"]
    assert trigger["metadata"]["listName"] == "dramatiq:gpu.msgs"
    assert trigger["metadata"]["listLength"] == "1"
    assert spec["maxReplicaCount"] == values["gpu"]["maxReplicaCount"]
    assert worker["command"] + worker["args"] == [
        "tabjob",
        "worker",
        "--lane",
        "gpu",
        "--max-jobs",
        "1",
    ]
    assert worker["image"].startswith(values["gpuImage"]["repository"] + "@sha256:")
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    # One pod per Job, not retried by the Job: Dramatiq redelivers the message instead.
    assert pod["restartPolicy"] == "Never"
    assert spec["jobTargetRef"]["backoffLimit"] == 0
    assert spec["jobTargetRef"]["activeDeadlineSeconds"] > values["gpu"]["timeLimitS"]


def test_gpu_lane_is_off_by_default() -> None:
    assert not by_kind(_objects("default"), "ScaledJob")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_credentials_are_only_referenced(scenario: str) -> None:
    objects = _objects(scenario)
    values = _merged(scenario)
    config = named(objects, "ConfigMap", "tabjob-config")["data"]
    assert not [key for key in config if any(word in key for word in ("PASSWORD", "SECRET", "ACCESS_KEY"))]

    for where, template in pod_templates(objects):
        for container in containers_of(template["spec"]):
            env = env_of(container)
            for name, values_key in SECRET_ENV.items():
                assert env[name] == {
                    "name": name,
                    "valueFrom": {
                        "secretKeyRef": {
                            "name": values["secrets"]["existingSecret"],
                            "key": values["secrets"][values_key],
                        }
                    },
                }, f"{where}: {name}"
            # Nothing that looks like a credential is given as a literal value.
            for name, entry in env.items():
                if any(word in name for word in ("PASSWORD", "SECRET", "TOKEN", "KEY")):
                    assert "value" not in entry, f"{where}: {name} is inline"
            assert container["envFrom"] == [{"configMapRef": {"name": "tabjob-config"}}]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_disruption_budgets_cover_the_api_and_every_lane(scenario: str) -> None:
    objects = _objects(scenario)
    budgets = by_kind(objects, "PodDisruptionBudget")
    selectors = [pdb["spec"]["selector"]["matchLabels"] for pdb in budgets]

    for deployment in by_kind(objects, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [s for s in selectors if s.items() <= labels.items()]
        assert len(covering) == 1, deployment["metadata"]["name"]
    assert all(pdb["spec"]["maxUnavailable"] == 1 for pdb in budgets)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_network_policies_isolate_every_pod(scenario: str) -> None:
    objects = _objects(scenario)
    values = _merged(scenario)["networkPolicy"]
    policies = by_kind(objects, "NetworkPolicy")
    allowed_ports = {53, values["brokerPort"], values["storagePort"]}

    for where, template in pod_templates(objects):
        labels = template["metadata"]["labels"]
        matching = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, where
        [policy] = matching
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        if labels["app.kubernetes.io/component"] == "api":
            assert policy["spec"]["ingress"] == [{"ports": [{"port": 8000, "protocol": "TCP"}]}]
        else:
            assert policy["spec"]["ingress"] == [], where
        for rule in policy["spec"]["egress"]:
            if "to" in rule:
                assert [peer["ipBlock"]["cidr"] for peer in rule["to"]] == values["extraEgressCIDRs"]
            else:
                assert {port["port"] for port in rule["ports"]} <= allowed_ports


def test_network_policies_can_be_turned_off() -> None:
    assert not by_kind(render_objects({"networkPolicy": {"enabled": False}}), "NetworkPolicy")
