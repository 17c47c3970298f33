"""The settings table of docs/configuration.md, generated from the ``Settings`` field descriptions.

The table cannot drift from the code: every row comes from ``app.core.settings.Settings`` (name, type,
default, constraints, description), and the test suite fails when the committed file differs
from what this module renders. Regenerate with ``uv run python -m app.core.settings_docs``;
``--check`` only compares (exit status 1 and the command to run when the file is stale).
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from app.core.settings import Settings

REGENERATE_COMMAND = "uv run python -m app.core.settings_docs"
BEGIN_MARKER = f"<!-- BEGIN GENERATED SETTINGS TABLE: edit app/core/settings.py, then run `{REGENERATE_COMMAND}` -->"
END_MARKER = "<!-- END GENERATED SETTINGS TABLE -->"
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

# annotated_types constraint attribute → the symbol shown in the table.
CONSTRAINT_SYMBOLS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "multiple_of": "multiple of"}
BYTE_UNITS = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
DURATION_UNITS = (("d", 86400), ("h", 3600), ("min", 60))


def env_var(name: str) -> str:
    """The environment variable that sets field ``name`` (``TABJOB_`` + the name in capitals)."""
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def type_name(annotation: Any) -> str:
    """A reader's name for a field type: ``Literal`` values listed, ``X | None`` as optional."""
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        present = [arg for arg in get_args(annotation) if arg is not type(None)]
        return " or ".join(type_name(arg) for arg in present) + " (optional)"
    if annotation is SecretStr:
        return "secret string"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(annotation, str(annotation))


def _with_unit(name: str, value: int | float) -> str:
    """A readable size or duration beside a raw number, for fields named ``*_bytes`` or ``*_s``."""
    units = BYTE_UNITS if name.endswith("_bytes") else DURATION_UNITS if name.endswith("_s") else ()
    for unit, size in units:
        if value >= size and value % size == 0:
            return f" ({value // size:g} {unit})"
    return ""


def default_text(name: str, field: FieldInfo) -> str:
    """The default as it would be written in the environment; **required** when there is none."""
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        number = int(value) if float(value).is_integer() else value
        return f"`{number}`{_with_unit(name, number)}"
    return f"`{value}`"


def constraints_text(field: FieldInfo) -> str:
    """Bounds the value must meet (``> 0``, ``≤ 604800``), from the field's metadata."""
    bounds = [
        f"{symbol} {getattr(item, attr)}"
        for item in field.metadata
        for attr, symbol in CONSTRAINT_SYMBOLS.items()
        if getattr(item, attr, None) is not None
    ]
    return ", ".join(bounds)


def missing_descriptions(model: type[BaseModel] = Settings) -> list[str]:
    """Names of ``model``'s fields that have no description (each one must have one)."""
    return [name for name, field in model.model_fields.items() if not (field.description or "").strip()]


def render_table(model: type[BaseModel] = Settings) -> str:
    """The Markdown table of every field of ``model``, in the order it declares them."""
    rows = [
        "| Variable | Type | Default | Constraints | Description |",
        "|---|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        cells = (f"`{env_var(name)}`", type_name(field.annotation), default_text(name, field))
        rows.append(f"| {' | '.join(cells)} | {constraints_text(field)} | {description} |")
    return "\n".join(rows) + "\n"


def render_document(current: str) -> str:
    """``current`` (the text of docs/configuration.md) with the table between the markers replaced."""
    begin, end = current.find(BEGIN_MARKER), current.find(END_MARKER)
    if begin < 0 or end < begin:
        raise ValueError(f"{DOC_PATH.name} must contain the lines {BEGIN_MARKER!r} and then {END_MARKER!r}")
    head = current[: begin + len(BEGIN_MARKER)]
    return f"{head}\n{render_table()}{current[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite docs/configuration.md's table, or with ``--check`` only report whether it is stale."""
    parser = argparse.ArgumentParser(prog="python -m app.core.settings_docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date; write nothing")
    parser.add_argument("--path", type=Path, default=DOC_PATH, help="the document to update (default: %(default)s)")
    args = parser.parse_args(argv)
    if missing := missing_descriptions():
        raise SystemExit(f"settings without a description in app/core/settings.py: {', '.join(missing)}")
    current = args.path.read_text()
    wanted = render_document(current)
    if wanted == current:
        return 0
    if args.check:
        raise SystemExit(f"{args.path} is out of date with app/core/settings.py; run: {REGENERATE_COMMAND}")
    args.path.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
