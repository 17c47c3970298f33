"""Names, versions and aliases in ids: ``sales@latest``, ``sales@3``, ``churn@champion``.

A dataset or model id without ``@`` is an id (``ds_…``, ``job_…``); with one, it is a reference
to a named thing resolved once, at submission (``app.usecases.registry``). Versions are integers
from 1 that only grow; ``latest`` is the newest (for datasets: the newest *ready* version); any
other word is an alias (models only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.errors import UserError

# Names and aliases end up in keys and URLs: letters, digits and a few separators, never '@'.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
LATEST = "latest"


@dataclass(frozen=True)
class Reference:
    """``name@selector``: a version number, ``latest``, or an alias."""

    name: str
    selector: str

    @property
    def version(self) -> int | None:
        return int(self.selector) if self.selector.isdigit() else None

    @property
    def latest(self) -> bool:
        return self.selector == LATEST

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


def check_name(name: str, what: str = "name") -> str:
    """``name`` when it can be referenced (``name@…``); a 422 naming the rule otherwise."""
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"The {what} '{name}' cannot be used: names are 1 to 200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
            code="name.invalid",
            hint="Choose a name such as 'sales' or 'churn-eu'.",
            status=422,
        )
    return name


def check_alias(alias: str) -> str:
    """``alias`` when it is a valid alias word (not a number, not ``latest``); a 422 otherwise."""
    if alias == LATEST or not ALIAS_PATTERN.match(alias):
        raise UserError(
            f"'{alias}' cannot be an alias: aliases are lowercase words (letters, digits, '_', '-', starting "
            "with a letter), and 'latest' is reserved.",
            code="registry.invalid_alias",
            hint="Use a word such as 'champion' or 'staging'.",
            status=422,
        )
    return alias


def parse(text: str, *, aliases: bool) -> Reference | None:
    """The reference ``text`` spells, or None when it is a plain id (no ``@``).

    ``aliases``: whether a word other than ``latest`` is allowed (models: yes; datasets: no)."""
    if "@" not in text:
        return None
    name, _, selector = text.rpartition("@")
    check_name(name)
    if selector.isdigit() and int(selector) >= 1:
        return Reference(name, str(int(selector)))
    if selector == LATEST:
        return Reference(name, LATEST)
    if aliases and ALIAS_PATTERN.match(selector):
        return Reference(name, selector)
    allowed = "a version number, 'latest' or an alias" if aliases else "a version number or 'latest'"
    raise UserError(
        f"'{text}' is not a valid reference: after '@' comes {allowed}.",
        code="reference.invalid",
        hint="Write name@latest or name@3" + (" or name@champion." if aliases else "."),
        status=422,
    )
