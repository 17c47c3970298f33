"""What the metrics cost the route clients poll: ``GET /v1/jobs/{id}`` (a queued job, so the
"why it waits" view runs too) with and without the request-metrics middleware, each served by
``tabjob api``'s uvicorn settings in its own process on a real Valkey, 16 keep-alive clients,
rounds alternating between the two; plus the time of one ``/metrics`` scrape, which reads every
lane's queue from Valkey.

    python -m bench.metrics_overhead [--seconds 3] [--rounds 3]

Only Valkey runs (the status route never touches the object store); auth is off (loopback), so
the numbers are the route and the middleware, not the key lookup.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median

import httpx

from app.local.servers import Valkey, free_port
from app.local.spawn import answers, spawn, stop
from bench.load import get, run_load

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
WARMUP_S = 0.5
SCRAPES = 50
MICRO_REQUESTS = 20_000


def _env(valkey: Valkey) -> dict[str, str]:
    return {
        **os.environ,
        "TABJOB_ENVIRONMENT": "local",
        "TABJOB_AUTH_ENABLED": "false",
        "TABJOB_REDIS_URL": valkey.url,
        "TABJOB_REDIS_PASSWORD": valkey.password,
        # Never contacted by the status route; a store is only configured.
        "TABJOB_S3_ENDPOINT": "http://127.0.0.1:9",
        "TABJOB_S3_ACCESS_KEY": "bench",
        "TABJOB_S3_SECRET_KEY": "bench-secret",
        "TABJOB_LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def api_server(env: dict[str, str], *, observe: bool) -> Iterator[int]:
    """The API in its own process (uvicorn as ``tabjob api`` runs it), with or without metrics."""
    port = free_port()
    args = [sys.executable, "-m", "bench.metrics_overhead", "--serve", str(port)]
    process = spawn(
        [*args, *([] if observe else ["--no-metrics"])], env=env, cwd=ROOT, log=subprocess.DEVNULL,
        ready=answers(f"http://{HOST}:{port}"), what="the API to start",
    )  # fmt: skip
    try:
        yield port
    finally:
        stop(process, 10)


def serve(port: int, observe: bool) -> None:
    import uvicorn

    from app.api.main import create_app
    from app.core.logging_setup import setup_logging
    from app.core.settings import get_settings

    settings = get_settings()
    setup_logging(settings.log_level)
    uvicorn.run(create_app(settings, observe=observe), host=HOST, port=port, log_level="warning", access_log=False)


def queued_job(env: dict[str, str]) -> str:
    """A job record queued on the small lane (no worker runs, so it stays queued)."""
    import redis

    from app.core.domain import Job, JobStatus, new_id
    from app.state import State

    client = redis.Redis.from_url(env["TABJOB_REDIS_URL"], password=env["TABJOB_REDIS_PASSWORD"], decode_responses=True)
    now = time.time()
    job = Job(id=new_id("job"), tenant="local", kind="fit", lane="small", status=JobStatus.QUEUED,
              dataset_id="ds_bench", created_at=now, queued_at=now)  # fmt: skip
    return State(client=client, retention_s=3600).jobs.create(job).id


def measure(seconds: float, rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="tabjob-metrics-bench-") as tmp:
        valkey = Valkey(Path(tmp) / "valkey", secrets.token_urlsafe(16))
        valkey.start(Path(tmp) / "valkey.log")
        try:
            env = _env(valkey)
            path = f"/v1/jobs/{queued_job(env)}"
            with api_server(env, observe=True) as on, api_server(env, observe=False) as off:
                for port in (on, off):
                    run_load(HOST, port, get(HOST, port, path), seconds=WARMUP_S)
                for _ in range(rounds):
                    for name, port in (("with metrics", on), ("without metrics", off)):
                        r = run_load(HOST, port, get(HOST, port, path), seconds=seconds)
                        assert r.errors == 0, f"{r.errors} failed requests"
                        results.setdefault(f"{name} rps", []).append(r.rps)
                        results.setdefault(f"{name} p50 ms", []).append(r.p50_ms)
                        results.setdefault(f"{name} p99 ms", []).append(r.p99_ms)
                with httpx.Client(base_url=f"http://{HOST}:{on}") as client:
                    for _ in range(SCRAPES):
                        t0 = time.perf_counter()
                        assert client.get("/metrics").status_code == 200
                        results.setdefault("scrape ms", []).append((time.perf_counter() - t0) * 1000)
        finally:
            valkey.stop()
    return results


def middleware_cost_us(requests: int = MICRO_REQUESTS) -> tuple[float, float]:
    """CPU time per request (µs) of an empty ASGI app, without and with the metrics middleware
    around it, in this process: the middleware's own cost, free of the network and the route."""
    import asyncio

    from app.observability.http import RequestMetrics

    async def empty_app(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    async def discard(message: dict) -> None:
        return None

    async def run(app: object) -> float:
        scope = {"type": "http", "method": "GET", "path": "/v1/jobs/job_0123456789abcdef0123"}
        t0 = time.process_time()
        for _ in range(requests):
            await app(dict(scope), None, discard)  # type: ignore[operator]
        return (time.process_time() - t0) / requests * 1e6

    bare = asyncio.run(run(empty_app))
    wrapped = asyncio.run(run(RequestMetrics(empty_app)))
    return bare, wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="Length of each measured round.")
    parser.add_argument("--rounds", type=int, default=6, help="Rounds per variant (alternating).")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-metrics", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, observe=not args.no_metrics)
        return
    results = measure(args.seconds, args.rounds)
    print(f"GET /v1/jobs/{{id}} (queued job), 16 keep-alive clients, {args.rounds} x {args.seconds:g} s per variant")
    for name, values in results.items():
        spread = (
            f"all {', '.join(f'{v:.1f}' for v in values)}"
            if len(values) <= 10
            else f"p90 {sorted(values)[int(0.9 * len(values))]:.1f}, max {max(values):.1f} ({len(values)} scrapes)"
        )
        print(f"  {name:22s} median {median(values):9.1f}   {spread}")
    on, off = median(results["with metrics rps"]), median(results["without metrics rps"])
    # Rounds run back to back, so each pair saw about the same load from other processes.
    paired = [w / wo for w, wo in zip(results["with metrics rps"], results["without metrics rps"], strict=True)]
    print(
        f"  throughput with/without: median of paired rounds {median(paired):.3f} (medians {on:.0f} vs {off:.0f} rps)"
    )
    bare, wrapped = middleware_cost_us()
    print(f"  middleware CPU per request: {wrapped - bare:.1f} µs ({bare:.1f} µs empty app, {wrapped:.1f} µs wrapped)")


if __name__ == "__main__":
    main()
