"""values.schema.json, the values-to-manifest mapping, and NOTES.txt.

Renders go through Helm's own schema validation, so a values mistake fails here exactly as it
would fail `helm install` (and the Pulumi release that installs the chart by path).
"""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import pytest
from chart_render import (
    CHART_DIR,
    by_kind,
    named,
    notes_of,
    render_files,
    render_objects,
    scenario_files,
)

DIGEST = "sha256:" + "ab" * 32


def _api_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return named(objects, "Deployment", "tabjob-api")["spec"]["template"]["spec"]["containers"][0]


def _trigger(objects: list[dict[str, Any]], lane: str = "small") -> dict[str, Any]:
    return named(objects, "ScaledObject", f"tabjob-worker-{lane}")["spec"]["triggers"][0]


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": 3},
        {"config": {"redisURL": "redis://x:6379/0"}},
        {"workers": {"small": {"replicas": 2}}},
        {"workers": {"medium": {"enabled": True}}},
        {"api": {"ingress": {"tls": {"enabled": True, "secret": "x"}}}},
        {"keda": {"scaleDown": {"stabilizationWindow": 10}}},
    ],
    ids=["root", "config", "lane", "unknown-lane", "ingress-tls", "keda-scale-down"],
)
def test_schema_rejects_unknown_keys(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError, match="additional propert"):
        render_files(values)


@pytest.mark.parametrize(
    "values",
    [
        {"api": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": None}}},
        # null deletes a default in Helm's merge: how a user would drop a request
        {"workers": {"small": {"resources": {"requests": {"memory": None}}}}},
        {"workers": {"large": {"timeLimitS": 0}}},
        {"image": {"digest": "latest"}},
        {"config": {"environment": "qa"}},
        {"config": {"redisUrl": "http://valkey:6379"}},
        {"networkPolicy": {"extraEgressCIDRs": ["not-a-cidr"]}},
    ],
    ids=[
        "limits-missing",
        "memory-request-missing",
        "zero-time-limit",
        "bad-digest",
        "bad-env",
        "bad-redis-url",
        "bad-cidr",
    ],
)
def test_schema_rejects_invalid_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render_files(values)


def test_image_is_pinned_by_digest_when_one_is_set() -> None:
    objects = render_objects({"image": {"repository": "registry.example/tabjob", "tag": "1.2.3", "digest": DIGEST}})

    assert _api_container(objects)["image"] == f"registry.example/tabjob@{DIGEST}"
    for deployment in by_kind(objects, "Deployment"):
        annotations = deployment["metadata"]["annotations"]
        # Pinned by digest: the image checks pass, so they are not skipped.
        assert not {v.split("=")[0] for k, v in annotations.items() if k.startswith("checkov.io/skip")} & {
            "CKV_K8S_43",
            "CKV_K8S_15",
        }


def test_image_tag_defaults_to_the_app_version() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        app_version = chart.metadata["appVersion"]

    assert _api_container(render_objects())["image"] == f"tabjob:{app_version}"
    assert _api_container(render_objects({"image": {"tag": "dev"}}))["image"] == "tabjob:dev"


def test_config_map_carries_settings_as_exact_strings() -> None:
    objects = render_objects({"config": {"maxDatasetBytes": 10737418240, "s3Endpoint": "http://s3.internal:8333"}})
    data = named(objects, "ConfigMap", "tabjob-config")["data"]

    # Helm holds numbers as floats; the chart must still print plain integers.
    assert data["TABJOB_MAX_DATASET_BYTES"] == "10737418240"
    # No public endpoint configured: presigned URLs are signed for the internal one.
    assert data["TABJOB_S3_PUBLIC_ENDPOINT"] == "http://s3.internal:8333"
    assert data["TABJOB_SCRATCH_DIR"] == "/tmp"
    assert all(isinstance(value, str) for value in data.values())


def test_config_change_rolls_the_pods() -> None:
    def checksums(values: dict[str, Any]) -> set[str]:
        objects = render_objects(values)
        return {
            d["spec"]["template"]["metadata"]["annotations"]["checksum/config"] for d in by_kind(objects, "Deployment")
        }

    before = checksums({})
    after = checksums({"config": {"logLevel": "DEBUG"}})

    assert len(before) == 1
    assert before != after


def test_keda_reaches_the_broker_named_in_the_redis_url() -> None:
    objects = render_objects({"config": {"redisUrl": "rediss://memorystore.internal:6380/3"}})
    metadata = _trigger(objects)["metadata"]

    assert metadata["address"] == "memorystore.internal:6380"
    # KEDA must count the database Dramatiq writes to.
    assert metadata["databaseIndex"] == "3"
    # rediss:// means TLS for the scaler too.
    assert metadata["enableTLS"] == "true"


def test_keda_address_and_tls_can_be_set_explicitly() -> None:
    objects = render_objects(
        {
            "config": {"redisUrl": "redis://valkey"},
            "keda": {"redisAddress": "10.0.0.5:6379", "redisTls": True},
            "secrets": {"redisCaKey": "redis-ca"},
        }
    )

    metadata = _trigger(objects)["metadata"]
    assert metadata["address"] == "10.0.0.5:6379"
    assert metadata["databaseIndex"] == "0"
    assert metadata["enableTLS"] == "true"
    auth = named(objects, "TriggerAuthentication", "tabjob-redis")
    assert {"parameter": "ca", "name": "tabjob", "key": "redis-ca"} in auth["spec"]["secretTargetRef"]


def test_plain_redis_url_gets_default_port_and_no_tls() -> None:
    metadata = _trigger(render_objects({"config": {"redisUrl": "redis://valkey"}}))["metadata"]

    assert metadata["address"] == "valkey:6379"
    assert metadata["enableTLS"] == "false"


def test_disabled_lane_renders_nothing() -> None:
    objects = render_objects({"workers": {"large": {"enabled": False}}})

    names = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    assert not {name for kind, name in names if name == "tabjob-worker-large"}
    assert ("ScaledObject", "tabjob-worker-small") in names


def test_no_workers_means_no_trigger_authentication() -> None:
    objects = render_objects({"workers": {"small": {"enabled": False}, "large": {"enabled": False}}})

    assert not by_kind(objects, "TriggerAuthentication")
    assert not by_kind(objects, "ScaledObject")


def test_ingress_routes_the_host_to_the_api_with_tls() -> None:
    ingress = named(render_objects(_gke_like_ingress()), "Ingress", "tabjob-api")

    assert ingress["spec"]["ingressClassName"] == "gce"
    assert ingress["spec"]["tls"] == [{"hosts": ["api.example.com"], "secretName": "api-tls"}]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "api.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": "tabjob-api",
        "port": {"name": "http"},
    }


def test_ingress_without_a_host_is_refused() -> None:
    values = _gke_like_ingress()
    values["api"]["ingress"]["host"] = ""

    with pytest.raises(helm.HelmRenderError, match=r"api\.ingress\.host is required"):
        render_files(values)


def test_existing_service_account_is_used_not_created() -> None:
    objects = render_objects({"serviceAccount": {"create": False, "name": "ml-runner"}})

    assert not by_kind(objects, "ServiceAccount")
    api = named(objects, "Deployment", "tabjob-api")
    assert api["spec"]["template"]["spec"]["serviceAccountName"] == "ml-runner"


def test_workload_identity_annotation_reaches_the_service_account() -> None:
    objects = render_objects({"serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": "sa@p.iam"}}})

    account = named(objects, "ServiceAccount", "tabjob")
    assert account["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "sa@p.iam"}
    assert account["automountServiceAccountToken"] is False


def test_notes_give_the_next_commands() -> None:
    notes = notes_of(scenario_files("default"))

    assert "kubectl --namespace tabjob port-forward svc/tabjob-api 8000:8000" in notes
    assert "curl -fsS http://127.0.0.1:8000/healthz" in notes
    assert "kubectl --namespace tabjob exec deploy/tabjob-api -- tabjob admin create-key --tenant" in notes
    assert "tabjob smoke" in notes


def test_notes_use_the_ingress_host_when_there_is_one() -> None:
    notes = notes_of(render_files(_gke_like_ingress()))

    assert "curl -fsS https://api.example.com/healthz" in notes
    assert "port-forward" not in notes


def _gke_like_ingress() -> dict[str, Any]:
    return copy.deepcopy(
        {
            "api": {
                "ingress": {
                    "enabled": True,
                    "className": "gce",
                    "host": "api.example.com",
                    "tls": {"enabled": True, "secretName": "api-tls"},
                }
            }
        }
    )


# The keys the shared interface contract promises (the Pulumi programs set exactly these).
CONTRACT_KEYS = {
    "image": {"repository", "tag", "digest", "pullPolicy"},
    "gpuImage": {"repository", "tag", "digest"},
    "imagePullSecrets": None,
    "serviceAccount": {"create", "name", "annotations"},
    "config": {
        "environment",
        "redisUrl",
        "s3Endpoint",
        "s3PublicEndpoint",
        "s3Bucket",
        "s3Region",
        "maxDatasetBytes",
        "laneLargeMinBytes",
        "tenantMaxQueued",
        "tenantMaxRunning",
        "jobRetentionS",
        "dataRetentionDays",
        "logLevel",
    },
    "secrets": {"existingSecret", "redisPasswordKey", "s3AccessKeyKey", "s3SecretKeyKey", "bootstrapApiKeysKey"},
    "api": {"replicas", "resources", "service", "ingress"},
    "workers": {"small", "large"},
    "gpu": {"enabled", "maxReplicaCount", "timeLimitS", "resources", "nodeSelector", "tolerations"},
    "keda": {"pollingIntervalS", "cooldownPeriodS", "redisAddress", "redisTls"},
    "networkPolicy": {"enabled", "brokerPort", "storagePort", "extraEgressCIDRs"},
    "podDisruptionBudget": {"enabled"},
}


def test_values_offer_every_contract_key() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        defaults = chart.values

    for section, keys in CONTRACT_KEYS.items():
        assert section in defaults, section
        if keys is not None:
            assert keys <= set(defaults[section]), section
    assert {"type", "port"} <= set(defaults["api"]["service"])
    assert {"enabled", "className", "host", "tls", "annotations"} <= set(defaults["api"]["ingress"])
    assert {"enabled", "secretName"} <= set(defaults["api"]["ingress"]["tls"])
    for lane in ("small", "large"):
        assert {"enabled", "minReplicas", "maxReplicas", "timeLimitS", "resources"} <= set(defaults["workers"][lane])


def test_data_retention_reaches_the_pods_only_when_set() -> None:
    def config(values: dict) -> dict:
        maps = by_kind(render_objects(values), "ConfigMap")
        return next(m for m in maps if m["metadata"]["name"].endswith("-config"))

    assert "TABJOB_DATA_RETENTION_DAYS" not in config({})["data"]
    assert config({"config": {"dataRetentionDays": 30}})["data"]["TABJOB_DATA_RETENTION_DAYS"] == "30"
