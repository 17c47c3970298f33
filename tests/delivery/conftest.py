"""Fixtures of the delivery tests: the parsed workflows, composite actions and Taskfile."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import ACTIONS_DIR, REPO_ROOT, WORKFLOWS_DIR, load_yaml


@pytest.fixture(scope="session")
def ci() -> dict[str, Any]:
    return load_yaml(WORKFLOWS_DIR / "ci.yml")


@pytest.fixture(scope="session")
def deploy() -> dict[str, Any]:
    return load_yaml(WORKFLOWS_DIR / "deploy.yml")


@pytest.fixture(scope="session")
def rollback() -> dict[str, Any]:
    return load_yaml(WORKFLOWS_DIR / "rollback.yml")


@pytest.fixture(scope="session")
def deploy_action() -> dict[str, Any]:
    return load_yaml(ACTIONS_DIR / "deploy" / "action.yml")


@pytest.fixture(scope="session")
def smoke_action() -> dict[str, Any]:
    return load_yaml(ACTIONS_DIR / "smoke" / "action.yml")


@pytest.fixture(scope="session")
def deployed_images_action() -> dict[str, Any]:
    return load_yaml(ACTIONS_DIR / "deployed-images" / "action.yml")


@pytest.fixture(scope="session")
def taskfile() -> dict[str, Any]:
    return load_yaml(REPO_ROOT / "Taskfile.yml")
