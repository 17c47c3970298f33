"""Policies every rendering of the chart must keep, whatever the scenario.

Hardened pods, sized containers with probes, one KEDA scaler per lane on the lane's Dramatiq
message hash, graceful shutdown longer than the lane's time limit, a GPU lane that lands on GPU
nodes, credentials only by reference, and network policies that leave no pod open.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from chart_render import (
    CPU_LANES,
    KEDA_KINDS,
    KUBERNETES_VERSION,
    by_kind,
    containers_of,
    egress_ports,
    env_of,
    gpu_job_as_batch_job,
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


def assert_counts_lane_messages(trigger: dict[str, Any], lane: str) -> None:
    """The trigger reads the lane's pending + in-flight messages, one per pod: from the broker
    (redis trigger) or, where KEDA cannot log in to it, from the API's count of the same hash."""
    meta = trigger["metadata"]
    if trigger["type"] == "redis":
        assert (meta["listName"], meta["listLength"]) == (f"dramatiq:{lane}.msgs", "1")
        assert meta["enableTLS"] in {"true", "false"}
    else:
        assert trigger["type"] == "metrics-api"
        assert meta["url"].endswith(f"/internal/scaling/lanes/{lane}")
        assert (meta["valueLocation"], meta["targetValue"]) == ("messages", "1")


# Where the app finds the broker's private CA when secrets.redisCaKey is set.
REDIS_CA_DIR = "/etc/tabjob/redis-ca"
REDIS_CA_FILE = f"{REDIS_CA_DIR}/redis-ca.pem"


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
            # an exec probe when /readyz needs the scrape token (test_chart_scrape_paths.py runs it)
            assert {"httpGet", "exec"} & set(container["readinessProbe"]), name
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
    if scenario_values()[scenario].get("secrets", {}).get("metricsTokenKey"):
        assert "http://127.0.0.1:8000/readyz" in api["readinessProbe"]["exec"]["command"][-1]
    else:
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
    parameter, key = (
        ("bearerToken", "scalerTokenKey") if values["keda"]["scaleFrom"] == "api" else ("password", "redisPasswordKey")
    )
    assert {"parameter": parameter, "name": secret, "key": values["secrets"][key]} in auth["spec"]["secretTargetRef"]
    workers = [
        d
        for d in by_kind(objects, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
        and d["metadata"]["labels"]["tabjob.io/lane"] != "gpu"  # its own test
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
        assert_counts_lane_messages(trigger, lane)
        assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}


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


def _assert_gpu_pod(pod: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    [worker] = pod["containers"]
    assert worker["image"].startswith(values["gpuImage"]["repository"] + "@sha256:")
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    return worker


def test_gpu_lane_is_a_warm_deployment_scaled_from_zero_on_gpu_nodes() -> None:
    # The gke scenario runs the GPU lane as a ScaledJob (what the Pulumi program deploys); the
    # chart's default is a warm Deployment.
    gke_as_deployment = scenario_values()["gke"] | {"gpu": scenario_values()["gke"]["gpu"] | {"scaling": "deployment"}}
    objects = render_objects(gke_as_deployment)
    values = merged_values(gke_as_deployment)
    assert values["gpu"]["scaling"] == "deployment" and not by_kind(objects, "ScaledJob")
    deployment = named(objects, "Deployment", "tabjob-worker-gpu")
    worker = _assert_gpu_pod(deployment["spec"]["template"]["spec"], values)
    # A long-lived worker: no --max-jobs, so its job process and CUDA context serve every step.
    assert worker["command"] + worker["args"] == ["tabjob", "worker", "--lane", "gpu"]
    assert "replicas" not in deployment["spec"]
    scaled = named(objects, "ScaledObject", "tabjob-worker-gpu")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "tabjob-worker-gpu"
    # Back to zero pods (so the GPU pool to zero nodes) after the cooldown.
    assert scaled["minReplicaCount"] == 0
    assert scaled["maxReplicaCount"] == values["gpu"]["maxReplicaCount"]
    assert scaled["cooldownPeriod"] == values["keda"]["cooldownPeriodS"]
    [trigger] = scaled["triggers"]
    assert_counts_lane_messages(trigger, "gpu")


def test_gpu_lane_can_still_be_a_scaled_job() -> None:
    values = {"gpu": {"enabled": True, "scaling": "scaledjob"}}
    objects = render_objects(values)
    merged = merged_values(values)
    assert not [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"] == "tabjob-worker-gpu"]
    spec = named(objects, "ScaledJob", "tabjob-worker-gpu")["spec"]
    pod = spec["jobTargetRef"]["template"]["spec"]
    [worker] = pod["containers"]
    assert worker["args"] == ["worker", "--lane", "gpu", "--max-jobs", "1"]
    [trigger] = spec["triggers"]
    assert trigger["metadata"]["listName"] == "dramatiq:gpu.msgs"
    assert spec["maxReplicaCount"] == merged["gpu"]["maxReplicaCount"]
    # One pod per Job, not retried by the Job: Dramatiq redelivers the message instead.
    assert pod["restartPolicy"] == "Never"
    assert spec["jobTargetRef"]["backoffLimit"] == 0
    assert spec["jobTargetRef"]["activeDeadlineSeconds"] > merged["gpu"]["timeLimitS"]
    for obj in [o for o in objects if o["kind"] not in KEDA_KINDS] + [
        gpu_job_as_batch_job(named(objects, "ScaledJob", "tabjob-worker-gpu"))
    ]:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_gpu_lane_is_off_by_default() -> None:
    objects = _objects("default")
    assert not by_kind(objects, "ScaledJob")
    assert not [o for o in objects if o["metadata"]["name"] == "tabjob-worker-gpu"]


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
                if name == "TABJOB_REDIS_PASSWORD" and values["config"]["redisAuth"] == "gcp-iam":
                    assert name not in env, f"{where}: IAM auth needs no broker password"
                    continue
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
    merged = _merged(scenario)
    values = merged["networkPolicy"]
    # The monitoring policy only adds Prometheus's scrape of the workers' health port
    # (test_chart_observability checks it).
    policies = [
        p
        for p in by_kind(objects, "NetworkPolicy")
        if p["metadata"]["labels"]["app.kubernetes.io/component"] != "monitoring"
    ]
    allowed_ports = egress_ports(merged)

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
            if "to" in rule and "ports" in rule:  # job webhooks: tests/charts/test_chart_webhook_egress.py
                assert [peer["ipBlock"]["cidr"] for peer in rule["to"]] == ["0.0.0.0/0"]
                assert {port["port"] for port in rule["ports"]} == {80, 443}
            elif "to" in rule:
                assert [peer["ipBlock"]["cidr"] for peer in rule["to"]] == values["extraEgressCIDRs"]
            else:
                assert {port["port"] for port in rule["ports"]} <= allowed_ports


@pytest.mark.parametrize(
    ("endpoint", "port"),
    [
        ("https://storage.googleapis.com", 443),
        ("http://seaweedfs.tabjob.svc.cluster.local:8333", 8333),
        ("https://minio.corp.example:9000", 9000),
        ("http://[fd00::5]:7480", 7480),
    ],
)
def test_egress_follows_the_store_endpoint_when_no_port_is_set(endpoint: str, port: int) -> None:
    objects = render_objects({"config": {"s3Endpoint": endpoint, "redisUrl": "rediss://10.0.0.4:6380/0"}})
    for policy in by_kind(objects, "NetworkPolicy"):
        # To any destination (the webhook rule, to public addresses only, is tested on its own).
        opened = {p["port"] for rule in policy["spec"]["egress"] if "to" not in rule for p in rule.get("ports", [])}
        assert opened == {53, 6380, port}, policy["metadata"]["name"]


def test_network_policies_can_be_turned_off() -> None:
    assert not by_kind(render_objects({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def _check_redis_ca(objects: list[dict[str, Any]], secrets: dict[str, Any]) -> int:
    """Every app container gets the broker's CA (mount, volume, TABJOB_REDIS_CA_FILE) exactly
    when secrets.redisCaKey is set, and nothing of it otherwise.

    Returns:
        How many containers were checked.
    """
    ca_key = secrets["redisCaKey"]
    config = named(objects, "ConfigMap", "tabjob-config")["data"]
    checked = 0

    for where, template in pod_templates(objects):
        pod = template["spec"]
        ca_volumes = [v for v in pod["volumes"] if v["name"] == "redis-ca" or "secret" in v]
        if ca_key:
            # Only the CA key, as redis-ca.pem, from the existing Secret; 0440 is readable by
            # the app's user through the pod's fsGroup.
            assert ca_volumes == [
                {
                    "name": "redis-ca",
                    "secret": {
                        "secretName": secrets["existingSecret"],
                        "items": [{"key": ca_key, "path": "redis-ca.pem"}],
                        "defaultMode": 0o440,
                    },
                }
            ], where
            assert pod["securityContext"]["fsGroup"] == 10001, where
        else:
            assert ca_volumes == [], where

        for container in containers_of(pod):
            name = f"{where}/{container['name']}"
            mounts = container["volumeMounts"]
            ca_mounts = [m for m in mounts if m["name"] == "redis-ca" or m["mountPath"].startswith("/etc/tabjob")]
            # The setting as the container sees it: its own env first, then the ConfigMap.
            env = env_of(container)
            from_config = {"configMapRef": {"name": "tabjob-config"}} in container.get("envFrom", [])
            if "TABJOB_REDIS_CA_FILE" in env:
                ca_file = env["TABJOB_REDIS_CA_FILE"].get("value")
            else:
                ca_file = config.get("TABJOB_REDIS_CA_FILE") if from_config else None
            if ca_key:
                assert ca_mounts == [{"name": "redis-ca", "mountPath": REDIS_CA_DIR, "readOnly": True}], name
                assert ca_file == REDIS_CA_FILE, name
            else:
                assert ca_mounts == [], name
                assert ca_file is None, name
            checked += 1

    if not ca_key:
        assert "TABJOB_REDIS_CA_FILE" not in config
    return checked


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_redis_ca_reaches_every_app_container_only_when_configured(scenario: str) -> None:
    assert _check_redis_ca(_objects(scenario), _merged(scenario)["secrets"]) >= 2


def test_gke_scenario_mounts_the_redis_ca() -> None:
    # The gke scenario is the one with a private CA, so the schema, lint and checkov runs over
    # the scenarios see the CA volume and mounts.
    assert scenario_values()["gke"]["secrets"]["redisCaKey"]
    templates = dict(pod_templates(_objects("gke")))
    assert {"ScaledJob/tabjob-worker-gpu", "Deployment/tabjob-api"} <= set(templates)


@pytest.mark.parametrize(
    "secrets",
    [
        {"existingSecret": "tabjob-credentials", "redisCaKey": "redis-ca.pem"},
        {"redisCaKey": ""},
    ],
    ids=["ca-key-set", "ca-key-empty"],
)
def test_redis_ca_follows_the_ca_key(secrets: dict[str, Any]) -> None:
    # Given every app workload: the API, both CPU lanes and the GPU lane
    values = {"secrets": secrets, "gpu": {"enabled": True}, "config": {"redisUrl": "rediss://10.0.0.4:6378/0"}}
    objects = render_objects(values)

    # Then each container has the CA exactly when the key is set (4 pods, one container each)
    assert _check_redis_ca(objects, merged_values(values)["secrets"]) == 4
    # And what is rendered is still valid Kubernetes, the GPU Job included
    core = [obj for obj in objects if obj["kind"] not in KEDA_KINDS]
    core += [gpu_job_as_batch_job(obj) for obj in by_kind(objects, "ScaledJob")]
    for obj in core:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(("key", "expected"), [("", None), ("bootstrap-api-keys", "bootstrap-api-keys")])
def test_only_the_api_gets_the_bootstrap_api_keys(key: str, expected: str | None) -> None:
    objects = render_objects({"secrets": {"bootstrapApiKeysKey": key}, "gpu": {"enabled": True}})
    for where, template in pod_templates(objects):
        (container,) = template["spec"]["containers"]
        entry = env_of(container).get("TABJOB_BOOTSTRAP_API_KEYS")
        if template["metadata"]["labels"]["app.kubernetes.io/component"] == "api" and expected:
            assert entry["valueFrom"]["secretKeyRef"] == {"name": "tabjob", "key": expected}, where
        else:
            assert entry is None, where
