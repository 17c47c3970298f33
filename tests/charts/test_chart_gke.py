"""GKE's load balancer in front of the API: a BackendConfig with its own health check, and the
Service annotations that attach it (and container-native load balancing, NEG) to the Ingress.

Rules encoded here, with their sources:
- Without a BackendConfig health check, GKE's Ingress derives the load balancer's health check
  from the serving container's readiness probe (https://cloud.google.com/kubernetes-engine/docs/concepts/ingress#health_checks).
  Ours is /readyz, which fails when the broker or the store does: a Memorystore failover would
  take every backend out of the load balancer at once.
- A Service names its BackendConfig in `cloud.google.com/backend-config: '{"default": "<name>"}'`
  and asks for NEGs with `cloud.google.com/neg: '{"ingress": true}'`; with NEGs the health
  check's port is the container's port
  (https://cloud.google.com/kubernetes-engine/docs/how-to/ingress-configuration#direct_health).
- BackendConfig v1 fields: kubernetes/ingress-gce pkg/apis/backendconfig/v1/types.go
  (HealthCheckConfig: checkIntervalSec, timeoutSec, healthyThreshold, unhealthyThreshold, type,
  port, requestPath), checked strictly below as the API server would check the CRD.
"""

from __future__ import annotations

import json

import jsonschema
from chart_render import by_kind, named, objects_of, render_objects, scenario_files

_INT = {"type": "integer"}
BACKEND_CONFIG_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "cloud.google.com/v1"},
        "kind": {"const": "BackendConfig"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "healthCheck": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "checkIntervalSec": _INT,
                        "timeoutSec": _INT,
                        "healthyThreshold": _INT,
                        "unhealthyThreshold": _INT,
                        "type": {"enum": ["HTTP", "HTTPS", "HTTP2"]},
                        "port": _INT,
                        "requestPath": {"type": "string"},
                    },
                },
                "timeoutSec": _INT,
            },
        },
    },
}


def test_gke_scenario_gives_the_api_a_liveness_health_check_through_a_neg():
    objects = objects_of(scenario_files("gke"))
    (config,) = by_kind(objects, "BackendConfig")
    jsonschema.validate(config, BACKEND_CONFIG_SCHEMA)
    service = named(objects, "Service", "tabjob-api")
    annotations = service["metadata"]["annotations"]
    assert json.loads(annotations["cloud.google.com/neg"]) == {"ingress": True}
    assert json.loads(annotations["cloud.google.com/backend-config"]) == {"default": config["metadata"]["name"]}
    api = named(objects, "Deployment", "tabjob-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    check = config["spec"]["healthCheck"]
    assert check["requestPath"] == container["livenessProbe"]["httpGet"]["path"] != "/readyz"
    assert check["port"] in {p["containerPort"] for p in container["ports"]}
    assert check["timeoutSec"] <= check["checkIntervalSec"], "GCE refuses a timeout longer than the interval"


def test_without_backend_config_the_service_carries_no_gke_annotations():
    objects = render_objects({})
    assert not by_kind(objects, "BackendConfig")
    assert not named(objects, "Service", "tabjob-api")["metadata"].get("annotations")
