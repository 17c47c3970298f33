"""charts/tabjob/README.md documents every value values.yaml documents (a `# --` comment)."""

from __future__ import annotations

import re

from chart_render import CHART_DIR


def _documented_keys() -> list[str]:
    keys, path, pending = [], [], False
    for line in (CHART_DIR / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = True
            continue
        match = re.match(r"^(\s*)([A-Za-z0-9_.]+):", line)
        if stripped.startswith("#") or not match:
            continue
        path = [*path[: len(match[1]) // 2], match[2]]
        if pending:
            keys.append(".".join(path))
        pending = False
    return keys


def test_the_chart_readme_lists_every_documented_value():
    readme = (CHART_DIR / "README.md").read_text()
    keys = _documented_keys()
    assert len(keys) > 50
    missing = [key for key in keys if f"| `{key}` |" not in readme]
    assert not missing, f"charts/tabjob/README.md lacks {missing}"
