"""One read path for both kinds of client.

A read is described once, as a ``Read``: the call to make on a connection and how to decode the
reply. ``Conn.run`` makes it on the blocking client (worker, sync routes), ``Conn.arun`` on the
asyncio client (the routes clients poll, which must not hop to a thread). The two executors are
three lines each and know nothing of any record, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis
import redis.asyncio

from app.core.errors import InfraError
from app.state.scripts import SCRIPTS

T = TypeVar("T")


@dataclass(frozen=True)
class Side:
    """A client and the Lua scripts registered on it (either both blocking, or both asyncio)."""

    client: Any
    scripts: dict[str, Any]

    @classmethod
    def of(cls, client: Any) -> Side:
        return cls(client, {name: client.register_script(source) for name, source in SCRIPTS.items()})


@dataclass(frozen=True)
class Read(Generic[T]):
    """One read: ``call(side)`` sends it (its reply, or an awaitable of it on the asyncio side);
    ``decode(reply)`` turns the reply into the value."""

    call: Callable[[Side], Any]
    decode: Callable[[Any], T]


class Conn:
    """The blocking client (always) and the asyncio client (API processes only).

    Parameters:
      client: a ``redis.Redis`` with ``decode_responses=True``.
      async_client: a ``redis.asyncio.Redis`` on the same server, or None.
    """

    def __init__(self, client: redis.Redis, async_client: redis.asyncio.Redis | None = None) -> None:
        self.r = client
        self.sync = Side.of(client)
        self.asyncio = Side.of(async_client) if async_client is not None else None

    def script(self, name: str) -> Any:
        """A registered script on the blocking client."""
        return self.sync.scripts[name]

    def run(self, read: Read[T]) -> T:
        return read.decode(read.call(self.sync))

    async def arun(self, read: Read[T]) -> T:
        assert self.asyncio is not None, "no asyncio client: only the API process has one"
        return read.decode(await read.call(self.asyncio))

    def ping(self) -> None:
        try:
            self.r.ping()
        except redis.RedisError as exc:
            raise InfraError(f"The broker is unavailable ({type(exc).__name__}).") from exc
