"""Typed getters over `pulumi.Config` that only read keys declared in `DEFAULTS`."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from infra.config_keys import DEFAULTS


class Reader:
    """Typed getters over `pulumi.Config` that only read declared keys."""

    def __init__(self, config: pulumi.Config) -> None:
        self._config = config

    def _raw(self, key: str) -> str | None:
        if key not in DEFAULTS:
            raise KeyError(f"tabjob:{key} is not declared in infra/config.py DEFAULTS")
        value = self._config.get(key)
        return None if value in (None, "") else value

    def is_set(self, key: str) -> bool:
        """True when the stack sets ``key`` (to something not empty)."""
        return self._raw(key) is not None

    def string(self, key: str) -> str | None:
        value = self._raw(key)
        return value if value is not None else DEFAULTS[key]

    def required(self, key: str, why: str) -> str:
        value = self.string(key)
        if value is None:
            raise ValueError(f"tabjob:{key} is required {why}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self.string(key) or default
        if value not in allowed:
            raise ValueError(f"tabjob:{key} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def integer(self, key: str, minimum: int = 0) -> int:
        raw = self._raw(key)
        try:
            value = int(raw) if raw is not None else int(DEFAULTS[key])
        except ValueError:
            raise ValueError(f"tabjob:{key} must be an integer >= {minimum}; got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"tabjob:{key} must be an integer >= {minimum}; got {value}")
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        raw = self._raw(key)
        if raw is None:
            fallback = DEFAULTS[key] if default is None else default
            return bool(fallback)
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError(f"tabjob:{key} must be true or false; got {raw!r}")

    def strings(self, key: str) -> list[str]:
        raw = self._raw(key)
        if raw is None:
            return list(DEFAULTS[key])
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"tabjob:{key} must be a list of non-empty strings; got {raw!r}")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        """An object-valued key (the engine hands it over as JSON); the default when unset."""
        raw = self._raw(key)
        if raw is None:
            return dict(DEFAULTS[key])
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise ValueError(f"tabjob:{key} must be an object; got {raw!r}")
        return value

    def secret(self, key: str) -> pulumi.Output[str] | None:
        """The value of a key that must be set with `pulumi config set --secret`, or None."""
        if self._raw(key) is None:
            return None
        full_key = f"{self._config.name}:{key}"
        if not pulumi.runtime.is_config_secret(full_key):
            raise ValueError(
                f"{full_key} is stored in plain text; set it with `pulumi config set --secret {full_key} ...`"
            )
        return self._config.require_secret(key)
