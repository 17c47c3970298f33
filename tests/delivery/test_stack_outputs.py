"""The workflows read back what the deploy exported: the release's digests and the smoke key.

Previews and other runs without a build keep the running release by setting the digests the
stack's last deploy exported (a run without digests would plan no release and delete the app);
the smoke test takes its API key from the stack's secret output. The composite actions' scripts
run here with bash against a stand-in `pulumi` that answers like the CLI and logs each call.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ._support import fake_tools

IMAGE = "sha256:" + "a" * 64
GPU_IMAGE = "sha256:" + "b" * 64
SMOKE_KEY = "tj_smoke_0123456789abcdef"

# Stand-in for the Pulumi CLI: `stack output` answers from FAKE_* variables, everything is logged.
FAKE_PULUMI = """
echo "pulumi $*" >> "$FAKE_LOG"
if [[ "$1 $2" == "stack output" ]]; then
  [[ -n "${FAKE_FAIL:-}" ]] && { echo "error: stack not found" >&2; exit 255; }
  [[ " $* " == *" --json "* ]] && { printf '%s\\n' "${FAKE_OUTPUTS:-}"; exit 0; }
  case "$3" in
    smokeApiKey) printf '%s\\n' "${FAKE_SMOKE_KEY:-}" ;;
    imageDigest) printf '%s\\n' "${FAKE_EXPORTED_IMAGE:-$IMAGE_DIGEST}" ;;
    gpuImageDigest) printf '%s\\n' "${FAKE_EXPORTED_GPU:-$GPU_IMAGE_DIGEST}" ;;
    apiUrl) echo "https://api.example.test" ;;
  esac
fi
exit 0
"""
FAKE_UV = """echo "uv $* key=${TABJOB_API_KEY-} url=${TABJOB_URL-}" >> "$FAKE_LOG"\n"""


def step_script(action: dict[str, Any], step_id_or_name: str) -> str:
    steps = action["runs"]["steps"]
    return next(s for s in steps if step_id_or_name in (s.get("id"), s.get("name")))["run"]


class StepRun:
    """One run of a step's script: its result, the tools' log and what it wrote to GITHUB_OUTPUT."""

    def __init__(self, tmp_path: Path, script: str, **env: str) -> None:
        bin_dir = fake_tools(tmp_path / "bin", {"pulumi": FAKE_PULUMI, "uv": FAKE_UV})
        self.log = tmp_path / "tools.log"
        self.log.touch()
        output = tmp_path / "github_output"
        output.touch()
        summary = tmp_path / "summary"
        self.result = subprocess.run(
            ["bash", "-c", script],
            env={
                "PATH": f"{bin_dir}:/usr/bin:/bin",
                "FAKE_LOG": str(self.log),
                "GITHUB_OUTPUT": str(output),
                "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_SHA": "0" * 40,
                **env,
            },
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        self.calls = self.log.read_text().splitlines()
        self.outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)

    def config_sets(self) -> list[str]:
        prefix = "pulumi config set --stack staging "
        return [call.removeprefix(prefix) for call in self.calls if call.startswith(prefix)]


# --- .github/actions/deployed-images ----------------------------------------------------------


@pytest.fixture
def keep_script(deployed_images_action: dict[str, Any]) -> str:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (GitHub's runners have it); `apt-get install jq`")
    return step_script(deployed_images_action, "keep")


def keep(tmp_path: Path, script: str, outputs: str, when_none: str = "bootstrap", **env: str) -> StepRun:
    return StepRun(tmp_path, script, STACK="staging", WHEN_NONE=when_none, FAKE_OUTPUTS=outputs, **env)


def test_a_deployed_stack_keeps_its_digests(tmp_path: Path, keep_script: str) -> None:
    outputs = f'{{"apiUrl": "https://x", "imageDigest": "{IMAGE}", "gpuImageDigest": "{GPU_IMAGE}"}}'
    run = keep(tmp_path, keep_script, outputs)
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    assert run.config_sets() == [f"tabjob:imageDigest {IMAGE}", f"tabjob:gpuImageDigest {GPU_IMAGE}"]
    assert run.outputs == {"mode": "keep", "image-digest": IMAGE, "gpu-image-digest": GPU_IMAGE}


def test_a_stack_without_a_release_bootstraps_only_when_asked(tmp_path: Path, keep_script: str) -> None:
    run = keep(tmp_path / "asked", keep_script, '{"imageRegistry": "r"}', when_none="bootstrap")
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    assert run.config_sets() == ["tabjob:bootstrap true"]
    assert run.outputs["mode"] == "bootstrap"

    refused = keep(tmp_path / "refused", keep_script, '{"imageRegistry": "r"}', when_none="fail")
    assert refused.result.returncode == 1
    assert "::error::" in refused.result.stdout
    assert refused.config_sets() == []


@pytest.mark.parametrize(
    "outputs",
    [
        f'{{"imageDigest": "{IMAGE}"}}',  # one digest without the other
        f'{{"imageDigest": "{IMAGE}\\ntabjob:x: y", "gpuImageDigest": "{GPU_IMAGE}"}}',
        f'{{"imageDigest": "latest", "gpuImageDigest": "{GPU_IMAGE}"}}',
    ],
)
def test_exported_values_that_are_not_digests_are_refused(tmp_path: Path, keep_script: str, outputs: str) -> None:
    run = keep(tmp_path, keep_script, outputs)
    assert run.result.returncode == 1
    assert "::error::" in run.result.stdout
    assert run.config_sets() == []


def test_an_unreadable_stack_stops_the_run(tmp_path: Path, keep_script: str) -> None:
    run = keep(tmp_path, keep_script, "{}", FAKE_FAIL="1")
    assert run.result.returncode == 1
    assert "tabjob:bootstrap=true" in run.result.stdout
    assert run.config_sets() == []


@pytest.mark.parametrize(("name", "value"), [("STACK", "dev"), ("WHEN_NONE", "maybe")])
def test_keep_refuses_unknown_inputs(tmp_path: Path, keep_script: str, name: str, value: str) -> None:
    env = {"STACK": "staging", "WHEN_NONE": "fail", name: value}
    run = StepRun(tmp_path, keep_script, **env)
    assert run.result.returncode == 1
    assert run.calls == []


# --- .github/actions/smoke ---------------------------------------------------------------------


def smoke(tmp_path: Path, smoke_action: dict[str, Any], **env: str) -> StepRun:
    script = step_script(smoke_action, "tabjob smoke")
    return StepRun(tmp_path, script, STACK="staging", TABJOB_URL="https://api.example.test", **env)


def test_smoke_reads_masks_and_passes_the_stacks_smoke_key(tmp_path: Path, smoke_action: dict[str, Any]) -> None:
    run = smoke(tmp_path, smoke_action, FAKE_SMOKE_KEY=SMOKE_KEY)
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    assert run.calls == [
        "pulumi stack output smokeApiKey --stack staging --show-secrets",
        # --wait-s: the certificate and load balancer of a first release (app/local/reachability.py).
        f"uv run --no-sync tabjob smoke --wait-s 4200 key={SMOKE_KEY} url=https://api.example.test",
    ]
    # The mask is the first thing printed, and the only line that holds the key.
    lines = run.result.stdout.splitlines()
    assert lines[0] == f"::add-mask::{SMOKE_KEY}"
    assert not any(SMOKE_KEY in line for line in lines[1:] + run.result.stderr.splitlines())


def test_smoke_without_a_key_stops_before_testing(tmp_path: Path, smoke_action: dict[str, Any]) -> None:
    run = smoke(tmp_path / "empty", smoke_action, FAKE_SMOKE_KEY="")
    assert run.result.returncode == 1
    assert "::error::" in run.result.stdout
    assert not any(call.startswith("uv ") for call in run.calls)

    failed = smoke(tmp_path / "failed", smoke_action, FAKE_FAIL="1")
    assert failed.result.returncode != 0
    assert not any(call.startswith("uv ") for call in failed.calls)


def test_smoke_action_takes_the_stack_not_a_key(smoke_action: dict[str, Any]) -> None:
    assert set(smoke_action["inputs"]) == {"url", "stack"}
    check = step_script(smoke_action, "Check the inputs")
    assert "^(staging|production)$" in check


# --- .github/actions/deploy: what it deploys, it exports -----------------------------------------


def deploy_up(tmp_path: Path, deploy_action: dict[str, Any], **env: str) -> StepRun:
    script = step_script(deploy_action, "up")
    return StepRun(tmp_path, script, STACK="staging", IMAGE_DIGEST=IMAGE, GPU_IMAGE_DIGEST=GPU_IMAGE, **env)


def test_deploy_sets_the_digests_never_bootstraps_and_checks_the_exports(
    tmp_path: Path, deploy_action: dict[str, Any]
) -> None:
    run = deploy_up(tmp_path, deploy_action)
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    assert run.config_sets() == [
        f"tabjob:imageDigest {IMAGE}",
        f"tabjob:gpuImageDigest {GPU_IMAGE}",
        "tabjob:bootstrap false",
    ]
    up = next(i for i, call in enumerate(run.calls) if call.startswith("pulumi up --stack staging --yes"))
    exports = ("pulumi stack output imageDigest", "pulumi stack output gpuImageDigest")
    reads = [i for i, call in enumerate(run.calls) if call.startswith(exports)]
    assert len(reads) == 2 and min(reads) > up
    assert run.outputs["api-url"] == "https://api.example.test"


def test_deploy_fails_when_the_stack_does_not_export_what_it_deployed(
    tmp_path: Path, deploy_action: dict[str, Any]
) -> None:
    run = deploy_up(tmp_path, deploy_action, FAKE_EXPORTED_GPU="sha256:" + "c" * 64)
    assert run.result.returncode == 1
    assert "::error::stack output gpuImageDigest" in run.result.stdout
