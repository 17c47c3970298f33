"""The registry of model families. Adding one is a module defining ``FAMILY`` and one line below."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml.families import hgb, xgb
from ml.families.base import Family, Trained, TrainingSet

FAMILIES: dict[str, Family] = {
    hgb.FAMILY.name: hgb.FAMILY,
    xgb.FAMILY.name: xgb.FAMILY,
}
DEFAULT_FAMILY = hgb.FAMILY.name

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "Family", "Trained", "TrainingSet", "chosen_params", "family"]


def family(name: str) -> Family:
    """The family called ``name``. Raises ValueError naming the known families."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}: use one of {', '.join(FAMILIES)}") from None


def chosen_params(chosen: Family, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The family's defaults overridden by ``params``. Raises ValueError for a parameter the family lacks."""
    unknown = sorted(set(params or {}) - set(chosen.tunable_params))
    if unknown:
        raise ValueError(
            f"parameter(s) {', '.join(unknown)} do not apply to model family {chosen.name!r}; "
            f"it takes {', '.join(chosen.tunable_params)}"
        )
    return {**chosen.default_params, **dict(params or {})}
