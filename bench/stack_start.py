"""Stack start-up and idle memory: how long ``tabjob stack`` takes to answer ``/readyz``, and
the proportional set size (PSS) of all its processes once idle.

PSS divides each shared page among the processes that map it, so the sum over the process tree
is what the stack really costs the machine (RSS would count the forkserver's pages once per
forked child). Run on its own: ``python -m bench.stack_start [--idle-s 10]``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil
import redis

from app.core.settings import LANES
from app.core.waiting import wait_until
from app.local.bytecode import ensure_compiled
from app.local.servers import free_port
from app.local.stack import EmbeddedStack
from app.state import lane_workers_key
from bench.table import Figure

ROOT = Path(__file__).resolve().parent.parent
READY_TARGET_S = 5.0
IDLE_PSS_TARGET_MIB = 768
# What the stack runs before its idle memory is measured again: as many medium fits as the
# burst section's (75,000 x 50) are large, on fewer rows so the section stays short.
WORK_FITS, WORK_ROWS = 4, 40_000
MIB = 2**20


@dataclass
class StackStart:
    """One cold start of ``tabjob stack`` on an empty data directory."""

    ready_s: float  # start of the command to the first 200 from /readyz
    first_fit_s: float  # a toy fit submitted at ready: submission to finished (workers still starting)
    workers_s: float  # start of the command to every worker registered with the broker
    idle_pss_mib: float  # PSS summed over the stack and all its descendants, once idle
    processes: int  # processes in that tree
    stop_s: float  # SIGTERM to the exit of the stack command
    by_process: dict[str, float]  # PSS per kind of process, MiB
    after_work_pss_mib: float  # the same, idle again after WORK_FITS medium fits ran at once
    after_work_by_process: dict[str, float]


def tree_pss(root: psutil.Process) -> tuple[float, int, dict[str, float]]:
    """PSS in MiB summed over ``root`` and its descendants, their count, and PSS per kind."""
    total, count, kinds = 0.0, 0, {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            pss = proc.memory_full_info().pss / MIB
            kind = _kind(proc)
        except psutil.Error:
            continue
        total += pss
        count += 1
        kinds[kind] = kinds.get(kind, 0.0) + pss
    return total, count, kinds


def _kind(proc: psutil.Process) -> str:
    """What ``proc`` is, for the per-kind breakdown (a job process is a forkserver's child)."""
    text = " ".join(proc.cmdline())
    parent = proc.parent()
    if "forkserver" in text and parent is not None and "forkserver" in " ".join(parent.cmdline()):
        return "job process"
    for needle, kind in (
        ("valkey-server", "valkey"),
        ("weed", "seaweedfs"),
        ("forkserver", "forkserver"),
        ("resource_tracker", "resource tracker"),
        ("worker --lane", "worker"),
        (" api ", "api"),
        ("app.local.supervisor", "stack"),  # what `tabjob stack` execs into
    ):
        if needle in text:
            return kind
    return text[:40]


def measure(*, idle_s: float = 10.0, data_dir: Path | None = None) -> StackStart:
    """Start ``tabjob stack`` on an empty data directory, time /readyz, wait ``idle_s`` seconds
    after every worker registered, sum PSS, stop it and time the stop."""
    with tempfile.TemporaryDirectory(prefix="tabjob-start-") as tmp:
        port = free_port()
        directory = data_dir or Path(tmp)
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "stack", "--data-dir", str(directory), "--port", str(port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until(
                lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200,
                what="the stack to answer /readyz",
                timeout_s=120,
                interval_s=0.02,
                ignore=(httpx.HTTPError,),
                give_up=lambda: "the stack exited" if process.poll() is not None else None,
            )
            ready_s = time.monotonic() - started
            first_fit_s = _first_fit(f"http://127.0.0.1:{port}", directory)
            wait_until(
                lambda: _all_workers_up(psutil.Process(process.pid), directory),
                what="every worker to register",
                timeout_s=120,
                interval_s=0.05,
                ignore=(OSError, KeyError, redis.RedisError, psutil.Error),
            )
            workers_s = time.monotonic() - started
            time.sleep(idle_s)  # let warm-ups finish: idle means after them
            pss, count, kinds = tree_pss(psutil.Process(process.pid))
            _work(f"http://127.0.0.1:{port}", directory)
            time.sleep(idle_s)
            after_pss, _, after_kinds = tree_pss(psutil.Process(process.pid))
            t0 = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(120)
            stop_s = time.monotonic() - t0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    by_kind = {k: round(v, 1) for k, v in sorted(kinds.items())}
    after_by_kind = {k: round(v, 1) for k, v in sorted(after_kinds.items())}
    return StackStart(ready_s, first_fit_s, workers_s, pss, count, stop_s, by_kind, after_pss, after_by_kind)


def _first_fit(url: str, workdir: Path) -> float:
    """Upload a toy dataset, submit a fit and return seconds from submission to finished."""
    import pandas as pd

    path = workdir / "toy.parquet"
    pd.DataFrame({"a": [float(i) for i in range(200)], "y": [i % 2 for i in range(200)]}).to_parquet(path)
    with httpx.Client(base_url=url, timeout=30) as api:  # auth is off on a loopback stack
        dataset = _upload(api, path)
        t0 = time.monotonic()
        _run_all(api, [{"kind": "fit", "dataset_id": dataset}], timeout_s=120, interval_s=0.02)
        return time.monotonic() - t0


def _upload(api: httpx.Client, path: Path) -> str:
    """Upload ``path`` through a presigned PUT URL; the dataset's id."""
    created = api.post("/v1/datasets", json={}).json()
    httpx.put(created["upload_url"], content=path.read_bytes(), timeout=60).raise_for_status()
    return created["id"]


def _run_all(api: httpx.Client, bodies: list[dict], *, timeout_s: float, interval_s: float) -> list[str]:
    """Submit every job of ``bodies`` at once and wait until all have finished; their ids."""
    ids = [api.post("/v1/jobs", json=body).json()["id"] for body in bodies]
    wait_until(
        lambda: all(api.get(f"/v1/jobs/{i}").json()["status"] == "finished" for i in ids),
        what="the jobs to finish",
        timeout_s=timeout_s,
        interval_s=interval_s,
    )
    return ids


def _work(url: str, workdir: Path) -> None:
    """WORK_FITS medium fits (WORK_ROWS x 50) submitted at once, and a predict with each model:
    what a stack has done before it is idle again."""
    from bench.harness import random_frame

    path = workdir / "medium.parquet"
    random_frame(WORK_ROWS, 50, seed=5).to_parquet(path, index=False)
    with httpx.Client(base_url=url, timeout=60) as api:
        dataset = _upload(api, path)
        fits = _run_all(
            api,
            [{"kind": "fit", "dataset_id": dataset, "params": {"random_state": s}} for s in range(WORK_FITS)],
            timeout_s=600,
            interval_s=0.2,
        )
        predicts = [{"kind": "predict", "dataset_id": dataset, "model_id": fit} for fit in fits]
        _run_all(api, predicts, timeout_s=600, interval_s=0.2)


def _all_workers_up(root: psutil.Process, data_dir: Path) -> bool:
    """True once every worker the stack starts with has registered with the broker: each worker
    process, and as many worker ids of theirs as the stack runs workers from the start (the small
    lane's share a process; an id ends in its process's pid; the large and gpu lanes' workers
    start with a job, ``app.local.on_demand``)."""
    env = dict(line.split("=", 1) for line in (data_dir / "tabjob.env").read_text().splitlines() if "=" in line)
    client = redis.Redis.from_url(env["TABJOB_REDIS_URL"], password=env["TABJOB_REDIS_PASSWORD"], decode_responses=True)
    registered = [
        member.rsplit("-", 1)[-1] for lane in LANES for member in client.zrange(lane_workers_key(lane), 0, -1)
    ]
    pids = {str(p.pid) for p in root.children() if "worker --lane" in " ".join(p.cmdline())}
    ids = sum(pid in pids for pid in registered)
    return bool(pids) and pids <= set(registered) and ids >= EmbeddedStack(data_dir=data_dir).concurrent_workers()


def run() -> list[Figure]:
    """The section for ``python -m bench``: one cold start of its own (run before the harness's
    stack starts, so the two share no pages), as figures."""
    result = measure()
    details = asdict(result)
    return [
        Figure("stack", "start to /readyz", "s", result.ready_s, None, f"<= {READY_TARGET_S:g} s",
               result.ready_s <= READY_TARGET_S, details),
        Figure("stack", "first toy fit submitted at ready", "s", result.first_fit_s, details=details),
        Figure("stack", "idle PSS, all processes", "MiB", result.idle_pss_mib, None, f"<= {IDLE_PSS_TARGET_MIB} MiB",
               result.idle_pss_mib <= IDLE_PSS_TARGET_MIB, details),
        Figure("stack", f"idle PSS after {WORK_FITS} medium fits and predicts", "MiB", result.after_work_pss_mib, None,
               f"<= {IDLE_PSS_TARGET_MIB} MiB", result.after_work_pss_mib <= IDLE_PSS_TARGET_MIB, details),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stack_start", description=__doc__)
    parser.add_argument("--idle-s", type=float, default=10.0, help="seconds to let the stack settle before PSS")
    parser.add_argument("--runs", type=int, default=1, help="cold starts to measure")
    args = parser.parse_args(argv)
    ensure_compiled()  # as `python -m bench` does: the stack's cost, not the compiler's
    for _ in range(args.runs):
        result = measure(idle_s=args.idle_s)
        print(json.dumps(asdict(result)))
        print(
            f"ready {result.ready_s:.2f} s (target {READY_TARGET_S:g}), first fit {result.first_fit_s:.2f} s, "
            f"workers {result.workers_s:.2f} s, "
            f"idle PSS {result.idle_pss_mib:.0f} MiB in {result.processes} processes "
            f"(target {IDLE_PSS_TARGET_MIB}), {result.after_work_pss_mib:.0f} MiB after work, "
            f"stop {result.stop_s:.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
