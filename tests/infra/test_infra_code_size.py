"""infra/ stays readable: no module over 300 lines, no function over 60 lines (issue 14).

Pulumi components are split into named helpers (`_node_pool`-style methods and functions)
rather than one long constructor.
"""

from __future__ import annotations

import ast

import pytest
from infra_harness import ROOT

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
MODULES = sorted((ROOT / "infra").rglob("*.py"))


def test_infra_has_modules_to_check():
    assert len(MODULES) > 10


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_infra_module_and_function_sizes(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name} has {len(text.splitlines())} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"
