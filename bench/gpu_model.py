"""``python -m bench.gpu_model [--rows N] [--features F] [--device auto|cpu|cuda] [--json PATH]``: the same fit
as ``hgb`` in one call and as ``xgboost`` in two steps (prepare, then the model step), side by side.

Works on local files (no store, no queue), so it measures the ML work each step does: parsing and
encoding Parquet, loading the prepared matrix, training. A second table compares how fast the
model step gets its matrix from the prepared file against parsing the Parquet again (and against a
plain ``.npy``), which is why the prepared file is Arrow IPC (docs/models.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from ml.dataset import open_parquet
from ml.device import choose_device
from ml.features import FeatureSpec
from ml.model import fit
from ml.model_step import train_prepared
from ml.prepare_step import prepare
from ml.prepared import read_prepared
from ml.schema import feature_schema

DEFAULT_ROWS = 1_000_000
DEFAULT_FEATURES = 50


def write_dataset(path: Path, rows: int, features: int, seed: int = 0) -> Path:
    """A learnable classification set of ``rows`` x ``features`` float64 columns and a 0/1 ``y``, as Parquet."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    weights = rng.standard_normal(features)
    signal = X @ weights + np.sin(3 * X[:, 0]) * 2 + rng.standard_normal(rows)
    columns = {f"col_{j}": X[:, j] for j in range(features)}
    pq.write_table(pa.table({**columns, "y": (signal > 0).astype(np.int64)}), path)
    return path


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def compare_fits(data: Path, workdir: Path, device: str | None) -> dict[str, Any]:
    """Fit ``data`` as hgb (one call) and as xgboost (prepare + model step); wall seconds and each step's timings."""
    hgb, hgb_s = _timed(lambda: fit(str(data), str(workdir / "hgb.pkl")))
    prepared_path = workdir / "fit.arrow"
    prepared, prepare_s = _timed(lambda: prepare(str(data), str(prepared_path)))
    xgb, model_s = _timed(
        lambda: train_prepared(str(prepared_path), str(workdir / "xgb.pkl"), family="xgboost", device=device)
    )
    return {
        "hgb": {"wall_s": hgb_s, "summary": _short(hgb)},
        "xgboost": {
            "wall_s": prepare_s + model_s,
            "prepare_wall_s": prepare_s,
            "model_wall_s": model_s,
            "prepare": {"timings": prepared["timings"], "bytes": prepared["bytes"]},
            "summary": _short(xgb),
        },
    }


def compare_loads(data: Path, workdir: Path) -> dict[str, float]:
    """Seconds to get the float32 feature matrix from: the Parquet (parse + encode), the prepared file
    (mapped, as the model step uses it, and copied into memory), a .npy of the same matrix."""
    source = open_parquet(data)
    spec = FeatureSpec(columns=feature_schema(source.schema_arrow))
    _, parquet_s = _timed(lambda: spec.matrix(open_parquet(data), dtype=np.float32))
    _, mapped_s = _timed(lambda: read_prepared(workdir / "fit.arrow").matrix(np.float32))
    # Copied into memory, to compare with the .npy like for like (the model step uses the mapped view).
    _, prepared_s = _timed(lambda: np.array(read_prepared(workdir / "fit.arrow").matrix(np.float32)))
    npy = workdir / "matrix.npy"
    np.save(npy, read_prepared(workdir / "fit.arrow").matrix(np.float32))
    _, npy_s = _timed(lambda: np.array(np.load(npy, mmap_mode="r")))
    return {
        "parquet_parse_encode_s": parquet_s,
        "prepared_arrow_ipc_mapped_s": mapped_s,
        "prepared_arrow_ipc_copied_s": prepared_s,
        "npy_copied_s": npy_s,
    }


def run(
    rows: int = DEFAULT_ROWS, features: int = DEFAULT_FEATURES, device: str | None = None, threads: int | None = None
) -> dict[str, Any]:
    """Generate the data, run both fits and the load comparison; returns every number (seconds, bytes).

    ``threads`` caps the OpenMP threads of both libraries (None: their default, every core), as a
    worker does with the cores it owns: on a shared machine, spin-waiting threads distort the figures.
    """
    import xgboost  # loaded before the thread cap, so threadpoolctl finds its OpenMP runtime too

    with threadpool_limits(limits=threads), tempfile.TemporaryDirectory(prefix="tabjob-gpu-bench-") as folder:
        workdir = Path(folder)
        data = write_dataset(workdir / "train.parquet", rows, features)
        results: dict[str, Any] = {
            "rows": rows,
            "features": features,
            "threads": threads,
            "xgboost_version": xgboost.__version__,
            "device": choose_device(device),
            "parquet_bytes": data.stat().st_size,
        }
        results.update(compare_fits(data, workdir, device))
        results["load"] = compare_loads(data, workdir)
    return results


def _short(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("family", "device", "rows", "iterations", "best_iteration", "validation_score", "timings")
    return {key: summary.get(key) for key in keys}


def render(results: dict[str, Any]) -> str:
    """The two tables as text."""
    hgb, xgb = results["hgb"], results["xgboost"]
    h, p, m = hgb["summary"]["timings"], xgb["prepare"]["timings"], xgb["summary"]["timings"]
    lines = [
        f"fit of {results['rows']:,} x {results['features']} (Parquet {results['parquet_bytes'] / 1e6:.0f} MB), "
        f"threads: {results['threads'] or 'all'}, xgboost {results['xgboost_version']}",
        f"{'':34}{'hgb (one call)':>16}{'xgboost (steps)':>17}",
        f"{'device':34}{'cpu':>16}{xgb['summary']['device']:>17}",
        f"{'parse + encode Parquet (s)':34}{h['prepare_s']:>16.2f}{p['encode_s']:>17.2f}",
        f"{'write + upload prepared file (s)':34}{'-':>16}{p['upload_s']:>17.2f}",
        f"{'load prepared matrix (s)':34}{'-':>16}{m['load_s']:>17.2f}",
        f"{'train (s)':34}{h['train_s']:>16.2f}{m['train_s']:>17.2f}",
        f"{'prepare step, wall (s)':34}{'-':>16}{xgb['prepare_wall_s']:>17.2f}",
        f"{'model step, wall (s)':34}{'-':>16}{xgb['model_wall_s']:>17.2f}",
        f"{'total, wall (s)':34}{hgb['wall_s']:>16.2f}{xgb['wall_s']:>17.2f}",
        f"{'iterations':34}{hgb['summary']['iterations']:>16}{xgb['summary']['iterations']:>17}",
        f"{'validation accuracy':34}{_score(hgb):>16}{_score(xgb):>17}",
        "",
        "float32 matrix for the model step, from:",
    ]
    for name, seconds in results["load"].items():
        lines.append(f"  {name:32}{seconds:>10.3f} s")
    lines.append(f"  prepared file: {xgb['prepare']['bytes'] / 1e6:.0f} MB")
    return "\n".join(lines)


def _score(side: dict[str, Any]) -> str:
    score = side["summary"]["validation_score"]
    return "-" if score is None else f"{score:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_model", description=__doc__)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="training rows (default 1,000,000)")
    parser.add_argument("--features", type=int, default=DEFAULT_FEATURES, help="feature columns (default 50)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="xgboost's device")
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads for both (default: all cores)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    results = run(args.rows, args.features, args.device, args.threads)
    print(render(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
