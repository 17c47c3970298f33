"""Where a webhook may go: public addresses (also the IPv4 address inside mapped, 6to4, Teredo
and NAT64 ones), ports 80 and 443, and the connection made to the address that was checked."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.core.errors import UserError

# Webhooks reach web servers: other ports would let the service probe anything that listens.
ALLOWED_PORTS = frozenset({80, 443})


def _refuse(message: str, code: str = "webhook.forbidden_target") -> UserError:
    return UserError(
        message,
        code=code,
        hint="Give a public http(s) URL that your receiver answers on (private and loopback addresses are refused).",
        status=422,
    )


def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """``url`` when it may be notified; a UserError (422) naming why not otherwise (see ``resolve_target``)."""
    resolve_target(url, allow_private=allow_private)
    return url


def embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``,
    6to4 ``2002::/16``, Teredo, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``), or None: a
    gateway on the way may turn it into a connection to that IPv4 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    packed = address.packed
    if address in _NAT64 or address in _NAT64_LOCAL or packed[:12] == bytes(12):
        return ipaddress.IPv4Address(packed[12:])  # the RFC 6052 /96 form; ::a.b.c.d (deprecated) too
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None and not _public(inner):
        return False
    if isinstance(address, ipaddress.IPv6Address) and (address in _NAT64 or address in _NAT64_LOCAL):
        return True  # judged by the IPv4 address it carries (above); the prefix itself is "reserved"
    return address.is_global and not address.is_multicast


def resolve_target(url: str, *, allow_private: bool) -> list[str]:
    """The addresses ``url``'s host resolves to, each checked; a UserError (422) naming why not.

    Every address must be public (global), also the IPv4 address inside a mapped, 6to4, Teredo
    or NAT64 one, and the port 80 or 443, unless ``allow_private`` (tests, a laptop). The caller
    connects to one of these addresses (never resolving again), so a name that answers a public
    address for the check and a private one for the connection (DNS rebinding) cannot get in.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(f"The webhook URL '{url}' is not an http(s) URL.", "webhook.invalid_url")
    if parts.username or parts.password:
        raise _refuse("The webhook URL must not carry credentials; use the signing secret.", "webhook.invalid_url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise _refuse(f"The webhook URL '{url}' has an invalid port.", "webhook.invalid_url") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _refuse(f"The webhook host '{parts.hostname}' does not resolve ({exc}).", "webhook.invalid_url") from exc
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not allow_private:
        for text in addresses:
            if not _public(ipaddress.ip_address(text)):
                raise _refuse(f"The webhook host '{parts.hostname}' resolves to {text}, which is not a public address.")
        if port not in ALLOWED_PORTS:
            raise _refuse(f"The webhook URL's port {port} is not allowed; use 443 or 80.", "webhook.forbidden_port")
    return addresses


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL to connect to ``address`` (already checked) instead of resolving ``url``'s host
    again, with the ``Host`` header and TLS server name (SNI, and the name the certificate must
    match) of the original host."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    extensions: dict[str, Any] = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"host": parts.netloc}, extensions
