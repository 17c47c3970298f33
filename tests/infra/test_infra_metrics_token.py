"""Every stack generates the scrape token of /metrics and /readyz (pulumi_random) into the app's
Secret and names its key to the chart: the API requires it, and the ServiceMonitor (where
monitoring is on) and the readiness probe send it (tests/charts/test_chart_scrape_paths.py)."""

from __future__ import annotations

import pytest
from test_infra_first_deploy import SECRET, _render, _values

from infra.release_values import METRICS_TOKEN_KEY


@pytest.mark.parametrize("stack", ("dev", "staging", "production"))
def test_the_stack_generates_the_scrape_token_and_the_chart_wires_it(deployed_stacks, stack):
    run = deployed_stacks[stack]
    secret = run.one(SECRET, "tabjob-credentials")
    assert secret.inputs["stringData"][METRICS_TOKEN_KEY] and secret.secret_inputs
    generated = run.one("random:index/randomPassword:RandomPassword", "tabjob-metrics-token").inputs
    assert generated["length"] == 40 and generated["special"] is False  # no default credential anywhere
    values = _values(run)
    assert values["secrets"]["metricsTokenKey"] == METRICS_TOKEN_KEY
    objects = _render(values)
    (api,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "tabjob-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    ref = {e["name"]: e for e in container["env"]}["TABJOB_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": values["secrets"]["existingSecret"], "key": METRICS_TOKEN_KEY}
    assert "TABJOB_METRICS_TOKEN" in container["readinessProbe"]["exec"]["command"][-1]
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        assert monitor["spec"]["endpoints"][0]["authorization"]["credentials"] == ref
    for ingress in (o for o in objects if o["kind"] == "Ingress"):
        paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
        assert "/" not in paths and "/metrics" not in paths and "/readyz" not in paths
