"""Figure 2: on an idle system, how long a toy fit waits from enqueue to start (job record
times), one fit after another."""

from __future__ import annotations

from bench.harness import Harness, median, percentile
from bench.table import Figure

FITS = 50
QUICK_FITS = 20
P50_TARGET_MS = 20.0
P90_TARGET_MS = 100.0


def run(h: Harness) -> list[Figure]:
    toy = h.upload(h.write_toy("dispatch-toy"))
    h.wait(h.client.fit(toy, params={"random_state": 9999}).id)  # the job process warms up
    waits_ms, runs_s = [], []
    for i in range(QUICK_FITS if h.quick else FITS):
        record = h.wait(h.client.fit(toy, params={"random_state": 10_000 + i}).id)
        waits_ms.append((record["started_at"] - record["enqueued_at"]) * 1000)
        runs_s.append(record["ended_at"] - record["started_at"])
    details = {"waits_ms": waits_ms, "started_to_ended_s_median": median(runs_s)}
    p50, p90 = percentile(waits_ms, 50), percentile(waits_ms, 90)
    return [
        Figure("2 dispatch", f"enqueued->started p50 ({len(waits_ms)} toy fits)", "ms", p50, None,
               f"<= {P50_TARGET_MS:g} ms", p50 <= P50_TARGET_MS, details),
        Figure("2 dispatch", "enqueued->started p90", "ms", p90, None, f"<= {P90_TARGET_MS:g} ms",
               p90 <= P90_TARGET_MS),
    ]  # fmt: skip
