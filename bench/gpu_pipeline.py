"""``python -m bench.gpu_pipeline [--rows N] [--features F] [--burst K] [--burst-rows R] [--json PATH]``: the
GPU pipeline through the service, on an embedded stack (API, broker, store, a worker per lane).

1. The same N x F fit as ``hgb`` (one call on a CPU lane) and as ``xgboost`` (``prepare`` on a CPU
   lane, then ``model`` on the gpu lane), one after the other, from submission to the end.
2. A burst of K ``xgboost`` fits on K different datasets (so each needs its own ``prepare``),
   submitted at once: the fraction of the gpu worker's time spent in model steps from the first
   model step's start to the last one's end (1.0: the gpu never waited for a prepare).
3. What a gpu-lane worker started for one step costs (a KEDA ScaledJob pod's process: start,
   imports, XGBoost and device warm-up) against a step on the warm worker: the same cached-prepare
   fit, served once by a fresh ``tabjob worker --lane gpu --max-jobs 1`` while the warm one is
   paused, once by the warm one. Pod scheduling and image pulls come on top of the cold figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.gpu_model import DEFAULT_FEATURES, DEFAULT_ROWS, write_dataset
from bench.harness import Harness, job_process, running_stack

DEFAULT_BURST = 6


def submit(h: Harness, dataset_id: str, model: str, params: dict[str, Any] | None = None) -> str:
    response = h.client.http.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset_id, "model": model,
                                                     "params": params})  # fmt: skip
    response.raise_for_status()
    return response.json()["id"]


def finished(h: Harness, job_id: str) -> dict[str, Any]:
    h.wait(job_id, timeout_s=3600)
    return h.client.job(job_id).raw


def _seconds(job: dict[str, Any], start: str, end: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(job[end]).timestamp() - datetime.fromisoformat(job[start]).timestamp()


def _step_times(step: dict[str, Any]) -> tuple[float, float]:
    from datetime import datetime

    return datetime.fromisoformat(step["started_at"]).timestamp(), datetime.fromisoformat(step["ended_at"]).timestamp()


def compare(h: Harness, dataset_id: str) -> dict[str, Any]:
    """hgb on its CPU lane, then xgboost in two steps, on the same dataset."""
    hgb = finished(h, submit(h, dataset_id, "hgb"))
    xgb = finished(h, submit(h, dataset_id, "xgboost"))
    (p0, p1), (m0, m1) = (_step_times(s) for s in xgb["steps"])
    return {
        "hgb": {"lane": hgb["lane"], "run_s": _seconds(hgb, "started_at", "ended_at"),
                "total_s": _seconds(hgb, "created_at", "ended_at"), "train_s": hgb["result"]["timings"]["train_s"]},
        "xgboost": {"prepare_lane": xgb["steps"][0]["lane"], "device": xgb["steps"][1]["device"],
                    "prepare_s": p1 - p0, "handoff_s": m0 - p1, "model_s": m1 - m0,
                    "train_s": xgb["result"]["timings"]["train_s"], "total_s": _seconds(xgb, "created_at", "ended_at")},
    }  # fmt: skip


def burst(h: Harness, rows: int, features: int, count: int) -> dict[str, Any]:
    """``count`` xgboost fits on different data at once; how busy the gpu worker's model steps kept it."""
    datasets = [h.upload(write_dataset(h.workdir / f"burst{i}.parquet", rows, features, seed=100 + i))
                for i in range(count)]  # fmt: skip
    jobs = [submit(h, d, "xgboost") for d in datasets]
    intervals = sorted(_step_times(finished(h, j)["steps"][1]) for j in jobs)
    busy = sum(end - start for start, end in intervals)
    window = intervals[-1][1] - intervals[0][0]
    return {"jobs": count, "rows": rows, "model_steps_s": busy, "window_s": window, "gpu_busy_fraction": busy / window}


def cold_vs_warm(h: Harness, dataset_id: str) -> dict[str, Any]:
    """A cached-prepare fit served by a one-shot gpu worker started for it, then by the warm one."""
    warm_worker = h.worker("gpu")
    paused = [warm_worker, *warm_worker.children(recursive=True)]
    env = {**os.environ, **_stack_env(h), "PYTHONUNBUFFERED": "1"}
    for p in paused:
        p.suspend()
    try:
        job_id = submit(h, dataset_id, "xgboost", {"n_estimators": 20})
        t0 = time.time()
        one_shot = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--lane", "gpu", "--max-jobs", "1"],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        cold = finished(h, job_id)
        cold_s = time.time() - t0
        one_shot.wait(120)
    finally:
        for p in paused:
            p.resume()
    warm = finished(h, submit(h, dataset_id, "xgboost", {"n_estimators": 21}))
    return {"cold_model_step_s": _seconds(cold, "created_at", "ended_at"), "cold_from_process_start_s": cold_s,
            "warm_model_step_s": _seconds(warm, "created_at", "ended_at"),
            "warm_job_process_pid": getattr(job_process(warm_worker), "pid", None)}  # fmt: skip


def _stack_env(h: Harness) -> dict[str, str]:
    lines = (h.stack.data_dir / "tabjob.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.startswith("TABJOB_") and "=" in line)


def run(rows: int, features: int, burst_count: int, burst_rows: int) -> dict[str, Any]:
    timings: dict[str, float] = {}
    with running_stack(quick=False, timings=timings) as h:
        data = h.upload(write_dataset(h.workdir / "train.parquet", rows, features))
        results: dict[str, Any] = {"rows": rows, "features": features, **compare(h, data)}
        results["burst"] = burst(h, burst_rows, features, burst_count)
        results["cold_vs_warm"] = cold_vs_warm(h, data)
    return results


def render(r: dict[str, Any]) -> str:
    hgb, xgb, b, c = r["hgb"], r["xgboost"], r["burst"], r["cold_vs_warm"]
    return "\n".join([
        f"fit of {r['rows']:,} x {r['features']} through the service",
        f"  hgb, one call on the {hgb['lane']} lane: {hgb['run_s']:.2f} s running (train {hgb['train_s']:.2f} s), "
        f"{hgb['total_s']:.2f} s from submission",
        f"  xgboost, prepare on {xgb['prepare_lane']}: {xgb['prepare_s']:.2f} s, hand-off {xgb['handoff_s']:.3f} s, "
        f"model on gpu ({xgb['device']}): {xgb['model_s']:.2f} s (train {xgb['train_s']:.2f} s), "
        f"{xgb['total_s']:.2f} s from submission",
        f"burst of {b['jobs']} xgboost fits of {b['rows']:,} rows: model steps {b['model_steps_s']:.2f} s "
        f"of {b['window_s']:.2f} s, gpu worker busy {b['gpu_busy_fraction']:.0%}",
        f"model step (prepare cached) on a one-shot worker started for it: {c['cold_model_step_s']:.2f} s; "
        f"on the warm worker: {c['warm_model_step_s']:.2f} s",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_pipeline", description=__doc__)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows of the compared fit (default 1,000,000)")
    parser.add_argument("--features", type=int, default=DEFAULT_FEATURES, help="feature columns (default 50)")
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST, help="fits in the burst (default 6)")
    parser.add_argument("--burst-rows", type=int, default=None, help="rows of each burst dataset (default rows/10)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    results = run(args.rows, args.features, args.burst, args.burst_rows or max(1000, args.rows // 10))
    print(render(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
