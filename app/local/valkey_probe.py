"""The two questions the embedded stack's supervisor asks Valkey (does it answer; which workers
registered), with hiredis alone: it packs the commands and parses the replies.

redis-py would do the same, but the supervisor is a process that idles for as long as the stack
runs, and importing redis-py costs it about 22 MiB (its asyncio client, cluster support and
command tables load with it); hiredis costs under 1 MiB. Everything that works with the
service's data uses redis-py (``app.state``).
"""

from __future__ import annotations

import socket

import hiredis


class ValkeyProbeError(ConnectionError):
    """Valkey did not answer, or answered a command with an error."""


def ask(host: str, port: int, password: str | None, *commands: tuple[str, ...], timeout_s: float = 1.0) -> list:
    """Send ``commands`` on one new connection (after AUTH with ``password``) and return their
    replies in order (strings decoded as UTF-8)."""
    sent = [("AUTH", password), *commands] if password else list(commands)
    reader = hiredis.Reader(encoding="utf-8")
    replies: list = []
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"".join(hiredis.pack_command(command) for command in sent))
            while len(replies) < len(sent):
                data = sock.recv(65536)
                if not data:
                    raise ValkeyProbeError(f"Valkey at {host}:{port} closed the connection")
                reader.feed(data)
                while (reply := reader.gets()) is not False:
                    replies.append(reply)
    except OSError as exc:
        if isinstance(exc, ValkeyProbeError):
            raise
        raise ValkeyProbeError(f"Valkey at {host}:{port} did not answer: {exc}") from exc
    errors = [str(reply) for reply in replies if isinstance(reply, hiredis.ReplyError)]
    if errors:
        raise ValkeyProbeError(f"Valkey at {host}:{port} refused a command: {errors[0]}")
    return replies[1:] if password else replies


def ping(host: str, port: int, password: str | None, timeout_s: float = 1.0) -> bool:
    """True when Valkey answers PING (with ``password``)."""
    return ask(host, port, password, ("PING",), timeout_s=timeout_s) == ["PONG"]


def members(host: str, port: int, password: str | None, keys: list[str], timeout_s: float = 1.0) -> list[list[str]]:
    """The members of each sorted set in ``keys`` (ZRANGE 0 -1), in one round trip."""
    return ask(host, port, password, *[("ZRANGE", key, "0", "-1") for key in keys], timeout_s=timeout_s)
