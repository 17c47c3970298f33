"""Figure 6: toy fits per minute through the stack's workers (submit all, then wait for all),
against the same fits called one after another in this process."""

from __future__ import annotations

import itertools
import time

import ml.model
from bench.harness import Harness
from bench.table import Figure

FITS, QUICK_FITS = 200, 40
TARGET_X = 1.0


def _service(h: Harness, dataset: str, seeds: range) -> dict[str, float]:
    """Seconds from the first submission to the last job's end, and where the time went."""
    t0 = time.time()
    jobs = [h.client.fit(dataset, params={"random_state": s}).id for s in seeds]
    submitted_s = time.time() - t0
    first = h.client.http.get(f"/v1/jobs/{jobs[0]}").json()  # why the first waits, if it does
    # One wait for all: calling wait_all per job polled every job again for each (200 x 200
    # requests after the last end; not in the figure, but half a minute of the section's time).
    ended = h.wait_all(jobs, poll_s=0.05)
    records = [ended[j] for j in jobs]
    by_start = sorted(records, key=lambda r: r["started_at"])
    return {
        "service_s": max(r["ended_at"] for r in records) - t0,
        "submit_all_s": submitted_s,
        "first_job_after_submitting": {k: first.get(k) for k in ("status", "queue", "expected_start")},
        "first_start_s": min(r["started_at"] for r in records) - t0,
        "queue_s_max": max(r["started_at"] - r["enqueued_at"] for r in records),
        "job_run_s": [round(r["ended_at"] - r["started_at"], 3) for r in by_start],
        "gap_between_jobs_s": [round(b["started_at"] - a["ended_at"], 3) for a, b in itertools.pairwise(by_start)],
    }


def _direct(h: Harness, dataset: str, seeds: range) -> float:
    t0 = time.perf_counter()
    for s in seeds:
        ml.model.fit(
            h.dataset_url(dataset),
            h.put_url(h.scratch_key("models")),
            params={"random_state": s},
            scratch_dir=h.settings.scratch_dir,
        )
    return time.perf_counter() - t0


def run(h: Harness) -> list[Figure]:
    dataset = h.upload(h.write_toy("throughput-toy", seed=11))
    total = QUICK_FITS if h.quick else FITS
    rounds = 1 if h.quick else 2  # interleaved: service, direct, then direct, service
    per_round = total // rounds
    service_s = direct_s = 0.0
    samples = []
    for r in range(rounds):
        seeds = range(20_000 + r * per_round, 20_000 + (r + 1) * per_round)
        if r % 2 == 0:
            s, d = _service(h, dataset, seeds), _direct(h, dataset, seeds)
        else:
            d, s = _direct(h, dataset, seeds), _service(h, dataset, seeds)
        service_s += s["service_s"]
        direct_s += d
        samples.append({"fits": per_round, **s, "direct_s": d, "direct_fit_s": d / per_round})
    fits = per_round * rounds
    service_rate, direct_rate = fits / service_s * 60, fits / direct_s * 60
    return [
        Figure("6 throughput", f"toy fits/min ({fits} fits, submit all, wait all)", "jobs/min", service_rate,
               direct_rate, f">= {TARGET_X:g}x direct", service_rate >= TARGET_X * direct_rate, {"rounds": samples}),
    ]  # fmt: skip
