"""/metrics and /readyz stay off the public Ingress, and the scrape and the readiness probe still
work when the app requires its scrape token (TABJOB_METRICS_TOKEN).

Ingress `Prefix` paths match path element by path element (Kubernetes docs, Ingress "Path types"
and "Examples": https://kubernetes.io/docs/concepts/services-networking/ingress/#path-types):
`/foo` matches `/foo` and `/foo/bar`, not `/foobar`; `/` matches everything; a trailing slash is
ignored. ``prefix_matches`` encodes that rule; the rendered Ingress (real Helm engine) is checked
with it against the app's real routes. The ServiceMonitor is validated against the vendored
prometheus-operator 0.93.0 CRD (`authorization.credentials` is a Secret key selector in the
monitor's namespace; `bearerTokenSecret` is deprecated there). A probe's `httpGet.httpHeaders`
take literal values only (Kubernetes API, HTTPHeader: name, value), so the token-bearing
readiness probe is an exec probe reading the container's environment; it is run here for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import helm_python as helm
import httpx
import jsonschema
import pytest
import safe_yaml
from chart_render import by_kind, env_of, named, render_objects, scenario_values
from test_chart_schemas import _strict

CRD = (
    Path(__file__).resolve().parent
    / "crds"
    / "prometheus-operator-0.93.0"
    / "monitoring.coreos.com_servicemonitors.yaml"
)
INTERNAL = ("/metrics", "/readyz", "/internal/scaling/lanes/small")
TOKEN = "scrape-token-for-the-probe-0123"


def prefix_matches(prefix: str, path: str) -> bool:
    """Whether an Ingress rule of pathType Prefix ``prefix`` routes a request for ``path``."""
    rule = [e for e in prefix.split("/") if e]
    request = [e for e in path.split("?")[0].split("/") if e]
    return request[: len(rule)] == rule


def test_prefix_matching_follows_the_kubernetes_examples():
    # The "Examples" table of the Kubernetes Ingress page, Prefix rows.
    assert prefix_matches("/", "/aaa/bbb") and prefix_matches("/foo", "/foo/") and prefix_matches("/foo/", "/foo")
    assert prefix_matches("/aaa/bbb", "/aaa/bbb/ccc") and not prefix_matches("/aaa/bbb", "/aaa/bbbxyz")
    assert not prefix_matches("/v1", "/v1x") and prefix_matches("/v1", "/v1/jobs/job_1")


def ingress_paths(objects: list[dict]) -> list[tuple[str, str]]:
    return [
        (p["path"], p["pathType"])
        for ingress in by_kind(objects, "Ingress")
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    ]


@pytest.mark.parametrize(
    "scenario", [s for s in scenario_values() if scenario_values()[s].get("api", {}).get("ingress")]
)
def test_no_ingress_rule_routes_the_scrape_paths(scenario):
    paths = ingress_paths(render_objects(scenario_values()[scenario]))
    assert paths and {kind for _, kind in paths} == {"Prefix"}
    for internal in INTERNAL:
        assert not [p for p, _ in paths if prefix_matches(p, internal)], f"{internal} is routed in {scenario}"


@cache
def app_paths() -> list[str]:
    """Every path the API serves (path parameters filled in)."""
    from app.api.main import create_app

    app, found = create_app(), []
    for route in app.routes:
        candidates = route.effective_candidates() if hasattr(route, "effective_candidates") else [route]
        found += [c.path.replace("{", "").replace("}", "") for c in candidates]
    return found


def test_every_public_route_of_the_app_is_routed_and_no_internal_one():
    paths = [p for p, _ in ingress_paths(render_objects(scenario_values()["gke"]))]
    routed = {path for path in app_paths() if any(prefix_matches(p, path) for p in paths)}
    assert {"/metrics", "/readyz"} <= set(app_paths())  # the app still serves them (to the cluster)
    assert set(app_paths()) - routed == {"/metrics", "/readyz", "/internal/scaling/lanes/lane"}


@pytest.mark.parametrize("paths", [["/"], ["/v1", "/metrics"], ["/readyz/"], ["/internal"], ["/metrics/x"]])
def test_the_schema_refuses_a_prefix_that_would_route_the_scrape_paths(paths):
    ingress = {"enabled": True, "host": "a.example", "paths": paths}
    with pytest.raises(helm.HelmValuesError):
        render_objects({"api": {"ingress": ingress}})


def service_monitor_validator() -> jsonschema.Draft7Validator:
    crd = safe_yaml.load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


def test_the_service_monitor_sends_the_token_the_api_requires():
    objects = render_objects(scenario_values()["gke"])
    [monitor] = by_kind(objects, "ServiceMonitor")
    errors = sorted(service_monitor_validator().iter_errors(monitor), key=str)
    assert not errors, f"{errors[0].message} at {list(errors[0].absolute_path)}"
    [endpoint] = monitor["spec"]["endpoints"]
    api = named(objects, "Deployment", "tabjob-api")["spec"]["template"]["spec"]["containers"][0]
    secret = env_of(api)["TABJOB_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": secret["name"], "key": secret["key"]},
    }
    assert endpoint["path"] == "/metrics" and "bearerTokenSecret" not in endpoint


def test_without_a_token_the_probe_is_plain_and_the_monitor_sends_nothing():
    objects = render_objects({"monitoring": {"serviceMonitor": {"enabled": True}}})
    api = named(objects, "Deployment", "tabjob-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz" and "TABJOB_METRICS_TOKEN" not in env_of(api)
    assert "authorization" not in by_kind(objects, "ServiceMonitor")[0]["spec"]["endpoints"][0]


@pytest.mark.slow  # starts an API process
def test_the_readiness_probe_authenticates_against_the_real_api(base_env, settings):  # settings: the bucket
    from app.local.servers import free_port
    from app.local.spawn import answers, spawn, stop, tabjob_command

    # Given the readiness probe the chart renders when a token is set (it must not hold the token)
    api = named(render_objects(scenario_values()["gke"]), "Deployment", "tabjob-api")["spec"]["template"]["spec"]
    probe = api["containers"][0]["readinessProbe"]
    assert "httpGet" not in probe and TOKEN not in str(api)
    port = free_port()
    command = [sys.executable if c == "python" else c.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
               for c in probe["exec"]["command"]]  # fmt: skip
    # And the API running with that token (a process of its own, as in the pod)
    url = f"http://127.0.0.1:{port}"
    server = spawn(tabjob_command("api", "--port", str(port)), ready=answers(url), what="the API",
                   env={**base_env, "TABJOB_METRICS_TOKEN": TOKEN})  # fmt: skip
    try:
        # Then the probe passes with the container's token and fails with another
        probe_env = {**os.environ, "TABJOB_METRICS_TOKEN": TOKEN}
        assert subprocess.run(command, env=probe_env, capture_output=True, timeout=30).returncode == 0
        wrong = subprocess.run(command, env={**probe_env, "TABJOB_METRICS_TOKEN": "x"}, capture_output=True, timeout=30)
        assert wrong.returncode != 0 and b"401" in wrong.stderr
        # And the scrape works only as the ServiceMonitor sends it
        assert httpx.get(url + "/metrics").status_code == 401 and httpx.get(url + "/readyz").status_code == 401
        assert httpx.get(url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        stop(server)
