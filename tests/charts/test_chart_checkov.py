"""checkov's Kubernetes policies on the rendered chart, every scenario at once.

One checkov run scans a directory holding each scenario's manifests (plus, as a batch/v1 Job, the
Job the GPU ScaledJob creates per message: checkov does not know KEDA kinds, so the GPU pod would
otherwise go unchecked). No check may fail. Skips are only the ones listed in ALLOWED_SKIPS, and
each must come from a `checkov.io/skip<N>: CKV_K8S_xx=reason` annotation the chart renders.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_render import by_kind, gpu_job_as_batch_job, objects_of, scenario_files, scenario_values

SCENARIOS = sorted(scenario_values())
# Slow (checkov scans every scenario's manifests, 7 s): `task lint` runs it with the chart tests,
# and the whole suite; the fast loop leaves it out.
pytestmark = pytest.mark.slow

# The only checks the chart may skip, with why (the chart's annotation carries the same reason).
ALLOWED_SKIPS = {
    # "Prefer using secrets as files over secrets as environment variables": the contract fixes
    # TABJOB_* environment variables (pydantic-settings) with secretKeyRef for the three
    # credentials; the values never appear in a manifest.
    "CKV_K8S_35",
    # "Image should use digest": only rendered when image.digest is empty (kind loads images by
    # tag; a default render has no digest to know). CI/CD always deploys by digest, and the gke
    # scenario proves the check passes then.
    "CKV_K8S_43",
    # "Image Pull Policy should be Always": only when there is no digest and pullPolicy is not
    # Always, i.e. images loaded into kind by tag, which `Always` could not pull.
    "CKV_K8S_15",
}


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """checkov's JSON report over every scenario's rendered manifests."""
    root = tmp_path_factory.mktemp("rendered")
    for scenario in SCENARIOS:
        directory = root / scenario
        directory.mkdir()
        files = scenario_files(scenario)
        for path, text in files.items():
            if path.endswith(".yaml"):
                (directory / Path(path).name).write_text(text)
        for scaled_job in by_kind(objects_of(files), "ScaledJob"):
            job = gpu_job_as_batch_job(scaled_job)
            (directory / f"{job['metadata']['name']}-job.yaml").write_text(yaml.safe_dump(job))

    # --skip-download: no network (the guideline download only adds links to the report).
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("checkov")),
            "--directory",
            str(root),
            "--framework",
            "kubernetes",
            "--compact",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # checkov exits 1 when a check fails; the assertions below say which.
    assert completed.returncode in {0, 1}, completed.stderr[-2000:]
    report = json.loads(completed.stdout)
    assert report["check_type"] == "kubernetes"
    return report


def _scenario_of(result: dict[str, Any]) -> str:
    return result["file_path"].strip("/").split("/")[0]


def test_checkov_scanned_every_scenario(checkov_report: dict[str, Any]) -> None:
    results = checkov_report["results"]
    scanned = {_scenario_of(r) for r in results["passed_checks"]}

    assert scanned == set(SCENARIOS)
    assert not results["parsing_errors"]
    # The GPU lane's pods were scanned too (a Deployment; a Job derived from a ScaledJob).
    assert any(
        r["resource"].startswith(("Job.", "Deployment.tabjob.tabjob-worker-gpu")) for r in results["passed_checks"]
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_checkov_check_fails(checkov_report: dict[str, Any], scenario: str) -> None:
    failed = [
        f"{r['check_id']} {r['check_name']} on {r['resource']}"
        for r in checkov_report["results"]["failed_checks"]
        if _scenario_of(r) == scenario
    ]

    assert not failed, "\n".join(failed)


def test_checkov_skips_are_allowed_and_explained(checkov_report: dict[str, Any]) -> None:
    for result in checkov_report["results"]["skipped_checks"]:
        where = f"{result['check_id']} on {result['resource']}"
        assert result["check_id"] in ALLOWED_SKIPS, where
        reason = result["check_result"].get("suppress_comment") or ""
        assert len(reason) > 20, f"{where}: skipped without a reason"


def test_gke_scenario_pins_images_so_only_the_env_skip_remains(
    checkov_report: dict[str, Any],
) -> None:
    skipped = {r["check_id"] for r in checkov_report["results"]["skipped_checks"] if _scenario_of(r) == "gke"}

    assert skipped == {"CKV_K8S_35"}
