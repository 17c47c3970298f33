"""The OpenAPI document says what the running API asks for: bearer auth when keys are checked,
nothing when auth is off (a local stack), so generated clients and /docs do not ask for a key
that is never read."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def match_auth_mode(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so the document drops its security requirements when auth is off."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        services = getattr(app.state, "services", None)
        if services is None or services.settings.auth_enabled:
            return document
        document.get("components", {}).pop("securitySchemes", None)
        for path in document.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict):
                    operation.pop("security", None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
