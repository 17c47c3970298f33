"""Bounds every request meets before routing, whatever server runs the app.

- With auth off, only loopback ``Host`` names are served and writes from another site's page
  (``Origin``, ``Sec-Fetch-Site``) are refused: the API acts for whoever reaches it.
- With ``TABJOB_METRICS_TOKEN`` set, ``/metrics`` and ``/readyz`` need it (they are for the
  scraper and probes; the chart's Ingress does not route them either).

- With auth off, only requests that arrived on a loopback address are served: the check is on
  each connection's local address (ASGI ``scope["server"]``), so it holds however the app was
  started (``tabjob api``, ``uvicorn --host 0.0.0.0``, gunicorn...), where a check of the
  command line holds only for ``tabjob api``.
- Header count and total size are bounded (431); ``tabjob api`` also makes the server itself
  buffer no more than ``api_max_header_bytes`` of a request head (h11's limit).
- The body is bounded (413) before it is parsed: by ``Content-Length`` when sent, else by
  counting the chunks as the route reads them.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import LEGACY_PATHS
from app.core.net import is_loopback
from app.core.settings import Settings

# Paths for the cluster's scraper and probes, not users: with a scrape token set, they need it.
SCRAPE_PATHS = frozenset({"/metrics", "/readyz"})
# Methods a cross-site page can send without a CORS preflight (the "simple" requests).
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def keyless_refusal(scope: Scope) -> tuple[int, str, str, str | None] | None:
    """With auth off, the API acts for whoever reaches it, so a web page the user opens must not:

    - a ``Host`` other than a loopback name is refused (DNS rebinding: an attacker's name that
      resolves to 127.0.0.1 reaches the API, but with the attacker's name as Host);
    - a write whose ``Origin`` is not a loopback origin, or whose ``Sec-Fetch-Site`` says
      ``cross-site``, is refused (a form or ``text/plain`` fetch needs no preflight).
    """
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1")
    if host and not is_loopback(_hostname(host)):
        return (
            403,
            "auth.off_foreign_host",
            f"This API runs without authentication and answers only loopback host names, not '{host[:100]}'.",
            "Use http://127.0.0.1:<port> or http://localhost:<port>.",
        )
    if scope["method"] not in _UNSAFE_METHODS:
        return None
    origin = headers.get(b"origin", b"").decode("latin-1")
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1")
    foreign_origin = origin not in ("", "null") and not is_loopback(_hostname(urlsplit(origin).netloc))
    if foreign_origin or origin == "null" or site == "cross-site":
        return (
            403,
            "auth.off_cross_site",
            "This API runs without authentication, so it refuses writes sent by another site's page.",
            "Call it from a terminal, a script or the dashboard served by this API.",
        )
    return None


def _hostname(host: str) -> str:
    """``host`` (a Host header or an origin's netloc) without its port or IPv6 brackets."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _BodyTooLarge(BaseException):
    """Raised from ``receive``; not an Exception, so FastAPI's body parsing (which turns any
    Exception into a 400) lets it through to this middleware, which answers 413."""


def arrived_on_loopback(scope: Scope) -> bool:
    """True when the connection's local address is a loopback one (or a Unix socket, which only
    this machine can reach)."""
    server = scope.get("server")
    if not server or server[1] is None:
        return True
    return _loopback_address(str(server[0]))


@lru_cache(maxsize=256)  # a server listens on few addresses; parsing one each request cost more than routing
def _loopback_address(host: str) -> bool:
    """True when the address ``host`` (possibly an IPv4-mapped IPv6 one) is a loopback one."""
    try:
        mapped = ipaddress.ip_address(host)
        if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
            host = str(mapped.ipv4_mapped)
    except ValueError:
        pass
    return is_loopback(host)


class RequestGuards:
    """Pure ASGI middleware; reads the limits from the app's settings on each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings: Settings = scope["app"].state.services.settings
        refusal = _refusal(scope, settings)
        if refusal is not None:
            await _answer(scope, send, *refusal)
            return
        if scope["method"] in ("GET", "HEAD"):  # routes that never read a body: nothing to count
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > settings.api_max_body_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await _answer(scope, send, *_too_large(settings))


def _refusal(scope: Scope, settings: Settings) -> tuple[int, str, str, str | None] | None:
    """Why the request is refused before routing, or None."""
    if not settings.auth_enabled and not arrived_on_loopback(scope):
        return (
            403,
            "auth.off_beyond_loopback",
            f"This API runs without authentication, so it answers only on loopback addresses; this "
            f"request arrived on {scope['server'][0]}.",
            "Operators: set TABJOB_AUTH_ENABLED=true, or listen on 127.0.0.1 only.",
        )
    if not settings.auth_enabled:
        refused = keyless_refusal(scope)
        if refused is not None:
            return refused
    if scope.get("path") in SCRAPE_PATHS and settings.metrics_token is not None:
        expected = b"Bearer " + settings.metrics_token.get_secret_value().encode()
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not hmac.compare_digest(given, expected):
            return (
                401,
                "auth.scrape_token",
                "This path answers only the metrics scraper.",
                "Send Authorization: Bearer <TABJOB_METRICS_TOKEN>.",
            )
    headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
    if len(headers) > settings.api_max_headers or sum(len(k) + len(v) for k, v in headers) > (
        settings.api_max_header_bytes
    ):
        return (
            431,
            "request.headers_too_large",
            f"The request has too many or too large headers (at most {settings.api_max_headers} headers "
            f"and {settings.api_max_header_bytes:,} bytes of them).",
            "Send fewer or shorter headers.",
        )
    for name, value in headers:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                return 400, "request.invalid", "The Content-Length header is not a number.", None
            if declared > settings.api_max_body_bytes:
                return _too_large(settings)
    return None


def _too_large(settings: Settings) -> tuple[int, str, str, str | None]:
    return (
        413,
        "request.body_too_large",
        f"The request body is larger than {settings.api_max_body_bytes:,} bytes.",
        "Requests carry only small JSON documents; upload data to the dataset's upload URL instead.",
    )


async def _answer(scope: Scope, send: Send, status: int, code: str, message: str, hint: str | None) -> None:
    document: dict[str, Any] = {"error": {"code": code, "message": message, "hint": hint, "retryable": False}}
    if scope.get("path") in LEGACY_PATHS:
        document["detail"] = message  # as the common envelope does for the seed's routes
    body = json.dumps(document).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
