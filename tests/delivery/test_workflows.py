"""GitHub Actions: schema-valid, and the promotion rules of the pipeline hold.

The rules: build once; staging is deployed and smoke-tested before production; production gets
the same digests as staging; clouds are reached only through OIDC (no keys); one deployment at a
time per environment, never cancelled midway; every third-party action is pinned.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ._support import (
    REPO_ROOT,
    action_paths,
    iter_run_scripts,
    iter_uses,
    load_yaml,
    run_tool,
    steps_of,
    workflow_paths,
)

DEPLOY_ACTION = "./.github/actions/deploy"
SMOKE_ACTION = "./.github/actions/smoke"
DEPLOYED_IMAGES_ACTION = "./.github/actions/deployed-images"
# A third-party action is pinned by full commit SHA: a tag can be moved to other code, a SHA cannot.
PINNED_USES = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
SAME_DIGEST_INPUTS = {
    "image-digest": "${{ needs.build.outputs.digest }}",
    "gpu-image-digest": "${{ needs.build.outputs.gpu_digest }}",
}


def all_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, load_yaml(path)) for path in workflow_paths() + action_paths()]


def step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    matches = [s for s in steps_of(job) if s.get("uses", "").split("@")[0] == action]
    assert len(matches) == 1, f"expected one step using {action}, found {len(matches)}"
    return matches[0]


def needs_of(job: dict[str, Any]) -> set[str]:
    needs = job.get("needs", [])
    return {needs} if isinstance(needs, str) else set(needs)


def transitive_needs(jobs: dict[str, Any], name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(needs_of(jobs[name]))
    while todo:
        job = todo.pop()
        if job not in seen:
            seen.add(job)
            todo.extend(needs_of(jobs[job]))
    return seen


def environment_name(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def deploy_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    """Every job in every workflow that runs the deploy action: (workflow, job name, job)."""
    found = []
    for path in workflow_paths():
        for name, job in load_yaml(path)["jobs"].items():
            if any(s.get("uses") == DEPLOY_ACTION for s in steps_of(job)):
                found.append((path.name, name, job))
    return found


# --- schemas -------------------------------------------------------------------------------


# One check-jsonschema run per schema (each run pays ~1 s of start-up); it names the failing file.
SCHEMA_CHECKS = {
    "vendor.github-workflows": workflow_paths,
    # Every job has a timeout-minutes, so a hung job cannot hold its concurrency group.
    "custom.github-workflows-require-timeout": workflow_paths,
    "vendor.github-actions": action_paths,
    "vendor.dependabot": lambda: [REPO_ROOT / ".github" / "dependabot.yml"],
}


@pytest.mark.parametrize("schema", SCHEMA_CHECKS)
def test_github_files_are_valid_against_the_vendored_schemas(schema: str) -> None:
    paths = [str(path) for path in SCHEMA_CHECKS[schema]()]
    assert paths
    result = run_tool("check-jsonschema", "--builtin-schema", schema, *paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_expected_workflows_exist() -> None:
    assert {p.name for p in workflow_paths()} >= {"ci.yml", "deploy.yml", "rollback.yml"}


# --- hygiene shared by every workflow and action ----------------------------------------------


def test_every_uses_is_local_or_pinned_to_a_commit_sha() -> None:
    for path, document in all_documents():
        for uses in iter_uses(document):
            assert uses.startswith("./") or PINNED_USES.match(uses), f"{path.name}: {uses}"


def test_no_service_account_keys_anywhere() -> None:
    for path in sorted((REPO_ROOT / ".github").rglob("*.yml")):
        text = path.read_text()
        for marker in ("credentials_json", "GOOGLE_APPLICATION_CREDENTIALS", "private_key"):
            assert marker not in text, f"{path.name} mentions {marker}"


def test_run_scripts_take_expressions_through_env_only() -> None:
    # `${{ }}` inside a script is pasted into the shell before it runs: a crafted input
    # (a rollback digest, a branch name) would become code. Values go through `env:`.
    for path, document in all_documents():
        for script in iter_run_scripts(document):
            assert "${{" not in script, f"{path.name}: {script.splitlines()[0]}"


def test_google_auth_is_workload_identity_federation() -> None:
    for path, document in all_documents():
        jobs = document.get("jobs", {}).values()
        steps = [s for job in jobs for s in steps_of(job)]
        steps += document.get("runs", {}).get("steps", [])
        for step in steps:
            if step.get("uses", "").startswith("google-github-actions/auth@"):
                assert set(step["with"]) >= {"workload_identity_provider", "service_account"}
                assert "credentials_json" not in step["with"], path.name


# --- ci.yml -------------------------------------------------------------------------------


def run_commands(job: dict[str, Any]) -> list[str]:
    return [s["run"].strip() for s in steps_of(job) if "run" in s]


def test_ci_runs_on_pull_requests_and_pushes_and_can_be_called(ci: dict[str, Any]) -> None:
    assert {"pull_request", "push", "workflow_call"} <= set(ci["on"])


def test_ci_lints_and_tests_through_the_taskfile(ci: dict[str, Any]) -> None:
    jobs = ci["jobs"]
    assert run_commands(jobs["lint"]) == ["uv sync --frozen", "uv run task lint"]
    assert run_commands(jobs["test"]) == ["uv sync --frozen", "uv run task test"]


def test_ci_previews_staging_on_pull_requests_as_a_comment(ci: dict[str, Any]) -> None:
    preview = ci["jobs"]["preview"]
    assert "github.event_name == 'pull_request'" in preview["if"]
    assert preview["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "pull-requests": "write",
    }
    runs = [s for s in steps_of(preview) if s.get("with", {}).get("command") == "preview"]
    assert len(runs) == 1
    pulumi = runs[0]
    assert pulumi["uses"].split("@")[0] == "pulumi/actions"
    assert pulumi["with"]["stack-name"] == "staging"
    assert pulumi["with"]["comment-on-pr"] is True
    step_using(preview, "google-github-actions/auth")


def test_preview_keeps_the_release_staging_runs(ci: dict[str, Any]) -> None:
    # Without digests the program plans no release: a preview must show what a deploy of this
    # change would do to the running app, not its deletion. A staging that never had a
    # release previews its bootstrap, chosen explicitly.
    steps = steps_of(ci["jobs"]["preview"])
    keep = step_using(ci["jobs"]["preview"], DEPLOYED_IMAGES_ACTION)
    assert keep["with"] == {"stack": "staging", "when-none": "bootstrap"}
    preview = next(s for s in steps if s.get("with", {}).get("command") == "preview")
    installs = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("pulumi/actions@") and "with" not in s]
    assert installs and installs[0] < steps.index(keep) < steps.index(preview)


# --- deploy.yml ------------------------------------------------------------------------------


def test_deploy_runs_on_pushes_to_main_after_lint_and_tests(deploy: dict[str, Any]) -> None:
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    jobs = deploy["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert needs_of(jobs["build"]) == {"ci"}
    assert deploy["permissions"] == {}


def test_images_are_built_once_in_the_build_job(deploy: dict[str, Any]) -> None:
    build = deploy["jobs"]["build"]
    build_steps = [s for s in steps_of(build) if s.get("uses", "").startswith("docker/build-push-action@")]
    builds = {s["id"]: s["with"]["file"] for s in build_steps}
    assert sorted(builds.values()) == ["Dockerfile", "Dockerfile.gpu"]
    assert all(s["with"]["push"] is True for s in build_steps)
    by_file = {file: step_id for step_id, file in builds.items()}
    assert build["outputs"]["digest"] == f"${{{{ steps.{by_file['Dockerfile']}.outputs.digest }}}}"
    gpu_output = f"${{{{ steps.{by_file['Dockerfile.gpu']}.outputs.digest }}}}"
    assert build["outputs"]["gpu_digest"] == gpu_output
    # One build lands in both stacks' registries (each stack's nodes read only their own).
    for step in build_steps:
        tags = step["with"]["tags"].splitlines()
        assert any("steps.registries.outputs.staging }}" in tag for tag in tags), tags
        assert any("steps.registries.outputs.production }}" in tag for tag in tags), tags
    # No other job anywhere builds, pushes or retags an image.
    for path in workflow_paths():
        for name, job in load_yaml(path)["jobs"].items():
            if (path.name, name) == ("deploy.yml", "build"):
                continue
            for step in steps_of(job):
                assert not step.get("uses", "").startswith("docker/"), (path.name, name)
                assert "docker " not in step.get("run", ""), (path.name, name)


def test_build_authenticates_with_oidc_and_logs_in_with_the_short_lived_token(
    deploy: dict[str, Any],
) -> None:
    build = deploy["jobs"]["build"]
    assert build["permissions"]["id-token"] == "write"
    auth = step_using(build, "google-github-actions/auth")
    assert auth["with"]["token_format"] == "access_token"
    logins = [s for s in steps_of(build) if s.get("uses", "").startswith("docker/login-action@")]
    assert logins
    for login in logins:
        assert login["with"]["password"] == f"${{{{ steps.{auth['id']}.outputs.access_token }}}}"
    step_using(build, "docker/setup-buildx-action")


def test_staging_is_deployed_then_smoke_tested_then_production(deploy: dict[str, Any]) -> None:
    jobs = deploy["jobs"]
    assert needs_of(jobs["deploy-staging"]) == {"build"}
    assert needs_of(jobs["deploy-production"]) == {"build", "deploy-staging"}
    assert {"ci", "build", "deploy-staging"} <= transitive_needs(jobs, "deploy-production")
    assert environment_name(jobs["deploy-staging"]) == "staging"
    assert environment_name(jobs["deploy-production"]) == "production"
    # The smoke test is a step of the deploy job, after the deploy: production waits for it.
    for name in ("deploy-staging", "deploy-production"):
        steps = steps_of(jobs[name])
        assert steps.index(step_using(jobs[name], DEPLOY_ACTION)) < steps.index(step_using(jobs[name], SMOKE_ACTION))


def test_production_deploys_the_same_digests_as_staging(deploy: dict[str, Any]) -> None:
    jobs = deploy["jobs"]
    inputs = {}
    for name, stack in (("deploy-staging", "staging"), ("deploy-production", "production")):
        step = step_using(jobs[name], DEPLOY_ACTION)
        assert step["with"]["stack"] == stack
        for key, expected in SAME_DIGEST_INPUTS.items():
            assert step["with"][key] == expected, (name, key)
        inputs[name] = {k: v for k, v in step["with"].items() if k != "stack"}
    assert inputs["deploy-staging"] == inputs["deploy-production"]


def test_smoke_steps_test_the_url_their_deploy_reported(deploy: dict[str, Any]) -> None:
    jobs = deploy["jobs"]
    for deployed, stack in (("deploy-staging", "staging"), ("deploy-production", "production")):
        step = step_using(jobs[deployed], SMOKE_ACTION)
        assert step["with"] == {"url": "${{ steps.deploy.outputs.api-url }}", "stack": stack}
        assert jobs[deployed]["outputs"]["api_url"] == "${{ steps.deploy.outputs.api-url }}"


def _token_holders() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in workflow_paths():
        for name, job in (load_yaml(path).get("jobs") or {}).items():
            if "PULUMI_ACCESS_TOKEN" in str(job):
                found.append((path.name, name, job))
    return found


def test_every_job_holding_a_pulumi_token_runs_in_a_github_environment() -> None:
    # Environment secrets reach only jobs that name the environment (and, for production, only
    # after its required reviewers approve): https://docs.github.com/en/actions/deployment/targeting-different-environments/managing-environments-for-deployment#environment-secrets
    holders = _token_holders()
    assert {(wf, name) for wf, name, _ in holders} == {
        ("ci.yml", "preview"),
        ("deploy.yml", "build"),
        ("deploy.yml", "deploy-staging"),
        ("deploy.yml", "deploy-production"),
        ("rollback.yml", "deploy"),
    }
    environments = {(wf, name): environment_name(job) for wf, name, job in holders}
    assert environments[("ci.yml", "preview")] == "preview", "pull-request code gets the staging read-only token"
    assert environments[("deploy.yml", "build")] == "build"
    assert environments[("deploy.yml", "deploy-production")] == "production"


def test_task_lint_runs_zizmors_auditor_persona() -> None:
    lint = load_yaml(REPO_ROOT / "Taskfile.yml")["tasks"]["lint"]["cmds"]
    assert any("zizmor" in c and "--persona auditor" in c for c in lint if isinstance(c, str))


def test_no_workflow_reads_a_hand_made_smoke_key() -> None:
    # Keys live in a Valkey reachable only inside the VPC: a key stored in GitHub by hand could
    # not exist before the first deploy. The deploy provides it (stack output smokeApiKey).
    for path in workflow_paths():
        assert "TABJOB_API_KEY" not in path.read_text(), path.name


# --- every deploy (deploy.yml and rollback.yml) ---------------------------------------------


def test_there_are_deploy_jobs_for_both_environments_and_the_rollback() -> None:
    assert {(wf, name) for wf, name, _ in deploy_jobs()} == {
        ("deploy.yml", "deploy-staging"),
        ("deploy.yml", "deploy-production"),
        ("rollback.yml", "deploy"),
    }


@pytest.mark.parametrize("job", deploy_jobs(), ids=lambda j: f"{j[0]}:{j[1]}")
def test_deploy_job_uses_oidc(job: tuple[str, str, dict[str, Any]]) -> None:
    _, _, definition = job
    assert definition["permissions"] == {"contents": "read", "id-token": "write"}
    step = step_using(definition, DEPLOY_ACTION)
    assert "workload-identity-provider" in step["with"]
    assert "service-account" in step["with"]


@pytest.mark.parametrize("job", deploy_jobs(), ids=lambda j: f"{j[0]}:{j[1]}")
def test_deploy_job_holds_its_environment_lock_without_cancelling(
    job: tuple[str, str, dict[str, Any]],
) -> None:
    _, _, definition = job
    concurrency = definition["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert concurrency["group"] == f"deploy-{environment_name(definition)}"


def test_deploy_action_authenticates_through_workload_identity(
    deploy_action: dict[str, Any],
) -> None:
    steps = deploy_action["runs"]["steps"]
    auth = next(s for s in steps if s.get("uses", "").startswith("google-github-actions/auth@"))
    assert auth["with"] == {
        "workload_identity_provider": "${{ inputs.workload-identity-provider }}",
        "service_account": "${{ inputs.service-account }}",
    }
    up = next(s for s in steps if s.get("id") == "up")
    assert "pulumi up --stack" in up["run"]
    for key in ("tabjob:imageDigest ", "tabjob:gpuImageDigest "):
        assert f'pulumi config set --stack "$STACK" {key}' in up["run"]
    assert deploy_action["outputs"]["api-url"]["value"] == "${{ steps.up.outputs.api-url }}"


def run_input_check(action: dict[str, Any], **env: str) -> subprocess.CompletedProcess[str]:
    """Run the deploy action's input check script with bash, as the runner would."""
    check = next(s for s in action["runs"]["steps"] if s.get("name") == "Check the inputs")
    return subprocess.run(
        ["bash", "-c", check["run"]],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


GOOD_DIGEST = "sha256:" + "0123456789abcdef" * 4
GOOD_INPUTS = {
    "STACK": "staging",
    "IMAGE_DIGEST": GOOD_DIGEST,
    "GPU_IMAGE_DIGEST": GOOD_DIGEST,
}


def test_deploy_action_accepts_a_real_digest(deploy_action: dict[str, Any]) -> None:
    result = run_input_check(deploy_action, **GOOD_INPUTS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STACK", "dev"),
        ("IMAGE_DIGEST", "latest"),
        ("IMAGE_DIGEST", GOOD_DIGEST[:-1]),
        ("GPU_IMAGE_DIGEST", GOOD_DIGEST + "\ntabjob:other: {value: x}"),
        ("GPU_IMAGE_DIGEST", GOOD_DIGEST.upper()),
    ],
)
def test_deploy_action_refuses_what_is_not_a_digest_or_stack(
    deploy_action: dict[str, Any], name: str, value: str
) -> None:
    result = run_input_check(deploy_action, **{**GOOD_INPUTS, name: value})
    assert result.returncode == 1
    assert "::error::" in result.stdout


# --- rollback.yml ----------------------------------------------------------------------------


def test_rollback_is_dispatched_with_an_environment_and_two_digests(
    rollback: dict[str, Any],
) -> None:
    inputs = rollback["on"]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["type"] == "choice"
    assert inputs["environment"]["options"] == ["staging", "production"]
    assert inputs["image_digest"]["required"] is True
    assert inputs["gpu_image_digest"]["required"] is True


def test_rollback_deploys_the_given_digests_in_that_environment_then_smokes(
    rollback: dict[str, Any],
) -> None:
    jobs = rollback["jobs"]
    deploy_job = jobs["deploy"]
    assert environment_name(deploy_job) == "${{ inputs.environment }}"
    step = step_using(deploy_job, DEPLOY_ACTION)
    assert step["with"]["stack"] == "${{ inputs.environment }}"
    assert step["with"]["image-digest"] == "${{ inputs.image_digest }}"
    assert step["with"]["gpu-image-digest"] == "${{ inputs.gpu_image_digest }}"
    smoke = step_using(deploy_job, SMOKE_ACTION)
    assert smoke["with"] == {"url": "${{ steps.deploy.outputs.api-url }}", "stack": "${{ inputs.environment }}"}
    assert set(jobs) == {"deploy"}


def test_deploy_and_rollback_share_the_environment_lock(deploy: dict[str, Any], rollback: dict[str, Any]) -> None:
    # Both must serialise on the same group name for a given environment.
    group = rollback["jobs"]["deploy"]["concurrency"]["group"]
    for env in ("staging", "production"):
        rendered = group.replace("${{ inputs.environment }}", env)
        assert rendered == deploy["jobs"][f"deploy-{env}"]["concurrency"]["group"]
