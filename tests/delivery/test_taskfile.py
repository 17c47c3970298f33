"""Taskfile.yml: valid against Task's schema, every task described, commands wired as documented.

`task --dry` prints the commands a task would run without running them, so these tests check
the real go-task binary's reading of the file (variables, CLI_ARGS passthrough), not just YAML.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ._support import REPO_ROOT, fake_tools, run_tool, venv_tool

REQUIRED_TASKS = {"demo", "stack", "test", "lint", "images", "dev", "dev:down", "bench"}


def dry_run(*args: str) -> list[str]:
    """The commands `task --dry ARGS` would run, one string each."""
    result = run_tool("task", "--dry", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    # task reports each command on stderr as `task: [name] command`.
    lines = (result.stderr + result.stdout).splitlines()
    return [line.split("] ", 1)[1] for line in lines if line.startswith("task: [")]


def test_taskfile_is_valid_against_the_vendored_taskfile_schema() -> None:
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.taskfile", "Taskfile.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_required_tasks_exist_and_every_task_has_a_description(taskfile: dict[str, Any]) -> None:
    tasks = taskfile["tasks"]
    assert set(tasks) >= REQUIRED_TASKS
    for name, task in tasks.items():
        assert isinstance(task, dict) and task.get("desc"), f"task {name} has no desc"


def test_task_list_describes_every_task(taskfile: dict[str, Any]) -> None:
    result = run_tool("task", "--list")
    assert result.returncode == 0, result.stderr
    # Lines look like `* name:   description`.
    listed = {}
    for line in result.stdout.splitlines():
        if line.startswith("* "):
            name, _, desc = line[2:].partition(": ")
            listed[name.rstrip(":").strip()] = desc.strip()
    assert listed == {name: task["desc"] for name, task in taskfile["tasks"].items()}


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("test", "pytest -x tests/delivery"),
        ("stack", "tabjob stack -x tests/delivery"),
        ("bench", "python -m bench -x tests/delivery"),
    ],
)
def test_arguments_after_the_separator_reach_the_command(task: str, expected: str) -> None:
    assert dry_run(task, "--", "-x", "tests/delivery") == [expected]


def test_test_task_runs_the_whole_suite_with_pytest() -> None:
    # The `test` task is THE test command of CI and the README: plain pytest, every testpath.
    assert [cmd.strip() for cmd in dry_run("test")] == ["pytest"]


def test_demo_task_runs_the_demo() -> None:
    assert [cmd.strip() for cmd in dry_run("demo")] == ["tabjob demo"]


def test_lint_covers_code_images_workflows_taskfile_and_charts() -> None:
    commands = dry_run("lint")
    joined = "\n".join(commands)
    assert "ruff check ." in commands
    assert "ruff format --check ." in commands
    assert "hadolint Dockerfile Dockerfile.gpu" in commands
    assert "--builtin-schema vendor.github-workflows .github/workflows/" in joined
    assert "check-jsonschema --builtin-schema vendor.taskfile Taskfile.yml" in commands
    assert "zizmor --offline --min-severity medium .github/" in commands
    assert "pytest tests/charts" in commands


def test_images_builds_both_dockerfiles_with_the_given_names() -> None:
    commands = dry_run("images", "IMAGE=reg/tabjob", "GPU_IMAGE=reg/tabjob-gpu", "TAG=t1")
    assert commands == [
        "docker build --file Dockerfile --tag reg/tabjob:t1 .",
        "docker build --file Dockerfile.gpu --tag reg/tabjob-gpu:t1 .",
    ]


# --- task dev: run for real against stand-ins for docker, kind and pulumi -----------------------

FAKE_DOCKER = """
echo "docker $*" >> "$FAKE_LOG"
case "$1" in
  info) [[ -z "${FAKE_DOCKER_DOWN:-}" ]] || exit 1 ;;
  buildx) [[ -z "${FAKE_NO_BUILDX:-}" ]] || exit 1 ;;
  build) while (($#)); do [[ "$1" == --iidfile ]] && printf '%s' "$FAKE_IMAGE_ID" > "$2"; shift; done ;;
  save) while (($#)); do [[ "$1" == --output ]] && printf 'layers of %s' "$FAKE_IMAGE_ID" > "$2"; shift; done ;;
esac
exit 0
"""
FAKE_KIND = """echo "kind $*" >> "$FAKE_LOG"\n"""
# Logs each call with the image ID and the archive's content as `pulumi up` would see them.
FAKE_PULUMI = """
archive="${TABJOB_KIND_IMAGE_ARCHIVE:-}"
echo "pulumi $* id=${TABJOB_KIND_IMAGE_ID:-} archive=${archive} holds=$(cat "$archive" 2>/dev/null)" >> "$FAKE_LOG"
case "$1" in
  whoami) [[ -z "${FAKE_LOGGED_OUT:-}" ]] || exit 255; echo tester ;;
  stack) [[ "$2" != output ]] || echo "http://127.0.0.1:8000" ;;
esac
exit 0
"""
TOOLS = {"docker": FAKE_DOCKER, "kind": FAKE_KIND, "pulumi": FAKE_PULUMI}


def run_dev(tmp_path: Path, task: str = "dev", missing: str = "", **env: str) -> tuple[int, str, list[str]]:
    """`task dev` in a copy of the Taskfile, with stand-ins on PATH; returns (rc, output, calls)."""
    project = tmp_path / "project"
    project.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "Taskfile.yml", project / "Taskfile.yml")
    bin_dir = fake_tools(tmp_path / "bin", {name: body for name, body in TOOLS.items() if name != missing})
    log = tmp_path / "calls.log"
    log.touch()
    result = subprocess.run(
        [venv_tool("task"), "--dir", str(project), task],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_LOG": str(log), "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr, log.read_text().splitlines()


def pulumi_up_calls(calls: list[str]) -> list[str]:
    return [call for call in calls if call.startswith("pulumi up ")]


def test_dev_creates_the_stack_builds_the_cpu_image_and_hands_pulumi_its_archive_and_id(tmp_path: Path) -> None:
    rc, output, calls = run_dev(tmp_path, FAKE_IMAGE_ID="sha256:" + "1" * 64)
    assert rc == 0, output
    archive = tmp_path / "project" / ".tabjob" / "kind" / "image.tar"
    checks = ("docker info", "docker buildx version", "pulumi whoami")
    commands = [call.split(" id=")[0] for call in calls if not call.startswith(checks)]
    assert commands == [
        "pulumi stack select --create dev",
        "docker build --file Dockerfile --tag tabjob:dev --provenance=false --iidfile .tabjob/kind/image-id .",
        "docker save --output .tabjob/kind/image.tar tabjob:dev",
        "pulumi up --stack dev --yes",
        "pulumi stack output apiUrl --stack dev",
    ]
    # The kind stack runs no GPU lane: the GPU image is never built for it.
    assert not any("Dockerfile.gpu" in call for call in calls)
    # An absolute path: Pulumi's `kind load image-archive` runs from its own working directory.
    assert pulumi_up_calls(calls) == [
        f"pulumi up --stack dev --yes id=sha256:{'1' * 64} archive={archive} holds=layers of sha256:{'1' * 64}"
    ]
    assert "http://127.0.0.1:8000" in output


def test_a_rebuilt_image_reaches_pulumi_under_its_new_id(tmp_path: Path) -> None:
    # Same tag (tabjob:dev) every time; the image ID is what tells Pulumi to load again.
    seen = []
    for image_id in ("sha256:" + "1" * 64, "sha256:" + "2" * 64, "sha256:" + "2" * 64):
        rc, output, calls = run_dev(tmp_path, FAKE_IMAGE_ID=image_id)
        assert rc == 0, output
        seen.append(pulumi_up_calls(calls)[-1])
    first, rebuilt, unchanged = seen
    assert "id=sha256:" + "2" * 64 in rebuilt and "holds=layers of sha256:" + "2" * 64 in rebuilt
    assert rebuilt != first
    # A rebuild that changed nothing keeps its ID: no needless reload.
    assert unchanged == rebuilt


@pytest.mark.parametrize(
    ("missing", "env", "message"),
    [
        ("docker", {}, "docker is not installed"),
        ("", {"FAKE_DOCKER_DOWN": "1"}, "its daemon does not answer"),
        # `--provenance=false` is a buildx flag: the legacy builder refuses it.
        ("", {"FAKE_NO_BUILDX": "1"}, "docker buildx is missing"),
        ("kind", {}, "kind is not installed"),
        ("pulumi", {}, "the Pulumi CLI is not installed"),
        ("", {"FAKE_LOGGED_OUT": "1"}, "pulumi login"),
    ],
)
def test_dev_checks_its_tools_before_doing_anything(
    tmp_path: Path, missing: str, env: dict[str, str], message: str
) -> None:
    rc, output, calls = run_dev(tmp_path, missing=missing, FAKE_IMAGE_ID="sha256:" + "1" * 64, **env)
    assert rc != 0
    assert message in output
    assert not [call for call in calls if call.startswith(("docker build ", "pulumi stack select", "pulumi up"))]


def test_dev_down_destroys_the_stack_and_its_image_archive(tmp_path: Path) -> None:
    rc, output, _ = run_dev(tmp_path, FAKE_IMAGE_ID="sha256:" + "1" * 64)
    assert rc == 0, output
    rc, output, calls = run_dev(tmp_path, task="dev:down")
    assert rc == 0, output
    assert "pulumi destroy --stack dev --yes" in [call.split(" id=")[0] for call in calls]
    assert not (tmp_path / "project" / ".tabjob" / "kind").exists()
    rc, output, _ = run_dev(tmp_path / "without-kind", task="dev:down", missing="kind")
    assert rc != 0 and "kind is not installed" in output
