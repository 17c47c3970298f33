"""The shape of the code: readable units, and an API process that loads no ML library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Folders whose every module must stay readable (Pulumi components included: named helpers
# rather than one long constructor).
CHECKED = ("app", "bench", "ml", "infra")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def sources() -> list[Path]:
    return [p for folder in CHECKED for p in sorted((ROOT / folder).rglob("*.py"))]


def test_every_checked_folder_has_modules():
    assert all(any((ROOT / folder).rglob("*.py")) for folder in CHECKED)


def test_no_module_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in sources() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_over_60_lines():
    long = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert long == {}


# Loaded by pyarrow itself when present (pyarrow.lib imports cloudpickle if it can), so it is
# judged against what `import pyarrow.parquet` alone loads.
HEAVY = ("sklearn", "pandas", "scipy", "cloudpickle", "threadpoolctl", "ml.model", "ml.io")


def loaded(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", ["app.api.main", "app.cli.main", "tabjob.cli.main"])
@pytest.mark.slow  # starts a Python process per module
def test_the_api_and_the_client_load_no_ml_library(module):
    assert loaded(f"import {module}") <= loaded("import pyarrow.parquet")
    assert not {"sklearn", "pandas", "ml.model"} & loaded(f"import {module}")


def test_the_api_knows_the_models_parameters_without_importing_the_model():
    from app.api.schemas import FitParams
    from ml.model import TUNABLE_PARAMS

    assert set(FitParams.model_fields) == set(TUNABLE_PARAMS)


def test_the_user_commands_import_nothing_of_the_server():
    """The user CLI ships in the client package (pip install "tabjob-client[cli]"): it must run
    where the server package is not installed, so it may speak the API through tabjob.Client only."""
    ours = "m == 'app' or m.startswith(('app.', 'ml.'))"
    code = f"import sys, tabjob.cli.main; print(' '.join(sorted(m for m in sys.modules if {ours})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "client", capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def _app_imports() -> dict[str, set[str]]:
    """Which of app's modules each app module imports, at the top or inside a function."""
    import ast

    modules = {}
    for path in (ROOT / "app").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("app"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("app")}
        graph[name] = {dep for dep in found if dep in modules and dep != name}
    return graph


def test_no_two_modules_of_app_import_each_other():
    """A lazy import inside a function is still a circle (actors <-> stepping was one)."""
    graph = _app_imports()
    assert "app.jobs.stepping" in graph["app.jobs.dispatch"]
    assert [(a, b) for a in graph for b in graph[a] if a in graph[b] and a < b] == []


def test_observability_knows_nothing_of_the_api_layer():
    graph = _app_imports()
    leaks = {name: deps for name, deps in graph.items() if name.startswith("app.observability")}
    assert {name: sorted(d for d in deps if d.startswith("app.api")) for name, deps in leaks.items()} == {
        name: [] for name in leaks
    }


def test_one_name_per_meaning_across_the_server_and_the_client():
    """A name that means two things sends readers to the wrong module (issue 26): the server's
    public names must not repeat the client's exceptions, and `check_target` is the label column's."""
    import ast

    import tabjob

    # The client's errors (its Job, Dataset... are the same things as the server's: one meaning).
    client_names = {
        n for n in tabjob.__all__ if isinstance(getattr(tabjob, n), type) and issubclass(getattr(tabjob, n), Exception)
    }
    server = {}
    for path in [*(ROOT / "app").rglob("*.py"), *(ROOT / "ml").rglob("*.py")]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and not node.name.startswith("_"):
                server.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    assert sorted(client_names & set(server)) == []
    assert server["check_target"] == ["ml/schema.py"]


LAYERS_ABOVE_CORE = (
    "app.inspection", "app.tenancy", "app.webhooks", "app.usecases", "app.jobs", "app.engines",
    "app.job_logs", "app.observability", "app.api", "app.cli", "app.local", "app.state",
)  # fmt: skip


def test_app_is_grouped_in_layer_folders_and_the_core_imports_none_above_it():
    """Issue 26: the folders show the layers. app/'s root keeps only its package file; the core
    (settings, errors, the domain, the store, API keys, services) imports nothing of the layers
    that stand on it, lazily or not."""
    assert sorted(p.name for p in (ROOT / "app").glob("*.py")) == ["__init__.py"]
    graph = _app_imports()
    upward = {
        name: sorted(dep for dep in deps if dep.startswith(LAYERS_ABOVE_CORE))
        for name, deps in graph.items()
        if name.startswith("app.core")
    }
    assert {name: deps for name, deps in upward.items() if deps} == {}
