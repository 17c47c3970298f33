"""One figure per row: measured, baseline, ratio, target, met; printed as a rich table and
written as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table


@dataclass
class Figure:
    """One measured figure.

    measured, baseline: in ``unit`` (baseline None when there is nothing to compare with).
    target: the goal as text, for people; met: whether it was reached (None: no target).
    details: raw samples and diagnostics, kept in the JSON only.
    """

    section: str
    name: str
    unit: str
    measured: float
    baseline: float | None = None
    target: str = "-"
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or math.isnan(self.measured):
            return None
        return self.measured / self.baseline


def _number(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "s":
        return f"{value:,.2f} s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value:,.1f} {unit}"


def render(figures: list[Figure], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("section", "figure", "measured", "baseline", "ratio", "target", "met?"):
        table.add_column(column, justify="right" if column in ("measured", "baseline", "ratio") else "left")
    for f in figures:
        met = "-" if f.met is None else ("[green]yes[/]" if f.met else "[bold red]no[/]")
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
        table.add_row(f.section, f.name, _number(f.measured, f.unit), _number(f.baseline, f.unit), ratio, f.target, met)
    return table


def _finite(value: Any) -> Any:
    """NaN and infinities as null, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path, figures: list[Figure], meta: dict[str, Any]) -> None:
    rows = [{**asdict(f), "ratio": f.ratio} for f in figures]
    path.parent.mkdir(parents=True, exist_ok=True)
    document = _finite({**meta, "figures": rows})
    path.write_text(json.dumps(document, indent=2, default=str, allow_nan=False) + "\n")
