"""YAML for the tests, through libyaml (PyYAML's C loader) where the wheel has it.

The rendered chart is parsed thousands of times a run (every scenario, every policy); with the
pure-Python loader that parsing was the fast loop's biggest single cost (about 15 s of 110 s in a
profile of `pytest -m "not slow"`). The C loader builds the same objects, safely.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """``yaml.safe_load``, faster."""
    return yaml.load(text, Loader=LOADER)


def load_all(text: str) -> Iterator[Any]:
    """``yaml.safe_load_all``, faster."""
    return yaml.load_all(text, Loader=LOADER)
