"""The HTTP/1.1 protocol ``tabjob api`` serves with: uvicorn's httptools protocol (llhttp, a C
parser) with a bound on each request head.

h11 bounds the head it buffers (``h11_max_incomplete_event_size``) but parses in Python: on this
project's 2-core VM a constant FastAPI app served about 1,800-2,000 requests per second with
httptools and 800-1,200 with h11 (``bench.ceiling`` under each, same load). httptools has no
head limit of its own: uvicorn keeps every header it is given, and a client can send megabytes
of them. This protocol counts the bytes received while a request head is incomplete and answers
431 and closes the connection past ``max_head_bytes``, so what the server buffers for a head is
at most that plus one read. The app's own check (``app.api.middleware``) still bounds the count
and size of the headers that do arrive.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_MESSAGE = b"Request head too large."


class BoundedHeadHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` refusing request heads over ``max_head_bytes`` (431, then close)."""

    max_head_bytes = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a new connection's first bytes are a head
        self._head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        # Counted after parsing: a read that completes the head (and carries some body) is not.
        self._head_bytes += len(data)
        if self._head_bytes > self.max_head_bytes:
            self._refuse_head()

    def _refuse_head(self) -> None:
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + _MESSAGE
        )
        self.transport.close()


def bounded_protocol(max_head_bytes: int) -> type[BoundedHeadHttpToolsProtocol]:
    """The protocol class for ``uvicorn.run(http=...)`` with this head limit."""
    return type("TabjobHttpProtocol", (BoundedHeadHttpToolsProtocol,), {"max_head_bytes": max_head_bytes})
