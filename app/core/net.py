"""Which host names and addresses are this machine's."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


# Cached: with auth off, every request's Host header and local address are checked, and parsing
# them as addresses cost more than the rest of the request guards; a client sends few distinct ones.
@lru_cache(maxsize=256)
def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
