"""The Taskfile's commands compile the environment's bytecode first, so that where
PYTHONDONTWRITEBYTECODE is set (as on the machines this project is built on) the stack's
processes and the test session do not compile every module they import, each time they start
(``app/local/bytecode.py`` has the measurements)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.local.bytecode import ensure_compiled

ROOT = Path(__file__).resolve().parents[2]


def _cached(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    # What the variable sets: the interpreter writes no bytecode as it imports.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    site, project = tmp_path / "site-packages", tmp_path / "project"
    (site / "dep").mkdir(parents=True)
    (site / "dep" / "__init__.py").write_text("VALUE = 1\n")
    (site / "broken.py").write_text("print 'written for Python 2'\n")  # some packages ship such files
    project.mkdir()
    (project / "mod.py").write_text("VALUE = 1\n")
    lock = tmp_path / "uv.lock"
    lock.write_text("version = 1\n")
    return {"site": site, "project": project, "lock": lock, "stamp": tmp_path / "stamp"}


def _ensure(env: dict[str, Path]) -> bool:
    return ensure_compiled(site_packages=env["site"], stamp=env["stamp"], lock=env["lock"], project=(env["project"],))


def test_installed_packages_are_compiled_once_per_lock(environment):
    dep = _cached(environment["site"] / "dep" / "__init__.py")
    assert _ensure(environment) and dep.exists()
    # A second run finds the stamp: the 16,000 files of the real environment are not walked again.
    dep.unlink()
    assert not _ensure(environment) and not dep.exists()
    environment["lock"].write_text("version = 1\n# a dependency added\n")
    assert _ensure(environment) and dep.exists()


def test_the_projects_packages_are_compiled_every_time_and_stale_bytecode_replaced(environment):
    source = environment["project"] / "mod.py"
    _ensure(environment)
    first = _cached(source).read_bytes()
    source.write_text("VALUE = 2  # an edit\n")
    # compileall compares whole seconds of the source's mtime: an edit is a later second.
    os.utime(source, (source.stat().st_atime, source.stat().st_mtime + 2))
    _ensure(environment)
    assert _cached(source).read_bytes() != first


def test_the_command_prints_nothing_to_a_users_terminal():
    ran = subprocess.run(
        [sys.executable, "-m", "app.local.bytecode"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "", "")


def test_every_task_that_runs_the_projects_python_compiles_first():
    tasks = yaml.safe_load((ROOT / "Taskfile.yml").read_text())["tasks"]
    for name in ("demo", "stack", "test", "test:fast", "lint", "bench"):
        assert tasks[name].get("deps") == ["bytecode"], name
    assert tasks["bytecode"]["cmds"] == ["python -m app.local.bytecode"]
