"""Duration estimates: how often a held-out job's run time falls inside the interval it was given
at submission, and how wide those intervals are (app.usecases.estimates states the method).

First a history: fits of several sizes (rows x features x max_iter) run one at a time on the
small lane; then held-out fits of other sizes, each submitted after the previous one ended, so
its estimate comes from the history (and the held-out jobs before it), as a user's would."""

from __future__ import annotations

import random
import statistics

from bench.harness import Harness
from bench.table import Figure

ROWS = (300, 1000, 3000, 10000)
FEATURES = (5, 20)
ITERATIONS = (20, 50, 100)
HISTORY, HELD_OUT = 12, 12
QUICK_HISTORY, QUICK_HELD_OUT = 6, 6
TARGET_INSIDE = 2 / 3
TARGET_WIDTH_X_LOW = 4.0


def _run(h: Harness, datasets: dict[tuple[int, int], str], shape: tuple[int, int], iterations: int, seed: int):
    params = {"max_iter": iterations, "early_stopping": False, "random_state": seed}
    submitted = h.client.fit(datasets[shape], params=params, lane="small")
    times = h.wait(submitted.id)
    return submitted.estimate, times["ended_at"] - times["started_at"]


def run(h: Harness) -> list[Figure]:
    rng = random.Random(26)
    shapes = [(rows, features) for rows in ROWS for features in FEATURES]
    datasets = {
        shape: h.upload(h.write_toy(f"estimates-{shape[0]}x{shape[1]}", rows=shape[0], features=shape[1], seed=i))
        for i, shape in enumerate(shapes)
    }
    combos = [(shape, iterations) for shape in shapes for iterations in ITERATIONS]
    rng.shuffle(combos)
    history, held_out = (QUICK_HISTORY, QUICK_HELD_OUT) if h.quick else (HISTORY, HELD_OUT)
    for seed, (shape, iterations) in enumerate(combos[:history]):
        _run(h, datasets, shape, iterations, seed)
    samples = []
    for seed, (shape, iterations) in enumerate(combos[history : history + held_out], start=1000):
        estimate, took_s = _run(h, datasets, shape, iterations, seed)
        assert estimate is not None, "a held-out fit came without an estimate"
        samples.append({
            "rows": shape[0], "features": shape[1], "max_iter": iterations, "run_s": round(took_s, 3),
            "duration_s": estimate.duration_s, "low_s": estimate.low_s, "high_s": estimate.high_s,
            "inside": estimate.low_s <= took_s <= estimate.high_s,
        })  # fmt: skip
    inside = sum(s["inside"] for s in samples) / len(samples)
    width = statistics.median((s["high_s"] - s["low_s"]) / s["low_s"] for s in samples)
    errors = [abs(s["duration_s"] - s["run_s"]) / s["run_s"] for s in samples]
    details = {"history_jobs": history, "held_out": samples, "median_abs_error": statistics.median(errors)}
    return [
        Figure("estimates", f"held-out fits inside their interval ({len(samples)} jobs)", "share", round(inside, 3),
               None, f">= {TARGET_INSIDE:.2f}", inside >= TARGET_INSIDE, details),
        Figure("estimates", "interval width (high - low) / low, median", "x low", round(width, 2),
               None, f"<= {TARGET_WIDTH_X_LOW:g}", width <= TARGET_WIDTH_X_LOW, {}),
    ]  # fmt: skip
