"""A light HTTP/1.1 load generator: N keep-alive connections on asyncio (uvloop when present),
each sending one request at a time. Raw sockets keep the client's own CPU cost low, so on a
2-core machine the server, not the generator, is what gets measured."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

CONCURRENCY = 16


@dataclass
class LoadResult:
    """Requests completed, how long it took, their latencies in seconds and any non-2xx."""

    requests: int
    seconds: float
    latencies_s: list[float] = field(repr=False)
    errors: int
    bodies: list[bytes] = field(default_factory=list, repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_s, 50)) * 1000

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_s, 99)) * 1000


def get(host: str, port: int, path: str) -> Callable[[], bytes]:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n\r\n".encode()
    return lambda: request


def post_json(host: str, port: int, path: str, make_body: Callable[[], bytes]) -> Callable[[], bytes]:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"

    def request() -> bytes:
        body = make_body()
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    return request


async def _connection(
    host: str,
    port: int,
    make_request: Callable[[], bytes],
    stop_at: float,
    budget: list[int],
    out: LoadResult,
    keep: bool,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            request = make_request()
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            out.latencies_s.append(time.perf_counter() - t0)
            out.requests += 1
            if not head.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2")):
                out.errors += 1
            if keep:
                out.bodies.append(body)
    finally:
        writer.close()


async def _run(
    host: str, port: int, make_request: Callable[[], bytes], seconds: float, max_requests: int, keep: bool
) -> LoadResult:
    out = LoadResult(requests=0, seconds=0.0, latencies_s=[], errors=0)
    budget = [max_requests]
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(
        *(_connection(host, port, make_request, stop_at, budget, out, keep) for _ in range(CONCURRENCY))
    )
    out.seconds = time.perf_counter() - t0
    return out


def run_load(
    host: str,
    port: int,
    make_request: Callable[[], bytes],
    *,
    seconds: float,
    max_requests: int = 10**9,
    keep_bodies: bool = False,
) -> LoadResult:
    """Send requests from CONCURRENCY connections for ``seconds`` or ``max_requests`` in all."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_run(host, port, make_request, seconds, max_requests, keep_bodies))
