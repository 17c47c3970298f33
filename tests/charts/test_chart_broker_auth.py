"""How pods and KEDA log in to the broker, per stack.

Rules this depends on, from the engines' sources:
- KEDA's redis trigger sends a static `password` from its authParams and checks the server's
  certificate names unless `unsafeSsl` (kedacore/keda pkg/scalers/redis_scaler.go; Go's
  crypto/tls verifies IP SANs when the address is an IP). It cannot send Memorystore's hourly IAM
  token, so with `redisAuth: gcp-iam` KEDA must scale from the API's count instead.
- KEDA's metrics-api trigger takes `url`, `valueLocation` (a gjson path into the JSON body),
  `targetValue`, and `authModes: bearer` with the `bearerToken` auth parameter
  (pkg/scalers/metrics_api_scaler.go, pkg/scalers/authentication/authentication_types.go).
"""

from __future__ import annotations

import helm_python as helm
import pytest
from chart_render import by_kind, merged_values, named, objects_of, pod_templates, render_objects, scenario_files


def _triggers(objects):
    for kind in ("ScaledObject", "ScaledJob"):
        for obj in by_kind(objects, kind):
            yield obj["metadata"]["name"], obj["spec"]["triggers"]


def _env_names(pod_spec):
    return {e["name"] for c in pod_spec["spec"]["containers"] for e in c.get("env", [])}


def test_gke_scales_every_lane_from_the_api_with_a_bearer_token():
    objects = objects_of(scenario_files("gke"))
    values = merged_values({})  # defaults, to read the API port the template uses
    lanes = dict(_triggers(objects))
    assert lanes, "the GKE scenario scales lanes"
    for name, triggers in lanes.items():
        (trigger,) = triggers
        lane = name.rsplit("-", 1)[-1]
        assert trigger["type"] == "metrics-api", name
        meta = trigger["metadata"]
        assert (
            meta["url"]
            == f"http://tabjob-api.tabjob.svc:{values['api']['service']['port']}/internal/scaling/lanes/{lane}"
        )
        assert meta["valueLocation"] == "messages"
        assert meta["targetValue"] == "1"
        assert meta["authModes"] == "bearer"
    # The URL names the API Service the chart renders, on its port.
    service = named(objects, "Service", "tabjob-api")
    assert {p["port"] for p in service["spec"]["ports"]} == {8000}
    auth = named(objects, "TriggerAuthentication", "tabjob-redis")
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "bearerToken", "name": "tabjob", "key": "scaler-token"}]


def test_gke_pods_log_in_with_iam_and_only_the_api_holds_the_scaler_token():
    objects = objects_of(scenario_files("gke"))
    config = named(objects, "ConfigMap", "tabjob-config")["data"]
    assert config["TABJOB_REDIS_AUTH"] == "gcp-iam"
    for name, pod in pod_templates(objects):
        env = _env_names(pod)
        assert "TABJOB_REDIS_PASSWORD" not in env, name
        assert ("TABJOB_SCALER_TOKEN" in env) == name.endswith("-api"), name


@pytest.mark.parametrize("scenario", ["kind", "existing", "default"])
def test_password_brokers_keep_the_redis_trigger(scenario):
    objects = objects_of(scenario_files(scenario))
    for name, triggers in _triggers(objects):
        assert [t["type"] for t in triggers] == ["redis"], name
        assert triggers[0]["metadata"]["listName"].endswith(".msgs")
    for _, pod in pod_templates(objects):
        assert "TABJOB_REDIS_PASSWORD" in _env_names(pod)


def test_scaling_from_the_api_needs_the_token_key():
    with pytest.raises(helm.HelmError, match="scalerTokenKey"):
        render_objects({"keda": {"scaleFrom": "api"}})
