"""The Dask client side of a distributed predict: one task per part, output in parts, in order."""

from __future__ import annotations

import time
from typing import Any

from ml.bundle import load_bundle
from ml.distributed import cluster, tasks
from ml.distributed.cluster import ENGINE, POLL_S, WORKERS_WAIT_S, connect
from ml.errors import DataProblem
from ml.families.xgb import XGBoostModel
from ml.io import Progress, report


def predict(
    scheduler: str,
    part_urls: list[str],
    model_url: str,
    result_urls: list[str],
    *,
    model_sha256: str | None = None,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    device: str | None = None,
    workers_wait_s: float = WORKERS_WAIT_S,
    min_workers: int = 1,
) -> dict[str, Any]:
    """Predict every part at ``part_urls`` on the Dask cluster with the xgboost model at
    ``model_url`` (trained on Dask or on one node: the bundle is the same); part ``i``'s labels go
    to ``result_urls[i]`` (a Parquet file with one column ``y``), in order. A part whose worker is
    lost is predicted again by Dask itself (the tasks are pure; ``retries=2``).

    Returns the predict summary (rows, family, device, timings) plus ``engine``, ``parts`` and
    ``part_rows``.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    bundle = load_bundle(model_url, model_sha256)  # verified here, in the job process, before any use
    if bundle.family != "xgboost" or not isinstance(bundle.estimator, XGBoostModel):
        raise DataProblem(
            "job.engine_unsupported",
            f"A '{bundle.family}' model cannot predict on the Dask engine.",
            "Predict without an engine, or train an xgboost model.",
        )
    model = {
        "model": bundle.estimator.model, "classes": bundle.estimator.classes,
        "feature_types": bundle.estimator.feature_types, "best_iteration": bundle.estimator.best_iteration,
        "task": getattr(bundle.estimator, "task", "classification"),
    }  # fmt: skip
    timings["load_s"] = time.perf_counter() - started
    client = connect(scheduler)
    try:
        report(progress, "waiting", None, "Waiting for Dask workers.")
        present = cluster.wait_for_workers(client, workers_wait_s, min_workers)
        used_device = cluster.device(client, present, device)
        t0 = time.perf_counter()
        report(progress, "predicting", 0.0, f"Predicting {len(part_urls)} parts on {len(present)} Dask workers.")
        work = (bundle.spec.to_dict(), client.scatter(model, broadcast=True), bundle.target, used_device)
        futures = [client.submit(tasks.predict_part, url, out, *work, pure=False, retries=2)
                   for url, out in zip(part_urls, result_urls, strict=True)]  # fmt: skip
        outcomes = _collect(futures, progress)
        timings["predict_s"] = time.perf_counter() - t0
    finally:
        client.close()
    return {
        "rows": int(sum(o["rows"] for o in outcomes)), "family": bundle.family, "device": used_device,
        "engine": {"name": ENGINE, "workers": len(present)}, "parts": len(part_urls),
        "part_rows": [o["rows"] for o in outcomes], "timings": timings,
    }  # fmt: skip


def _collect(futures: list[Any], progress: Progress | None) -> list[dict[str, Any]]:
    """Each task's outcome, in the parts' order, reporting the fraction of parts done."""
    outcomes: dict[int, dict[str, Any]] = {}
    while len(outcomes) < len(futures):
        time.sleep(POLL_S)  # not distributed.as_completed: it needs a default client
        for i, future in enumerate(futures):
            if i not in outcomes and future.status in ("finished", "error"):
                outcomes[i] = future.result()  # raises the task's error
                report(progress, "predicting", len(outcomes) / len(futures), None)
    return [outcomes[i] for i in range(len(futures))]
