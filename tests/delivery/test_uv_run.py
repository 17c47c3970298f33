"""`uv run` is how the README starts every command: it must print nothing of its own work to a
user's terminal. With `[tool.uv] compile-bytecode = true` every `uv run` recompiled the whole
environment and printed "Bytecode compiled N files" (uv's settings reference:
https://docs.astral.sh/uv/reference/settings/#compile-bytecode, "compile Python files to
bytecode after installation")."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_project_does_not_compile_bytecode_on_every_sync():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    assert not settings.get("compile-bytecode", False)


def test_uv_run_prints_nothing_of_its_own():
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH and this test was not started by `uv run`")
    env = {k: v for k, v in os.environ.items() if k != "UV_COMPILE_BYTECODE"}
    ran = subprocess.run(
        [uv, "run", "--frozen", "python", "-c", "print('ok')"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0 and ran.stdout == "ok\n", ran.stderr
    assert "Bytecode compiled" not in ran.stderr
