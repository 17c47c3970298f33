"""Helpers for the delivery tests: repository paths, YAML loading, tools from the venv."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import safe_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
ACTIONS_DIR = REPO_ROOT / ".github" / "actions"
# The venv that runs pytest also holds hadolint, task and check-jsonschema (dev group wheels).
VENV_BIN = Path(sys.executable).parent


def venv_tool(name: str) -> str:
    """Path of a console tool installed in the running virtual environment."""
    tool = VENV_BIN / name
    if not tool.exists():
        pytest.fail(f"{name} is not in {VENV_BIN}; run `uv sync` (it comes with the dev group)")
    return str(tool)


def run_tool(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """Run a venv tool (first argument is its name) and capture its output as text."""
    # go-task colours its output whenever CI is set (as it is on CI runners), and the tests
    # parse that output: NO_COLOR keeps it plain everywhere.
    return subprocess.run(
        [venv_tool(args[0]), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def load_yaml(path: Path) -> dict[str, Any]:
    """Load one YAML document; workflows' `on:` key (YAML 1.1 reads it as True) becomes "on"."""
    data = safe_yaml.load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow_paths() -> list[Path]:
    return sorted(WORKFLOWS_DIR.glob("*.yml"))


def action_paths() -> list[Path]:
    return sorted(ACTIONS_DIR.glob("*/action.yml"))


def steps_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def iter_uses(document: dict[str, Any]) -> Iterator[str]:
    """Every `uses:` of a workflow (job-level and step-level) or of a composite action."""
    for job in document.get("jobs", {}).values():
        if "uses" in job:
            yield job["uses"]
        for step in steps_of(job):
            if "uses" in step:
                yield step["uses"]
    for step in document.get("runs", {}).get("steps", []):
        if "uses" in step:
            yield step["uses"]


def iter_run_scripts(document: dict[str, Any]) -> Iterator[str]:
    """Every `run:` script of a workflow's jobs or of a composite action."""
    steps = [step for job in document.get("jobs", {}).values() for step in steps_of(job)]
    steps += document.get("runs", {}).get("steps", [])
    for step in steps:
        if "run" in step:
            yield step["run"]


def fake_tools(folder: Path, tools: dict[str, str]) -> Path:
    """Write bash scripts standing in for CLIs these machines lack (docker, kind, pulumi...).

    Each script gets `$*` and the environment of its call; it can log them to $FAKE_LOG, so a
    test reads back exactly what a workflow step or task ran, in order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in tools.items():
        script = folder / name
        script.write_text("#!/bin/bash\nset -u\n" + body)
        script.chmod(0o755)
    return folder
