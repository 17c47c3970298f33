"""Taskfile.yml: valid against Task's schema, every task described, commands wired as documented.

`task --dry` prints the commands a task would run without running them, so these tests check
the real go-task binary's reading of the file (variables, CLI_ARGS passthrough), not just YAML.
"""

from __future__ import annotations

from typing import Any

import pytest

from ._support import run_tool

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
    assert "pytest tests/charts" in commands


def test_images_builds_both_dockerfiles_with_the_given_names() -> None:
    commands = dry_run("images", "IMAGE=reg/tabjob", "GPU_IMAGE=reg/tabjob-gpu", "TAG=t1")
    assert commands == [
        "docker build --file Dockerfile --tag reg/tabjob:t1 .",
        "docker build --file Dockerfile.gpu --tag reg/tabjob-gpu:t1 .",
    ]


def test_dev_builds_images_then_deploys_and_prints_the_api_url(taskfile: dict[str, Any]) -> None:
    # `task --dry dev` stops at the Pulumi precondition where the CLI is absent, so read the file.
    cmds = taskfile["tasks"]["dev"]["cmds"]
    assert cmds[0]["task"] == "images"
    assert cmds[1] == "pulumi up --stack {{.DEV_STACK}} --yes"
    assert cmds[2] == "pulumi stack output apiUrl --stack {{.DEV_STACK}}"
    assert taskfile["vars"]["DEV_STACK"] == "dev"
    assert taskfile["tasks"]["dev:down"]["cmds"] == ["pulumi destroy --stack {{.DEV_STACK}} --yes"]
