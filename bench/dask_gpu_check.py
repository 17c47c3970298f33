"""The Dask engine on GPUs: run on a machine with NVIDIA GPUs, dask-cuda and the CUDA build of XGBoost.

    uv sync --extra gpu --no-group cpu && uv pip install dask-cuda
    uv run python -m bench.dask_gpu_check --rows 2000000 --parts 8

Starts a LocalCUDACluster (one Dask worker per visible GPU, on 127.0.0.1), writes a synthetic
dataset in parts to a temporary folder, trains the same model with ``ml.distributed.engine.fit``
on ``device="cuda"`` and on ``device="cpu"`` (the same Dask workers), predicts on Dask, and prints
one JSON line: time per fit, the device each fit reports, and whether both models agree on at
least 99 % of the rows. Exits 1 when the cuda fit did not run on cuda.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_parts(folder: Path, rows: int, parts: int, features: int) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate(np.diff(np.linspace(0, rows, parts + 1).astype(int))):
        X = rng.standard_normal((n, features))
        y = (X[:, :5].sum(axis=1) + rng.standard_normal(n) > 0).astype(np.int64)
        path = folder / f"part-{i:05d}.parquet"
        pq.write_table(pa.table({**{f"c{j}": X[:, j] for j in range(features)}, "y": y}), path, row_group_size=65_536)
        paths.append(str(path))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    from dask_cuda import LocalCUDACluster

    from ml.distributed import engine

    out: dict[str, object] = {"rows": args.rows, "parts": args.parts, "rounds": args.rounds}
    with (
        tempfile.TemporaryDirectory(prefix="tabjob-gpu-") as tmp,
        LocalCUDACluster(ip="127.0.0.1", dashboard_address=None, preload=["ml.distributed.preload"]) as cluster,
    ):
        folder = Path(tmp)
        parts = write_parts(folder, args.rows, args.parts, args.features)
        labels = {}
        for device in ("cuda", "cpu"):
            t0 = time.perf_counter()
            summary = engine.fit(cluster.scheduler_address, parts, str(folder / f"{device}.pkl"),
                                 params={"n_estimators": args.rounds}, device=device)  # fmt: skip
            out[f"{device}_fit_s"] = round(time.perf_counter() - t0, 2)
            out[f"{device}_reported"] = summary["device"]
            out["workers"] = summary["engine"]["workers"]
            results = [str(folder / f"{device}-out-{i}.parquet") for i in range(len(parts))]
            engine.predict(cluster.scheduler_address, parts, str(folder / f"{device}.pkl"), results, device=device)
            labels[device] = np.concatenate([pq.read_table(r).column("y").to_numpy() for r in results])
        out["agreement"] = float(np.mean(labels["cuda"] == labels["cpu"]))
    print(json.dumps(out))
    return 0 if out["cuda_reported"] == "cuda" and out["agreement"] >= 0.99 else 1


if __name__ == "__main__":
    sys.exit(main())
