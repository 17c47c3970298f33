"""Figure 3: a toy fit's wait to start while the large lane is busy with 8 large fits
(1 running, 7 queued). The toy goes to the small lane by itself (lane auto)."""

from __future__ import annotations

import contextlib

from app.core.domain import JobStatus
from app.core.waiting import wait_until
from bench.harness import Harness, random_frame, write_frame
from bench.table import Figure
from tabjob import ApiError

LARGE_FITS = 8
LARGE_ROWS, LARGE_FEATURES = 60_000, 20
# Enough boosting rounds that the running large fit outlasts the toy fit's whole life.
LARGE_PARAMS = {"max_iter": 300, "early_stopping": False}
TARGET_S = 1.0


def run(h: Harness) -> list[Figure]:
    toy = h.upload(h.write_toy("fairness-toy", seed=3))
    large = [
        h.upload(write_frame(h.workdir / f"large-{i}.parquet", random_frame(LARGE_ROWS, LARGE_FEATURES, seed=100 + i)))
        for i in range(LARGE_FITS)
    ]
    jobs = [h.client.fit(d, params=LARGE_PARAMS, lane="large").id for d in large]
    wait_until(
        lambda: h.times(jobs[0])["status"] != JobStatus.QUEUED,
        what="the first large fit to start",
        timeout_s=60,
        interval_s=0.02,
    )
    submitted = h.client.fit(toy, params={"random_state": 7})
    record = h.wait(submitted.id)
    states = [h.times(j)["status"] for j in jobs]
    for job_id in jobs:  # the large fits only served to keep the large lane busy
        with contextlib.suppress(ApiError):  # already ended
            h.client.cancel(job_id)
    h.wait_all(jobs, allow_failed=True)
    wait_s = record["started_at"] - record["enqueued_at"]
    details = {
        "toy_lane": record["lane"],
        "toy_started_to_ended_s": record["ended_at"] - record["started_at"],
        "large_states_when_toy_ended": states,
    }
    return [
        Figure("3 fairness", f"toy fit wait, large lane busy ({LARGE_FITS} large fits)", "s", wait_s, None,
               f"<= {TARGET_S:g} s", wait_s <= TARGET_S, details),
    ]  # fmt: skip
