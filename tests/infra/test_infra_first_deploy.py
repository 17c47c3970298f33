"""The first real deploy (issue 9): what would have failed on a fresh GCP project, kind or an
existing cluster, checked on the program's mocked resource graph and on the chart rendered with
the exact values the program passes."""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import pytest
import safe_yaml
from infra_harness import DIGEST, EXISTING_CONFIG, GPU_DIGEST, StackRun, run_program, stack_config

from infra.app import CHART_PATH, RELEASE_NAME
from infra.cluster import gpu_sizing

RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
# A customer's store on its own port, beside the fixture's plain https endpoint.
EXISTING_CUSTOM_PORT = {**EXISTING_CONFIG, "s3Endpoint": "http://minio.acme.internal:9000"}


def _deployed(stack: str, **overrides: Any) -> StackRun:
    return run_program(stack, {**stack_config(stack), "imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST, **overrides})


def _values(run: StackRun) -> dict[str, Any]:
    return run.one(RELEASE, "tabjob").inputs["values"]


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART_PATH) as chart:
        files = chart.render(values, name=RELEASE_NAME, namespace="tabjob")
    texts = [text for path, text in sorted(files.items()) if path.endswith(".yaml")]
    return [doc for text in texts for doc in safe_yaml.load_all(text) if doc]


def _cpu_m(quantity: str | int | float) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def _memory_mi(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match, quantity
    return int(match[1]) * units[match[2]]


def _gpu_worker(objects: list[dict[str, Any]]) -> dict[str, Any]:
    # On GKE the GPU lane is a ScaledJob (a Job per message); the chart can also make it a Deployment.
    (lane,) = [
        o for o in objects if o["kind"] in ("Deployment", "ScaledJob") and o["metadata"]["name"].endswith("worker-gpu")
    ]
    spec = lane["spec"]["jobTargetRef"] if lane["kind"] == "ScaledJob" else lane["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    return container


# ---- 1. egress follows the stack's store endpoint


@pytest.mark.parametrize(
    ("stack", "config", "store_port", "broker_port"),
    [
        ("dev", None, 8333, 6379),
        ("staging", None, 443, 6379),
        ("production", None, 443, 6379),
        ("production", EXISTING_CONFIG, 443, 6380),
        ("production", EXISTING_CUSTOM_PORT, 9000, 6380),
    ],
    ids=["dev-seaweedfs", "staging-gcs", "production-gcs", "existing-https", "existing-custom-port"],
)
def test_egress_opens_the_stacks_store_and_broker_ports(stack, config, store_port, broker_port):
    run = run_program(stack, config) if config else _deployed(stack)
    values = _values(run)
    assert values["config"]["s3Endpoint"].startswith(("http://", "https://"))
    objects = _render(values)
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    dask = {"tabjob-dask-scheduler", "tabjob-dask-worker", "tabjob-worker-to-dask"}
    assert set(policies) == {"tabjob-api", "tabjob-worker"} | (dask if values["dask"]["enabled"] else set())
    if values["dask"]["enabled"]:
        # Dask workers read parts through presigned URLs: the store's port and DNS, no broker;
        # the scheduler needs DNS only; app workers reach the scheduler's port and nothing more.
        def anywhere(name: str) -> set[int]:
            return {p["port"] for r in policies[name]["spec"]["egress"] if "to" not in r for p in r.get("ports", [])}

        assert anywhere("tabjob-dask-worker") == {53, store_port}
        assert anywhere("tabjob-dask-scheduler") == {53}
        to_dask = policies["tabjob-worker-to-dask"]["spec"]["egress"]
        assert [{p["port"] for p in r["ports"]} for r in to_dask] == [{8786}]
    for policy in (policies["tabjob-api"], policies["tabjob-worker"]):
        # To any destination; the job-webhook rule (80/443, public addresses only) is apart.
        egress = policy["spec"]["egress"]
        opened = {port["port"] for rule in egress if "to" not in rule for port in rule.get("ports", [])}
        assert opened == {53, store_port, broker_port}, policy["metadata"]["name"]
        assert [{p["port"] for p in r["ports"]} for r in egress if "to" in r] == [{80, 443}]


# ---- 2. kind: the bucket exists before the app starts


def test_kind_release_waits_for_the_bucket_job(deployed_stacks):
    run = deployed_stacks["dev"]
    job = run.one("kubernetes:batch/v1:Job", "seaweedfs-bucket").inputs
    assert "s3.bucket.create -name tabjob" in job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert run.waits_for(RELEASE, "tabjob", "kubernetes:batch/v1:Job", "seaweedfs-bucket")
    assert _values(run)["config"]["s3Bucket"] == "tabjob"


@pytest.mark.parametrize("stack", ("dev", "staging", "production"))
def test_the_release_itself_waits_for_keda_and_the_broker(deployed_stacks, stack):
    # depends_on given to a component does not reach its children: the Helm release must
    # carry it, or its ScaledObjects could be applied before KEDA's CRDs exist.
    run = deployed_stacks[stack]
    assert run.waits_for(RELEASE, "tabjob", RELEASE, "keda")
    broker = "kubernetes:apps/v1:StatefulSet" if stack == "dev" else "gcp:memorystore/instance:Instance"
    assert run.waits_for(RELEASE, "tabjob", broker, "valkey")


# ---- 3. GPU Jobs fit the GPU pool's machine type


@pytest.mark.parametrize(("machine_type", "gpus"), [("g2-standard-4", 1), ("g2-standard-8", 1), ("g2-standard-24", 2)])
def test_gpu_job_requests_fit_the_pools_allocatable(machine_type, gpus):
    run = _deployed("staging", gpuMachineType=machine_type, gpuCount=gpus)
    pool = run.one("gcp:container/nodePool:NodePool", "gke-gpu").inputs["nodeConfig"]
    assert pool["machineType"] == machine_type
    worker = _gpu_worker(_render(_values(run)))
    requests, limits = worker["resources"]["requests"], worker["resources"]["limits"]
    node = gpu_sizing.allocatable(machine_type)
    # As many Jobs as the node has GPUs, plus GKE's DaemonSets, fit in what the node allocates.
    assert gpus * _cpu_m(requests["cpu"]) + gpu_sizing.SYSTEM_PODS_CPU_M <= node.cpu_m
    assert gpus * _memory_mi(requests["memory"]) + gpu_sizing.SYSTEM_PODS_MEMORY_MI <= node.memory_mi
    assert requests["nvidia.com/gpu"] == 1 and limits == requests
    assert _cpu_m(requests["cpu"]) >= gpu_sizing.MIN_JOB_CPU_M


def test_the_old_fixed_gpu_request_would_not_fit_a_g2_standard_4():
    # The chart's previous fixed request (4 CPU / 16 GiB) is more than the node has at all.
    node = gpu_sizing.allocatable("g2-standard-4")
    assert node.cpu_m < 4000 and node.memory_mi < 16 * 1024
    worker = _gpu_worker(_render(_values(_deployed("staging"))))
    assert _cpu_m(worker["resources"]["requests"]["cpu"]) < node.cpu_m


def test_a_machine_type_too_small_for_its_gpus_is_refused_at_preview():
    config = {"gpuMachineType": "n1-standard-4", "gpuType": "nvidia-tesla-t4", "gpuCount": 4}
    with pytest.raises(Exception, match=r"n1-standard-4 leaves .* a GPU Job needs at least 1 CPU"):
        _deployed("staging", **config)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"gpuMachineType": "e2-standard-4"}, "not a GPU machine type"),
        ({"gpuType": "nvidia-tesla-t4"}, "does not fit g2-standard-4"),
        ({"gpuCount": 2}, "gpuCount must be 1 for g2-standard-4"),
    ],
)
def test_gpu_settings_the_machine_cannot_carry_are_refused(config, message):
    with pytest.raises(Exception, match=message):
        _deployed("staging", **config)


@pytest.mark.parametrize("stack", ("staging", "production"))
def test_gpu_jobs_never_outnumber_the_pools_gpus(deployed_stacks, stack):
    nodes = stack_config(stack)["gpuMaxNodes"]
    assert _values(deployed_stacks[stack])["gpu"]["maxReplicaCount"] == nodes
    run = _deployed(stack, gpuMachineType="g2-standard-24", gpuCount=2)
    (scaled,) = [o for o in _render(_values(run)) if o["kind"] == "ScaledJob" and o["metadata"]["name"].endswith("gpu")]
    assert scaled["spec"]["maxReplicaCount"] == 2 * nodes


# ---- 4. Workload Identity waits for the cluster


@pytest.mark.parametrize("stack", ("staging", "production"))
def test_workload_identity_binding_depends_on_the_cluster(deployed_stacks, stack):
    run = deployed_stacks[stack]
    binding = run.one("gcp:serviceaccount/iAMMember:IAMMember", "app-identity-ksa").inputs
    assert binding["member"] == f"serviceAccount:{stack_config(stack)['gcpProject']}.svc.id.goog[tabjob/tabjob]"
    assert run.waits_for(
        "gcp:serviceaccount/iAMMember:IAMMember", "app-identity-ksa", "gcp:container/cluster:Cluster", "gke"
    )


@pytest.mark.parametrize("stack", ("staging", "production"))
def test_every_google_resource_waits_for_the_apis(deployed_stacks, stack):
    run = deployed_stacks[stack]
    services = {r.name for r in run.of_type("gcp:projects/service:Service")}
    gated = run.one("pulumi:providers:gcp", "gcp-after-apis")
    for service in services:
        assert run.waits_for("pulumi:providers:gcp", "gcp-after-apis", "gcp:projects/service:Service", service)
    for resource in run.resources:
        if resource.typ.startswith("gcp:") and resource.typ != "gcp:projects/service:Service":
            assert f"::{gated.name}::" in resource.provider, resource.name


# ---- 5. no digest never deletes the app


def test_a_gke_run_without_digest_stops_and_says_what_to_set():
    with pytest.raises(Exception, match=r"tabjob:imageDigest is not set.*tabjob:bootstrap=true"):
        run_program("staging", stack_config("staging"))


def test_an_existing_cluster_run_without_digest_stops_too():
    config = {k: v for k, v in EXISTING_CONFIG.items() if k != "imageDigest"}
    with pytest.raises(Exception, match="tabjob:imageDigest is not set"):
        run_program("production", config)


def test_a_gke_digest_needs_its_gpu_digest():
    with pytest.raises(Exception, match="tabjob:gpuImageDigest is required"):
        run_program("staging", {**stack_config("staging"), "imageDigest": DIGEST})


def test_an_explicit_tag_deploys_that_tag():
    run = run_program("staging", {**stack_config("staging"), "imageTag": "v1.2.3"})
    image = _values(run)["image"]
    assert (image["tag"], image["digest"]) == ("v1.2.3", "")


@pytest.mark.parametrize("stack", ("dev", "staging", "production"))
def test_deployed_digests_are_exported_for_the_next_run(deployed_stacks, stack):
    outputs = deployed_stacks[stack].outputs
    assert (outputs["imageDigest"], outputs["gpuImageDigest"]) == (DIGEST, GPU_DIGEST)


# ---- 7. the smoke test's API key


@pytest.mark.parametrize("stack", ("dev", "staging", "production"))
def test_the_deploy_provides_the_smoke_api_key(deployed_stacks, stack):
    from app.core.auth import _KEY_PATTERN

    run = deployed_stacks[stack]
    token = run.outputs["smokeApiKey"]
    assert _KEY_PATTERN.match(token), token
    secret = run.one(SECRET, "tabjob-credentials")
    assert secret.inputs["stringData"]["bootstrap-api-keys"] == f"smoke={token}"
    assert secret.secret_inputs
    objects = _render(_values(run))
    (api,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "tabjob-api"]
    env = {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["TABJOB_BOOTSTRAP_API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "tabjob-credentials-generated", "key": "bootstrap-api-keys"}
    workers = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] != "tabjob-api"]
    for worker in workers:
        names = {e["name"] for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "TABJOB_BOOTSTRAP_API_KEYS" not in names, "only the API seeds keys"


def test_the_smoke_api_key_output_is_secret():
    import pulumi
    from infra_harness import configure

    from infra.config import load_config
    from infra.program import build

    configure("staging", {**stack_config("staging"), "imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST})
    seen: dict[str, bool] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        output = build(load_config())["smokeApiKey"]
        return pulumi.Output.all(output, pulumi.Output.from_input(output.is_secret())).apply(
            lambda pair: seen.update(secret=pair[1])
        )

    program()
    assert seen == {"secret": True}


# ---- 8. the smaller ones


@pytest.mark.parametrize("stack", ("staging", "production"))
def test_cloud_resource_manager_is_enabled(deployed_stacks, stack):
    services = {r.inputs["service"] for r in deployed_stacks[stack].of_type("gcp:projects/service:Service")}
    assert "cloudresourcemanager.googleapis.com" in services


@pytest.mark.parametrize("stack", ("staging", "production"))
def test_gpu_pool_pins_zones_with_its_accelerator(deployed_stacks, stack):
    pool = deployed_stacks[stack].one("gcp:container/nodePool:NodePool", "gke-gpu").inputs
    assert pool["nodeLocations"] == list(gpu_sizing.GPU_ZONES[("us-central1", "nvidia-l4")])
    run = _deployed(stack, region="europe-west4")
    pool = run.one("gcp:container/nodePool:NodePool", "gke-gpu").inputs
    assert pool["nodeLocations"] == ["europe-west4-a", "europe-west4-b", "europe-west4-c"]


def test_gpu_zones_are_required_where_none_are_known_and_must_be_in_the_region():
    with pytest.raises(Exception, match="set tabjob:gpuZones"):
        _deployed("staging", region="southamerica-east1")
    run = _deployed("staging", region="southamerica-east1", gpuZones=["southamerica-east1-c"])
    assert run.one("gcp:container/nodePool:NodePool", "gke-gpu").inputs["nodeLocations"] == ["southamerica-east1-c"]
    with pytest.raises(Exception, match="must be zones of us-central1"):
        _deployed("staging", gpuZones=["us-east1-b"])


@pytest.mark.parametrize("stack", ("staging", "production"))
def test_control_plane_reaches_kedas_metrics_api_and_webhooks(deployed_stacks, stack):
    run = deployed_stacks[stack]
    cluster = run.one("gcp:container/cluster:Cluster", "gke").inputs
    master_cidr = cluster["privateClusterConfig"]["masterIpv4CidrBlock"]
    assert cluster["privateClusterConfig"]["enablePrivateNodes"] is True
    rule = run.one("gcp:compute/firewall:Firewall", "gke-control-plane-to-keda").inputs
    assert rule["direction"] == "INGRESS"
    assert rule["sourceRanges"] == [master_cidr]
    assert rule["allows"] == [{"protocol": "tcp", "ports": ["6443", "9443"]}]
    assert rule["targetServiceAccounts"] == ["tabjob-nodes-" + stack + "@project.iam.gserviceaccount.com"]
    # KEDA's webhooks must be reachable before anything is applied through the cluster.
    assert run.waits_for(
        "pulumi:providers:kubernetes", "gke-k8s", "gcp:compute/firewall:Firewall", "gke-control-plane-to-keda"
    )


def test_pulumi_gcp_lower_bound_has_the_memorystore_arguments_used():
    import inspect
    import tomllib

    import pulumi_gcp as gcp
    from infra_harness import ROOT
    from packaging.requirements import Requirement
    from packaging.version import Version

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (spec,) = [Requirement(r) for r in pyproject["dependency-groups"]["infra"] if r.startswith("pulumi-gcp")]
    lower = min(Version(s.version) for s in spec.specifier if s.operator == ">=")
    # 9.23 is the oldest release the program is tested with that has all of these.
    assert lower >= Version("9.23")
    arguments = inspect.signature(gcp.memorystore.Instance._internal_init).parameters
    used = {"mode", "desired_auto_created_endpoints", "persistence_config", "transit_encryption_mode"}
    assert used <= set(arguments)
    assert hasattr(gcp.memorystore.Instance, "managed_server_cas")


# ---- kind's Valkey persists to its volume


def test_kind_valkey_appends_to_its_volume(deployed_stacks):
    run = deployed_stacks["dev"]
    conf = run.one(SECRET, "valkey-conf").inputs["stringData"]["valkey.conf"].splitlines()
    assert {"appendonly yes", "appendfsync everysec", "dir /data"} <= set(conf)
    spec = run.one("kubernetes:apps/v1:StatefulSet", "valkey").inputs["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    assert container["command"] == ["valkey-server"]
    assert container["args"] == ["/etc/valkey/valkey.conf"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/data" and mounts["conf"] == "/etc/valkey"
    # The data volume is a claim, so a restarted pod finds its append-only file again.
    assert [claim["metadata"]["name"] for claim in spec["volumeClaimTemplates"]] == ["data"]
