"""The resource graph of each stack, declared under Pulumi mocks (no CLI, no cloud).

The configs are the real environments/Pulumi.<stack>.yaml files plus the image digests
CI/CD sets at deploy time.
"""

from __future__ import annotations

import json

import pytest
import safe_yaml
from infra_harness import (
    DIGEST,
    EXISTING_CONFIG,
    FAKE_KUBECONFIG,
    StackRun,
    kind_image_environ,
    run_program,
    stack_config,
)

from app.core.storage import dataset_key, manifest_key, model_key, prepared_key, result_key
from infra.app import CHART_PATH

GKE_STACKS = ("staging", "production")
ALL_STACKS = ("dev", *GKE_STACKS)
COMMAND = "command:local:Command"
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "gcp:container/nodePool:NodePool"


def _release(run: StackRun, name: str) -> dict:
    return run.one(RELEASE, name).inputs


def _kubernetes_resources(run: StackRun) -> list:
    return [r for r in run.resources if r.typ.startswith("kubernetes:")]


# ---- every stack


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_every_stack_installs_keda_2_20_from_the_kedacore_chart(deployed_stacks, stack):
    keda = _release(deployed_stacks[stack], "keda")
    assert keda["chart"] == "keda"
    assert keda["version"].startswith("2.20.")
    assert keda["repositoryOpts"]["repo"] == "https://kedacore.github.io/charts"
    assert keda["namespace"] == "keda"


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_every_stack_releases_the_local_chart_by_digest(deployed_stacks, stack):
    release = _release(deployed_stacks[stack], "tabjob")
    assert release["chart"] == str(CHART_PATH)
    assert CHART_PATH.is_dir(), "charts/tabjob is resolved from infra/ to the repository root"
    assert release["values"]["image"]["digest"] == DIGEST
    assert release["values"]["keda"]["redisAddress"].endswith(":6379")


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_the_app_secret_holds_the_keys_the_chart_reads(deployed_stacks, stack):
    run = deployed_stacks[stack]
    secret = run.one("kubernetes:core/v1:Secret", "tabjob-credentials")
    assert {"redis-password", "s3-access-key", "s3-secret-key"} <= set(secret.inputs["stringData"])
    assert secret.secret_inputs
    values = _release(run, "tabjob")["values"]
    assert values["secrets"]["existingSecret"] == "tabjob-credentials-generated"


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_one_explicit_kubernetes_provider_serves_every_kubernetes_resource(deployed_stacks, stack):
    run = deployed_stacks[stack]
    providers = run.of_type("pulumi:providers:kubernetes")
    assert len(providers) == 1
    expected = f"pulumi:providers:kubernetes::{providers[0].name}::"
    for resource in _kubernetes_resources(run):
        assert resource.provider and expected in resource.provider, resource.name


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_stack_outputs(deployed_stacks, stack):
    outputs = deployed_stacks[stack].outputs
    required = {"apiUrl", "kubeconfig", "bucket", "imageRegistry", "imageDigest", "gpuImageDigest", "smokeApiKey"}
    assert set(outputs) == (required if stack == "dev" else required | {"apiAddress"})
    assert outputs["kubeconfig"]
    if stack == "dev":
        assert outputs["apiUrl"] == "http://127.0.0.1:8000"
    else:
        assert outputs["apiUrl"].startswith("https://")
        assert outputs["apiAddress"] == "198.51.100.7"


# ---- dev: kind


def test_dev_creates_a_kind_cluster_with_host_port_mappings(deployed_stacks):
    run = deployed_stacks["dev"]
    create = run.one(COMMAND, "kind-create").inputs
    assert create["create"].startswith("kind create cluster --name tabjob --config -")
    assert create["delete"] == "kind delete cluster --name tabjob"
    node = safe_yaml.load(create["stdin"])["nodes"][0]
    mappings = {m["hostPort"]: m for m in node["extraPortMappings"]}
    assert set(mappings) == {8000, 8333}, "API and S3 reach the host"
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings.values())
    api_host = run.one("kubernetes:core/v1:Service", "api-host").inputs["spec"]
    assert api_host["ports"][0]["nodePort"] == mappings[8000]["containerPort"]
    s3 = run.one("kubernetes:core/v1:Service", "seaweedfs").inputs["spec"]
    assert s3["ports"][0]["nodePort"] == mappings[8333]["containerPort"]


def test_dev_loads_the_image_archive_and_reads_the_kubeconfig_from_kind(deployed_stacks):
    run = deployed_stacks["dev"]
    load = run.one(COMMAND, "kind-load-image").inputs
    # An archive, which works on Docker's containerd image store too; never `kind load docker-image`.
    assert load["create"] == 'kind load image-archive --name tabjob "$TABJOB_KIND_IMAGE_ARCHIVE"'
    assert load["environment"] == {"TABJOB_KIND_IMAGE_ARCHIVE": kind_image_environ()["TABJOB_KIND_IMAGE_ARCHIVE"]}
    assert run.one(COMMAND, "kind-kubeconfig").inputs["create"] == ("kind get kubeconfig --name tabjob")
    provider = run.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == FAKE_KUBECONFIG
    assert provider.secret_inputs, "the kubeconfig reaches the provider as a secret"


def test_dev_runs_valkey_with_a_volume_and_a_generated_password(deployed_stacks):
    run = deployed_stacks["dev"]
    valkey = run.one("kubernetes:apps/v1:StatefulSet", "valkey").inputs["spec"]
    assert valkey["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    conf = run.one("kubernetes:core/v1:Secret", "valkey-conf").inputs["stringData"]
    assert "requirepass valkey-password-generated" in conf["valkey.conf"]
    app_secret = run.one("kubernetes:core/v1:Secret", "tabjob-credentials").inputs
    assert app_secret["stringData"]["redis-password"] == "valkey-password-generated"


def test_dev_runs_seaweedfs_s3_with_auth_on(deployed_stacks):
    run = deployed_stacks["dev"]
    sts = run.one("kubernetes:apps/v1:StatefulSet", "seaweedfs").inputs["spec"]
    args = sts["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "server" and "-s3" in args
    assert "-s3.config=/etc/seaweedfs/s3.json" in args
    config = run.one("kubernetes:core/v1:Secret", "seaweedfs-s3-config").inputs["stringData"]
    identity = json.loads(config["s3.json"])["identities"][0]
    assert identity["credentials"] == [
        {
            "accessKey": "seaweedfs-access-key-generated",
            "secretKey": "seaweedfs-secret-key-generated",
        }
    ]
    bucket_job = run.one("kubernetes:batch/v1:Job", "seaweedfs-bucket").inputs
    assert "s3.bucket.create -name tabjob" in bucket_job["spec"]["template"]["spec"]["containers"][0]["command"][2]


def test_dev_wires_the_chart_to_in_cluster_services(deployed_stacks):
    values = _release(deployed_stacks["dev"], "tabjob")["values"]
    assert values["gpu"] == {"enabled": False}
    assert values["config"]["redisUrl"].startswith("redis://valkey-generated.tabjob.svc")
    assert values["config"]["s3Endpoint"] == ("http://seaweedfs-generated.tabjob.svc.cluster.local:8333")
    assert values["config"]["s3PublicEndpoint"] == "http://127.0.0.1:8333"
    assert values["keda"]["redisTls"] is False
    assert values["serviceAccount"]["annotations"] == {}


def test_dev_creates_no_cloud_resources(deployed_stacks):
    assert not [t for t in deployed_stacks["dev"].types() if t.startswith("gcp:")]


# ---- staging and production: GKE


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gke_has_workload_identity_a_release_channel_and_no_default_pool(deployed_stacks, stack):
    cluster = deployed_stacks[stack].one("gcp:container/cluster:Cluster").inputs
    assert cluster["workloadIdentityConfig"]["workloadPool"] == f"tabjob-{stack}.svc.id.goog"
    assert cluster["releaseChannel"]["channel"] in {"RAPID", "REGULAR", "STABLE"}
    assert cluster["removeDefaultNodePool"] is True
    assert cluster["ipAllocationPolicy"]["clusterSecondaryRangeName"] == "pods"
    assert cluster["deletionProtection"] is (stack == "production")


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gke_subnet_has_secondary_ranges(deployed_stacks, stack):
    subnet = deployed_stacks[stack].one("gcp:compute/subnetwork:Subnetwork").inputs
    names = {r["rangeName"] for r in subnet["secondaryIpRanges"]}
    assert names == {"pods", "services"}


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gke_cpu_pool_autoscales(deployed_stacks, stack):
    pool = deployed_stacks[stack].one(NODE_POOL, "gke-cpu").inputs
    scaling = pool["autoscaling"]
    assert 0 < scaling["totalMinNodeCount"] <= scaling["totalMaxNodeCount"]
    assert "guestAccelerators" not in pool["nodeConfig"]


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gke_gpu_pool_scales_to_zero_with_driver_and_taint(deployed_stacks, stack):
    pool = deployed_stacks[stack].one(NODE_POOL, "gke-gpu").inputs
    assert pool["autoscaling"]["totalMinNodeCount"] == 0
    assert pool["autoscaling"]["totalMaxNodeCount"] >= 1
    node = pool["nodeConfig"]
    assert node["machineType"] == "g2-standard-4"
    accelerator = node["guestAccelerators"][0]
    assert accelerator["type"] == "nvidia-l4"
    assert accelerator["gpuDriverInstallationConfig"]["gpuDriverVersion"] in {"LATEST", "DEFAULT"}
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"} in node["taints"]
    assert node["workloadMetadataConfig"]["mode"] == "GKE_METADATA"


def test_spot_gpus_follow_the_stack_config(deployed_stacks):
    spot = {
        stack: deployed_stacks[stack].one(NODE_POOL, "gke-gpu").inputs["nodeConfig"]["spot"] for stack in GKE_STACKS
    }
    assert spot == {"staging": True, "production": False}


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_managed_valkey_is_non_cluster_with_tls_over_psc(deployed_stacks, stack):
    run = deployed_stacks[stack]
    instance = run.one("gcp:memorystore/instance:Instance").inputs
    assert instance["mode"] == "CLUSTER_DISABLED"
    assert instance["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
    assert instance["desiredAutoCreatedEndpoints"][0]["network"]
    assert instance["deletionProtectionEnabled"] is (stack == "production")
    policy = run.one("gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy")
    assert policy.inputs["serviceClass"] == "gcp-memorystore"


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_bucket_has_lifecycle_rules_and_uniform_access(deployed_stacks, stack):
    bucket = deployed_stacks[stack].one("gcp:storage/bucket:Bucket").inputs
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    deletes = [r for r in bucket["lifecycleRules"] if r["action"]["type"] == "Delete"]
    expected_days = {"staging": 7, "production": 30}[stack]
    # Datasets and predictions (Parquet) and prepared matrices (Arrow) expire; models (.pkl) and
    # job manifests (.json) stay. Every real object key must match one of the rules it should.
    assert {tuple(r["condition"]["matchesSuffixes"]) for r in deletes} == {(".parquet",), (".arrow",)}
    suffixes = [r["condition"]["matchesSuffixes"][0] for r in deletes]
    expiring = [dataset_key("t", "ds_1"), result_key("t", "job_1"), prepared_key("t", "k")]
    kept = [model_key("t", "job_1"), manifest_key("t", "job_1")]
    assert all(any(k.endswith(s) for s in suffixes) for k in expiring)
    assert not any(k.endswith(s) for s in suffixes for k in kept)
    assert {r["condition"]["age"] for r in deletes} == {expected_days}
    assert bucket["forceDestroy"] is (stack != "production")


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_s3_access_uses_an_hmac_key_and_never_a_service_account_key(deployed_stacks, stack):
    run = deployed_stacks[stack]
    assert "gcp:serviceaccount/key:Key" not in run.types()
    hmac = run.one("gcp:storage/hmacKey:HmacKey").inputs
    assert hmac["serviceAccountEmail"] == f"tabjob-s3-{stack}@project.iam.gserviceaccount.com"
    secret = run.one("kubernetes:core/v1:Secret", "tabjob-credentials").inputs["stringData"]
    assert secret["s3-access-key"] == "GOOG1EXAMPLE"
    assert secret["s3-secret-key"] == "hmac-secret"


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_artifact_registry_is_a_docker_repository(deployed_stacks, stack):
    run = deployed_stacks[stack]
    repository = run.one("gcp:artifactregistry/repository:Repository").inputs
    assert repository["format"] == "DOCKER"
    registry = f"us-central1-docker.pkg.dev/tabjob-{stack}/tabjob"
    assert run.outputs["imageRegistry"] == registry
    values = _release(run, "tabjob")["values"]
    assert values["image"]["repository"] == f"{registry}/tabjob"
    assert values["gpuImage"]["repository"] == f"{registry}/tabjob-gpu"


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_app_service_account_is_bound_by_workload_identity(deployed_stacks, stack):
    run = deployed_stacks[stack]
    binding = run.one("gcp:serviceaccount/iAMMember:IAMMember").inputs
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert binding["member"] == f"serviceAccount:tabjob-{stack}.svc.id.goog[tabjob/tabjob]"
    values = _release(run, "tabjob")["values"]
    assert values["serviceAccount"]["name"] == "tabjob"
    assert values["serviceAccount"]["annotations"] == {
        "iam.gke.io/gcp-service-account": f"tabjob-app-{stack}@project.iam.gserviceaccount.com"
    }


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gke_wires_the_chart_to_managed_services(deployed_stacks, stack):
    values = _release(deployed_stacks[stack], "tabjob")["values"]
    assert values["gpu"]["enabled"] is True
    assert values["gpu"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert values["config"]["redisUrl"] == "rediss://10.10.0.5:6379/0"
    assert values["keda"] == {"redisAddress": "10.10.0.5:6379", "redisTls": True, "scaleFrom": "api"}
    assert values["config"]["s3Endpoint"] == "https://storage.googleapis.com"
    assert values["config"]["s3Region"] == "auto"
    assert values["config"]["s3Bucket"] == "storage-0123abc"
    ingress = values["api"]["ingress"]
    assert ingress["enabled"] is True
    assert ingress["host"] == stack_config(stack)["apiHost"]
    assert ingress["annotations"]["kubernetes.io/ingress.allow-http"] == "false"
    certificate = deployed_stacks[stack].one("kubernetes:networking.gke.io/v1:ManagedCertificate")
    assert certificate.inputs["spec"]["domains"] == [ingress["host"]]


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_gke_creates_no_kind_cluster(deployed_stacks, stack):
    assert COMMAND not in deployed_stacks[stack].types()


def test_first_gke_up_without_images_creates_infrastructure_but_no_release():
    # Given a new stack before CI has pushed any image, bootstrapped on purpose
    run = run_program("staging", {**stack_config("staging"), "bootstrap": True})
    # Then everything but the app release exists, the registry CI needs included
    assert {r.name for r in run.of_type(RELEASE)} == {"keda", "dask-operator"}
    assert run.one("gcp:artifactregistry/repository:Repository")
    assert run.outputs["imageRegistry"] == "us-central1-docker.pkg.dev/tabjob-staging/tabjob"


# ---- an existing cluster


def test_existing_cluster_deploys_only_the_app_layer():
    run = run_program("production", EXISTING_CONFIG)
    assert {t for t in run.types() if not t.startswith("tabjob:")} == {
        "pulumi:providers:kubernetes",
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:Secret",
        RELEASE,
        # The smoke test's API key, generated by the deploy.
        "random:index/randomId:RandomId",
        "random:index/randomPassword:RandomPassword",
    }
    assert {r.name for r in run.of_type(RELEASE)} == {"keda", "tabjob"}
    values = _release(run, "tabjob")["values"]
    assert values["config"]["redisUrl"] == EXISTING_CONFIG["redisUrl"]
    assert values["keda"] == {"redisAddress": "valkey.acme.internal:6380", "redisTls": True, "scaleFrom": "redis"}
    assert values["api"]["ingress"]["host"] == EXISTING_CONFIG["apiHost"]
    assert run.outputs["imageRegistry"] == "registry.example.com/acme"
    assert run.outputs["bucket"] == "tabjob"


def test_existing_cluster_can_skip_keda_it_already_runs():
    run = run_program("production", {**EXISTING_CONFIG, "installKeda": False})
    assert {r.name for r in run.of_type(RELEASE)} == {"tabjob"}
