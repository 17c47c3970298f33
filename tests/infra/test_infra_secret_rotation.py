"""A rotated credential reaches running pods: the chart, rendered with exactly the values the
program passes, changes every pod template when the Secret's contents change, and nothing when
they do not.

The Secret is written by the program, outside the chart, so without a checksum in the pod
templates a rotation (a replaced HMAC key, a new broker password) left pods on the old value
while Pulumi deleted the old key after the update (create-before-delete): 403s, failing
/readyz, 502s. The program now hands the chart a sha256 of the Secret's contents
(`secrets.checksum`), which every pod template carries; the Helm release depends on the Secret,
so pods roll onto the new key before the replaced HMAC key is deleted at the end of the update.
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import infra_harness
import pytest
import safe_yaml
from infra_harness import DIGEST, EXISTING_CONFIG, GPU_DIGEST, run_program, stack_config

from infra.app import CHART_PATH, RELEASE_NAME

RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"


def _templates(run) -> dict[str, dict[str, Any]]:
    """Every pod template of the chart rendered with the release's values, by kind/name."""
    values = run.one(RELEASE, "tabjob").inputs["values"]
    with helm.Chart.load(CHART_PATH) as chart:
        files = chart.render(values, name=RELEASE_NAME, namespace="tabjob")
    templates = {}
    for path, text in files.items():
        for obj in safe_yaml.load_all(text) if path.endswith(".yaml") else []:
            if obj and obj["kind"] in ("Deployment", "ScaledJob"):
                spec = obj["spec"]["jobTargetRef"] if obj["kind"] == "ScaledJob" else obj["spec"]
                templates[f"{obj['kind']}/{obj['metadata']['name']}"] = spec["template"]
    return templates


def _without_secret_checksum(template: dict[str, Any]) -> dict[str, Any]:
    annotations = dict(template["metadata"].get("annotations") or {})
    annotations.pop("checksum/secret", None)
    return {**template, "metadata": {**template["metadata"], "annotations": annotations}}


def _assert_rotation_rolls_every_pod(before, after) -> None:
    old, new = _templates(before), _templates(after)
    assert old.keys() == new.keys() and len(old) >= 3
    for name in old:
        assert old[name] != new[name], f"{name} would keep running with the old credential"
        # The checksum is the only difference: nothing else rolls on a rotation.
        assert _without_secret_checksum(old[name]) == _without_secret_checksum(new[name]), name
    secret = after.one(SECRET, "tabjob-credentials")
    release_waits = after.waits_for(RELEASE, "tabjob", SECRET, "tabjob-credentials")
    assert secret and release_waits, "the release (and its rollout) follows the Secret's update"


def test_existing_cluster_rotated_s3_key_rolls_every_pod_template():
    before = run_program("production", EXISTING_CONFIG)
    after = run_program("production", {**EXISTING_CONFIG, "s3SecretKey": "rotated-secret"})
    _assert_rotation_rolls_every_pod(before, after)


def test_existing_cluster_rotated_broker_password_rolls_every_pod_template():
    before = run_program("production", EXISTING_CONFIG)
    after = run_program("production", {**EXISTING_CONFIG, "redisPassword": "rotated-password"})
    _assert_rotation_rolls_every_pod(before, after)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_gke_replaced_hmac_key_rolls_every_pod_template_gpu_jobs_included(stack, monkeypatch):
    config = {**stack_config(stack), "imageDigest": DIGEST, "gpuImageDigest": GPU_DIGEST}
    before = run_program(stack, config)
    monkeypatch.setattr(infra_harness, "MOCK_HMAC_SECRET", ["a-new-hmac-secret"])
    after = run_program(stack, config)
    _assert_rotation_rolls_every_pod(before, after)
    assert any(name.startswith("ScaledJob/") for name in _templates(after)), "the GPU Jobs' template too"


def test_an_unchanged_deploy_changes_no_pod_template():
    first, second = run_program("production", EXISTING_CONFIG), run_program("production", EXISTING_CONFIG)
    assert _templates(first) == _templates(second)
    checksum = first.one(RELEASE, "tabjob").inputs["values"]["secrets"]["checksum"]
    assert len(checksum) == 64 and EXISTING_CONFIG["s3SecretKey"] not in checksum
