"""``tabjob usage``: your quotas, what you use of each, and whether the gpu lane is yours."""

from __future__ import annotations

import typer

from tabjob.cli.common import JSON, KEY, URL, connected
from tabjob.cli.output import console, emit


def _amount(name: str, value: int) -> str:
    if name != "stored_bytes":
        return f"{value:,}"
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def usage(url: URL = None, api_key: KEY = None, as_json: JSON = False) -> None:
    """Show your quotas (datasets, stored bytes, jobs per minute, uploads waiting) and your use of each."""
    from rich.table import Table

    with connected(url, api_key, as_json) as client:
        found = client.usage()
    if as_json:
        emit(found, True)
        return
    table = Table("quota", "used", "limit", title=f"Usage of tenant {found['tenant']}")
    for quota in found["quotas"]:
        table.add_row(quota["name"], _amount(quota["name"], quota["used"]), _amount(quota["name"], quota["limit"]))
    console.print(table)
    console.print(f"gpu lane: {'granted' if found['gpu_lane'] else 'not granted (ask an operator)'}")


def register(app: typer.Typer) -> None:
    app.command()(usage)
