""" "Did you mean": the names closest to a misspelt one (a column, a target, a parameter)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's default similarity cutoff: 'max_iters' finds 'max_iter', 'label' does not find 'y'.
CUTOFF = 0.6


def closest(name: str, candidates: Iterable[str], *, n: int = 3) -> list[str]:
    """Up to ``n`` of ``candidates`` closest to ``name``, best first; a match ignoring case first."""
    names = list(dict.fromkeys(candidates))
    same = [c for c in names if c.lower() == name.lower() and c != name]
    by_lower: dict[str, str] = {}
    for c in names:
        by_lower.setdefault(c.lower(), c)
    near = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=CUTOFF)]
    return list(dict.fromkeys(c for c in [*same, *near] if c != name))[:n]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` (with a leading space), or an empty string when nothing is close."""
    found = closest(name, candidates)
    if not found:
        return ""
    quoted = [f"'{c}'" for c in found]
    return " Did you mean " + (quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]) + "?"
