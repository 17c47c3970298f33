"""The Dockerfiles: hadolint-clean, pinned bases, locked runtime-only dependencies, non-root.

Docker cannot run on the machines these tests run on, so the images are checked by hadolint and
by reading the Dockerfiles: what each stage installs, what reaches the final stage, and whether
the build context (after .dockerignore) holds what the build needs.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path

import pytest

from ._dockerfile import DOCKERFILES, parse_stages, uv_sync_commands
from ._support import REPO_ROOT, run_tool

NON_ROOT_UID = "10001"
# An exact version: a tag with major.minor.patch, or a digest.
EXACT_TAG = re.compile(r"^[\w./-]+:(\d+\.\d+\.\d+[\w.-]*)(@sha256:[0-9a-f]{64})?$")
DIGEST_ONLY = re.compile(r"^[\w./-]+@sha256:[0-9a-f]{64}$")


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args} is not the exec (JSON array) form"
    return value


@pytest.fixture(params=DOCKERFILES)
def dockerfile(request: pytest.FixtureRequest) -> Path:
    return REPO_ROOT / request.param


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_reports_nothing(name: str) -> None:
    # JSON output lists every finding, so even `style` level ones (which do not fail by
    # default thresholds) would show up here.
    result = run_tool("hadolint", "--format", "json", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout or "[]") == []


def test_every_base_image_is_pinned_to_an_exact_version(dockerfile: Path) -> None:
    stages = parse_stages(dockerfile)
    aliases = {stage.alias for stage in stages if stage.alias}
    for stage in stages:
        if stage.base in aliases:
            continue
        assert EXACT_TAG.match(stage.base) or DIGEST_ONLY.match(stage.base), (
            f"{dockerfile.name}: base {stage.base} is not pinned to an exact version"
        )


def test_builder_and_runtime_share_one_base(dockerfile: Path) -> None:
    # The venv's interpreter symlinks point into the builder's filesystem: the runtime stage
    # must be the same image so the copied venv finds its Python at the same path.
    stages = {stage.alias: stage for stage in parse_stages(dockerfile)}
    assert stages["builder"].base == stages["runtime"].base


def test_dependencies_come_from_the_lock_without_dev_or_infra_groups(dockerfile: Path) -> None:
    commands = uv_sync_commands(parse_stages(dockerfile))
    assert commands, f"{dockerfile.name} never runs uv sync"
    for command in commands:
        assert "--frozen" in command, command
        assert "--no-dev" in command, command
        assert "--no-default-groups" in command, command
        assert "--no-editable" in command, command
        for forbidden in ("--dev", "--all-groups", "--group", "--all-extras"):
            assert forbidden not in command, command


def test_bind_mount_targets_are_absolute(dockerfile: Path) -> None:
    # podman and buildah refuse a relative `target=` (Docker resolves it against WORKDIR).
    mounts = [run for stage in parse_stages(dockerfile) for run in stage.args_of("RUN") if "type=bind" in run]
    assert mounts, f"{dockerfile.name} bind-mounts nothing: pyproject.toml and uv.lock were bound before"
    for run in mounts:
        for spec in re.findall(r"--mount=(type=bind\S*)", run):
            options = dict(part.split("=", 1) for part in spec.split(","))
            assert options["target"].startswith("/"), f"{dockerfile.name}: relative bind target in {spec}"


def test_final_stage_runs_as_the_non_root_uid(dockerfile: Path) -> None:
    final = parse_stages(dockerfile)[-1]
    users = final.args_of("USER")
    assert users, f"{dockerfile.name}: the final stage never sets USER"
    uid = users[-1].split(":")[0]
    assert uid == NON_ROOT_UID, f"final USER is {users[-1]}, expected numeric {NON_ROOT_UID}"
    assert any(f"--uid {NON_ROOT_UID}" in run for run in final.args_of("RUN"))


def test_final_stage_has_only_the_venv_and_no_build_tools(dockerfile: Path) -> None:
    stages = parse_stages(dockerfile)
    final = stages[-1]
    copies = final.args_of("COPY")
    assert any("--from=builder" in c and c.split()[-1] == "/app/.venv" for c in copies), copies
    # Sources never reach the runtime stage: the project is in the venv as a wheel.
    assert all("--from=" in c for c in copies), copies
    for run in final.args_of("RUN"):
        for tool in ("uv ", "pip ", "apt-get", "gcc", "build-essential", "curl", "wget"):
            assert tool not in run, f"final stage runs {tool!r}: {run}"
    assert not any("--from=uv" in c for c in copies)


def test_final_stage_environment(dockerfile: Path) -> None:
    final = parse_stages(dockerfile)[-1]
    env = " ".join(final.args_of("ENV"))
    assert "PYTHONUNBUFFERED=1" in env
    assert "TABJOB_SCRATCH_DIR=/tmp" in env
    assert "PATH=/app/.venv/bin:$PATH" in env


def test_api_image_entrypoint_and_default_command() -> None:
    final = parse_stages(REPO_ROOT / "Dockerfile")[-1]
    assert exec_form(final.args_of("ENTRYPOINT")[-1]) == ["tabjob"]
    assert exec_form(final.args_of("CMD")[-1]) == ["api", "--host", "0.0.0.0", "--port", "8000"]
    assert "8000" in " ".join(final.args_of("EXPOSE")).split()


def test_gpu_image_runs_one_gpu_job_on_a_cuda_runtime_base() -> None:
    stages = parse_stages(REPO_ROOT / "Dockerfile.gpu")
    final = stages[-1]
    assert re.match(r"^nvidia/cuda:\d+\.\d+\.\d+-runtime-ubuntu\d+\.\d+$", final.base)
    assert exec_form(final.args_of("ENTRYPOINT")[-1]) == ["tabjob"]
    assert exec_form(final.args_of("CMD")[-1]) == ["worker", "--lane", "gpu", "--max-jobs", "1"]
    # The interpreter is uv-managed: it must travel to the runtime stage with the venv.
    assert any(c.split()[-1] == "/opt/python" for c in final.args_of("COPY"))


def dockerignore_patterns() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Roughly Docker's matching: a pattern matches the path or one of its parent folders."""
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        bare = pattern.removeprefix("**/")
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern) or fnmatch.fnmatch(Path(candidate).name, bare):
                return True
    return False


def test_dockerignore_keeps_heavy_and_secret_paths_out_of_the_context() -> None:
    patterns = dockerignore_patterns()
    # .tabjob: the local stack's data and settings file (secrets), and `task dev`'s image archive.
    for path in (".venv", ".git", "tests", "bench", "charts", "infra", "environments", ".env", ".tabjob"):
        assert is_ignored(path, patterns), f"{path} would be sent to the docker build"
    assert is_ignored("app/__pycache__/x.pyc", patterns)


def test_build_context_holds_everything_the_build_copies(dockerfile: Path) -> None:
    # What the COPY instructions name and what the wheel build needs (pyproject's readme and the
    # hatch packages) must survive .dockerignore, or `docker build` fails on CI, not here.
    patterns = dockerignore_patterns()
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", "uv.lock", pyproject["project"]["readme"]}
    needed |= set(pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    copied: set[str] = set()
    for stage in parse_stages(dockerfile):
        for copy in stage.args_of("COPY"):
            tokens = [t for t in copy.split() if not t.startswith("--")]
            if "--from=" not in copy:
                copied |= {t.removeprefix("./") for t in tokens[:-1]}
        for run in stage.args_of("RUN"):
            copied |= set(re.findall(r"type=bind,source=([\w./-]+)", run))
    assert needed <= copied, f"{dockerfile.name} does not copy {needed - copied}"
    for path in copied:
        assert (REPO_ROOT / path).exists(), f"{path} is copied but does not exist"
        assert not is_ignored(path, patterns), f"{path} is copied but .dockerignore drops it"
