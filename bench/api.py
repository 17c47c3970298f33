"""Figure 4: requests per second and p99 latency of job status (``/v1`` and legacy) and of fit
submission with 16 concurrent keep-alive clients, against the constant app in ``bench.ceiling``
run by the same uvicorn settings on another loopback port (the framework's ceiling).

The workers are paused (SIGSTOP) meanwhile, so on this 2-core machine the jobs being submitted
do not take CPU from the API; the submitted jobs are canceled afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

from app.local.servers import free_port
from app.local.spawn import answers, spawn, stop
from bench.harness import Harness, median
from bench.load import CONCURRENCY, LoadResult, get, post_json, run_load
from bench.table import Figure

HOST = "127.0.0.1"
TARGET_STATUS_X = 0.5
WARMUP_S = 0.3


@contextlib.contextmanager
def ceiling_server() -> Iterator[int]:
    port = free_port()
    process = spawn(
        [sys.executable, "-m", "bench.ceiling", "--host", HOST, "--port", str(port)], log=subprocess.DEVNULL,
        ready=answers(f"http://{HOST}:{port}"), what="the ceiling app to answer /healthz", timeout_s=30,
    )  # fmt: skip
    try:
        yield port
    finally:
        stop(process, 10)


def run(h: Harness) -> list[Figure]:
    seconds = 1.0 if h.quick else 3.0
    rounds = 1 if h.quick else 3
    max_submits = 120 if h.quick else 200
    api_port = h.stack.port
    toy = h.upload(h.write_toy("api-toy", seed=21))
    finished = h.client.fit(toy, params={"random_state": 1}).id
    h.wait(finished)
    counter = itertools.count(100_000)

    def submit_body() -> bytes:
        params = {"random_state": next(counter)}  # no two alike: each is a real new job, not a dedup hit
        return json.dumps({"kind": "fit", "dataset_id": toy, "params": params}).encode()

    submitted: list[str] = []
    results: dict[str, list[LoadResult]] = {}
    with ceiling_server() as ceiling_port, h.workers_paused():
        queued = h.client.fit(toy, params={"random_state": 2}).id
        cases: dict[str, tuple[int, Callable[[], bytes], int]] = {
            "ceiling GET": (ceiling_port, get(HOST, ceiling_port, f"/v1/jobs/{finished}"), 10**9),
            "v1 status (finished)": (api_port, get(HOST, api_port, f"/v1/jobs/{finished}"), 10**9),
            "v1 status (queued)": (api_port, get(HOST, api_port, f"/v1/jobs/{queued}"), 10**9),
            "legacy status": (api_port, get(HOST, api_port, f"/status?id={finished}"), 10**9),
            "ceiling POST": (ceiling_port, post_json(HOST, ceiling_port, "/v1/jobs", submit_body), max_submits),
            "submit": (api_port, post_json(HOST, api_port, "/v1/jobs", submit_body), max_submits),
        }
        for name, (port, request, _) in cases.items():
            if name != "submit":  # warm both servers' connection paths up (no jobs are made)
                run_load(HOST, port, request, seconds=WARMUP_S)
        for _ in range(rounds):
            for name, (port, request, limit) in cases.items():
                keep = name == "submit"
                result = run_load(HOST, port, request, seconds=seconds, max_requests=limit, keep_bodies=keep)
                results.setdefault(name, []).append(result)
                if keep:
                    submitted += _job_ids(result.bodies)
        for job_id in [queued, *submitted]:  # before the workers wake up: they skip canceled jobs
            h.client.cancel(job_id)
    return _figures(results, len(submitted))


def _job_ids(bodies: list[bytes]) -> list[str]:
    """The ids of the jobs the submissions made (error bodies have none). Parsed, not matched on
    the body's first bytes: when JobPublic's fields were reordered, every job the section made was
    left queued, and the next section's jobs waited behind 555 of them."""
    ids = []
    for body in bodies:
        try:
            found = json.loads(body).get("id")
        except (ValueError, AttributeError):
            continue
        if isinstance(found, str) and found.startswith("job_"):
            ids.append(found)
    return ids


def _summary(results: list[LoadResult]) -> dict[str, Any]:
    return {
        "rps": [r.rps for r in results],
        "p50_ms": [r.p50_ms for r in results],
        "p99_ms": [r.p99_ms for r in results],
        "requests": [r.requests for r in results],
        "errors": [r.errors for r in results],
    }


def _figures(results: dict[str, list[LoadResult]], submitted: int) -> list[Figure]:
    rps = {name: median([r.rps for r in rs]) for name, rs in results.items()}
    p99 = {name: median([r.p99_ms for r in rs]) for name, rs in results.items()}
    errors = {name: sum(r.errors for r in rs) for name, rs in results.items()}
    details = {name: _summary(rs) for name, rs in results.items()}
    figures = []
    for name, ceiling, label, target in (
        ("v1 status (finished)", "ceiling GET", "GET /v1/jobs/{id} (finished job)", TARGET_STATUS_X),
        ("v1 status (queued)", "ceiling GET", "GET /v1/jobs/{id} (queued job)", TARGET_STATUS_X),
        ("legacy status", "ceiling GET", "GET /status?id= (legacy)", TARGET_STATUS_X),
        ("submit", "ceiling POST", "POST /v1/jobs (fit submit)", None),
    ):
        ok = errors[name] == 0
        figures.append(
            Figure(
                "4 api",
                f"{label} req/s, {CONCURRENCY} clients",
                "req/s",
                rps[name],
                rps[ceiling],
                "-" if target is None else f">= {target:g}x ceiling",
                None if target is None else ok and rps[name] >= target * rps[ceiling],
                {**details[name], "ceiling": details[ceiling], "submitted_jobs": submitted}
                if name == "submit"
                else {**details[name], "ceiling": details[ceiling]},
            )
        )
        figures.append(Figure("4 api", f"{label} p99 latency", "ms", p99[name], p99[ceiling]))
    return figures
