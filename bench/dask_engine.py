"""``python -m bench --only dask``: the same XGBoost fit on 1 and 2 Dask workers against single-node XGBoost.

The Dask workers are the embedded stack's own (``app.local.dask_cluster``: ``dask worker`` processes
with their nannies, on 127.0.0.1), reading the parts as local files. The single-node baseline is
``ml.model.fit`` with the xgboost family in a fresh process (the whole file, float32 matrix).
Figures: wall time of the fit, and the peak resident memory of each Dask worker process against
the single-node process's. On a 2-core machine two workers share the cores, so the time does not
halve; the memory per worker is what the engine buys.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from app.local.dask_cluster import LocalDaskCluster
from bench.table import Figure

MIB = 1024**2
FEATURES = 20
ROUNDS = 100
WORKER_MEMORY = "2GiB"  # the benchmark measures memory; it must not be the limit that stops it

_SINGLE = """
import json, resource, sys, time
from ml.model import fit
t0 = time.perf_counter()
fit(sys.argv[1], sys.argv[2], family="xgboost", device="cpu", params={"n_estimators": int(sys.argv[3]),
    "early_stopping": False})
print(json.dumps({"s": time.perf_counter() - t0, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _write(folder: Path, rows: int, parts: int) -> tuple[Path, list[Path]]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, FEATURES))
    y = (X[:, :5].sum(axis=1) + rng.standard_normal(rows) > 0).astype(np.int64)
    table = pa.table({**{f"c{j}": X[:, j] for j in range(FEATURES)}, "y": y})
    whole = folder / "whole.parquet"
    pq.write_table(table, whole, row_group_size=65_536)
    paths = []
    for i, idx in enumerate(np.array_split(np.arange(rows), parts)):
        path = folder / f"part-{i}.parquet"
        pq.write_table(table.take(idx), path, row_group_size=65_536)
        paths.append(path)
    return whole, paths


def _on_dask(folder: Path, workers: int, parts: list[Path]) -> dict[str, float]:
    from ml.distributed import engine

    cluster = LocalDaskCluster(folder / f"dask-{workers}", workers, WORKER_MEMORY)
    (folder / "logs").mkdir(exist_ok=True)
    cluster.launch(folder / "logs")
    try:
        cluster.wait_ready(120)
        t0 = time.perf_counter()
        summary = engine.fit(cluster.address, [str(p) for p in parts], str(folder / f"model-{workers}.pkl"),
                             params={"n_estimators": ROUNDS}, device="cpu")  # fmt: skip
        return {"s": time.perf_counter() - t0, "peak": max(summary["worker_peak_rss_bytes"])}
    finally:
        cluster.stop()


def run(quick: bool = False) -> list[Figure]:
    rows = 100_000 if quick else 400_000
    with tempfile.TemporaryDirectory(prefix="tabjob-bench-dask-") as tmp:
        folder = Path(tmp)
        whole, parts = _write(folder, rows, 4)
        done = subprocess.run([sys.executable, "-c", _SINGLE, str(whole), str(folder / "single.pkl"), str(ROUNDS)],
                              capture_output=True, text=True, check=True)  # fmt: skip
        single = json.loads(done.stdout.strip().splitlines()[-1])
        one, two = _on_dask(folder, 1, parts), _on_dask(folder, 2, parts)
    shape = f"{rows:,} x {FEATURES}, {ROUNDS} rounds"
    details = {"rows": rows, "features": FEATURES, "rounds": ROUNDS, "single": single, "dask1": one, "dask2": two}
    return [
        Figure("9 dask", f"fit time, 1 Dask worker ({shape})", "s", one["s"], single["s"], "-", None, details),
        Figure("9 dask", f"fit time, 2 Dask workers ({shape})", "s", two["s"], single["s"], "-", None, details),
        Figure("9 dask", "peak RSS per worker, 1 Dask worker", "MiB", one["peak"] / MIB, single["peak"] / MIB),
        Figure("9 dask", "peak RSS per worker, 2 Dask workers", "MiB", two["peak"] / MIB, single["peak"] / MIB,
               "< single node", two["peak"] < single["peak"]),
    ]  # fmt: skip
