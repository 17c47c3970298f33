"""The shape of the ids tabjob hands out, checked before any id reaches the broker.

Ids become parts of Valkey keys (``tabjob:job:<id>``); an id the platform never made, such as
another tenant's job id with ``:events`` appended, must not reach a key at all. A malformed id
gets exactly the answer an unknown one gets (404, same code and message), so the format check
tells a caller nothing the 404 did not.
"""

from __future__ import annotations

import re

from app.core.errors import NotFound

# As app.core.domain.new_id makes them.
ID_HEX_CHARS = 20
_FORMATS: dict[str, re.Pattern[str]] = {
    prefix: re.compile(rf"^{prefix}_[0-9a-f]{{{ID_HEX_CHARS}}}$") for prefix in ("job", "ds")
}
_NAMES = {"job": "job", "ds": "dataset"}


def is_valid(prefix: str, value: str) -> bool:
    """True when ``value`` has the shape of an id made by ``app.core.domain.new_id(prefix)``."""
    return bool(_FORMATS[prefix].match(value))


def require(prefix: str, value: str) -> str:
    """``value`` if it is shaped like a ``prefix`` id, else the NotFound an unknown id gets."""
    if not is_valid(prefix, value):
        name = _NAMES[prefix]
        raise NotFound(f"No {name} with id '{_printable(value)}'.", code=f"{name}.not_found")
    return value


def _printable(value: str) -> str:
    # The id is echoed in the message: keep it short and free of control characters.
    shown = "".join(c if c.isprintable() else "?" for c in value[:64])
    return shown + ("…" if len(value) > 64 else "")
