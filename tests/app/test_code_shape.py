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


@pytest.mark.parametrize("module", ["app.api.main", "app.client", "app.cli.main", "tabjob.cli.main"])
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
