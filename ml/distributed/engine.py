"""The Dask client side of a distributed fit, run in a tabjob job process.

The job process that runs the job is the Dask client: it scans the parts, learns the encoding,
starts XGBoost's tracker on the scheduler, hands each Dask worker its parts (presigned URLs, never
store credentials), follows the training and writes the model in the same bundle format as every
fit. It watches the workers it gave work to: one that leaves mid-fit makes the fit fail with
``WorkerLost`` (the service retries it) rather than wait on an allreduce that never completes.
The predict side is ``ml.distributed.predicting``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from ml import families
from ml.bundle import ModelBundle, save_bundle
from ml.distributed import cluster, tasks
from ml.distributed.cluster import ENGINE, POLL_S, WORKERS_WAIT_S, ClusterUnavailable, WorkerLost, connect
from ml.distributed.predicting import predict
from ml.distributed.reading import feature_types
from ml.errors import DataProblem
from ml.families.xgb import XGBoostModel
from ml.features import MAX_CATEGORIES, FeatureSpec
from ml.io import Progress, report
from ml.training import plain

__all__ = ["ClusterUnavailable", "WorkerLost", "connect", "fit", "predict"]

# XGBClassifier's default number of boosting rounds.
DEFAULT_ROUNDS = 100


def fit(
    scheduler: str,
    part_urls: list[str],
    model_url: str,
    *,
    params: Mapping[str, Any] | None = None,
    target: str = "y",
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    device: str | None = None,
    max_workers: int | None = None,
    threads_per_worker: int = 1,
    workers_wait_s: float = WORKERS_WAIT_S,
    min_workers: int = 1,
) -> dict[str, Any]:
    """Train an XGBoost classifier on the Parquet parts at ``part_urls`` on the Dask cluster at
    ``scheduler``; write the ModelBundle (the one every fit writes) to ``model_url``.

    Parameters:
      params: the xgboost family's parameters (``ml.families.xgb.TUNABLE_PARAMS``); no early stopping.
      max_workers: use at most this many Dask workers (never more than there are parts).
      threads_per_worker: XGBoost threads in each Dask worker (its cores).
      device: ``cpu``, ``cuda`` or ``auto`` (``cuda`` when the workers report a GPU, ``ml.device``).
      workers_wait_s, min_workers: wait this long for this many workers (a retry waits for a
        lost worker's replacement, so no worker gets twice its share).

    Returns the fit summary every fit returns, plus ``engine`` ({"name": "dask", "workers": N}),
    ``parts`` and ``worker_peak_rss_bytes``. Raises ``DataProblem`` (a part cannot train, the parts
    differ) or ``ClusterUnavailable``/``WorkerLost`` (the cluster failed: retry).
    """
    chosen_params = families.chosen_params(families.family("xgboost"), params)
    timings: dict[str, float] = {}
    started, client, ours = time.perf_counter(), connect(scheduler), []
    try:
        report(progress, "waiting", None, "Waiting for Dask workers.")
        present = cluster.wait_for_workers(client, workers_wait_s, min_workers)
        report(progress, "validating", 0.0, f"Scanning {len(part_urls)} parts on {len(present)} Dask workers.")
        spec, classes, rows = merge_scans(client.gather([client.submit(tasks.scan_part, url, target, pure=False,
                                                                       retries=2) for url in part_urls]))  # fmt: skip
        timings["scan_s"] = time.perf_counter() - started
        ours = cluster.workers(client)[: min(len(part_urls), max_workers or len(part_urls))]
        used_device = cluster.device(client, ours, device)
        shape = f"{rows:,} rows x {len(spec.columns)} features"
        report(progress, "training", 0.0, f"Training on {shape}, {len(ours)} Dask workers.")
        t0 = time.perf_counter()
        work = (spec.to_dict(), classes, target, chosen_params, threads_per_worker, used_device)
        results = _train(client, ours, part_urls, work, progress)
        timings["train_s"] = time.perf_counter() - t0
    except BaseException:
        if ours:
            cluster.restart(client, ours)  # what is left of the fit must not hold the workers
        raise
    finally:
        client.close()
    summary = _summary(results, classes, chosen_params, target, used_device, len(part_urls))
    report(progress, "uploading")
    digest = _save(model_url, results, spec, classes, summary, scratch_dir, timings)
    return {"model_sha256": digest, "features": spec.to_dict(), **summary, "notes": spec.notes, "timings": timings}


def _train(
    client: Any, ours: list[str], part_urls: list[str], work: tuple[Any, ...], progress: Progress | None
) -> list[dict[str, Any]]:
    """One training task per worker, pinned to it, inside XGBoost's collective (tracker on the scheduler)."""
    n = len(ours)
    share = [part_urls[i::n] for i in range(n)]  # round robin: worker i gets parts i, i+n, ...
    spec_dict, classes, target, params, threads, used_device = work
    rounds = int(params.get("n_estimators", DEFAULT_ROUNDS))
    coll_args = client.run_on_scheduler(tasks.start_tracker, n, cluster.scheduler_host(client))
    topic = f"tabjob-fit-{uuid.uuid4().hex[:12]}"
    fixed = (spec_dict, classes, target, params, coll_args, rounds, threads, used_device, topic)
    futures = [
        client.submit(tasks.train_on_worker, urls, *fixed, workers=[w], allow_other_workers=False, pure=False)
        for w, urls in zip(ours, share, strict=True)
    ]
    return _follow(client, futures, ours, topic, progress)


def _summary(
    results: list[dict[str, Any]], classes: np.ndarray, params: dict[str, Any], target: str, device: str, parts: int
) -> dict[str, Any]:
    return {
        "target": target, "family": "xgboost", "device": device, "classes": [plain(c) for c in classes],
        "rows": int(sum(r["rows"] for r in results)), "iterations": int(params.get("n_estimators", DEFAULT_ROUNDS)),
        "best_iteration": None, "validation_score": None, "validation_rows": 0, "params": params,
        "engine": {"name": ENGINE, "workers": len(results)}, "parts": parts,
        "worker_peak_rss_bytes": sorted(r["peak_rss"] for r in results),
    }  # fmt: skip


def _save(
    model_url: str, results: list[dict[str, Any]], spec: FeatureSpec, classes: np.ndarray, summary: dict[str, Any],
    scratch_dir: str | None, timings: dict[str, float],
) -> str:  # fmt: skip
    """Rank 0's booster as an XGBoostModel in the ModelBundle every fit writes; its sha256
    (``timings`` gains ``upload_s``)."""
    t0 = time.perf_counter()
    model_bytes = next(r["model"] for r in results if r["rank"] == 0)
    estimator = XGBoostModel(model=model_bytes, classes=classes, feature_types=feature_types(spec), best_iteration=None)
    bundle = ModelBundle(
        estimator=estimator, spec=spec, classes=summary["classes"], trained_rows=summary["rows"],
        params=summary["params"], family="xgboost", device=summary["device"], target=summary["target"],
    )  # fmt: skip
    digest = save_bundle(model_url, bundle, scratch_dir)
    timings["upload_s"] = time.perf_counter() - t0
    return digest


def merge_scans(scans: list[dict[str, Any]]) -> tuple[FeatureSpec, np.ndarray, int]:
    """The encoding, classes and rows of the whole dataset from each part's scan."""
    for i, scan in enumerate(scans):
        if "problem" in scan:
            problem = scan["problem"]
            raise DataProblem(problem["code"], f"Part {i}: {problem['message']}", problem["hint"])
    first = scans[0]
    for i, scan in enumerate(scans[1:], start=1):
        if scan["schema"] != first["schema"]:
            raise DataProblem(
                "dataset.parts_differ",
                f"Part {i} does not have the columns and types of part 0.",
                "Write every part with the same columns, in the same order, with the same types.",
            )
    classes = np.unique(np.concatenate([s["classes"] for s in scans]))
    if len(classes) < 2:
        raise DataProblem(
            "dataset.single_class",
            f"The target has only one class ({plain(classes[0]) if len(classes) else 'none'}) across all parts.",
            "A classifier needs at least two classes in the training data.",
        )
    spec = FeatureSpec(columns=dict(first["kinds"]))
    for name in first["categories"]:
        totals: dict[str, int] = {}
        for scan in scans:
            for value, count in scan["categories"][name].items():
                totals[value] = totals.get(value, 0) + count
        ranked = sorted(totals, key=lambda v: -totals[v])  # stable: ties keep first-seen order
        spec.categories[name] = ranked[:MAX_CATEGORIES]
        if len(ranked) > MAX_CATEGORIES:
            spec.notes.append(
                f"Column '{name}' has {len(ranked):,} distinct values; the {MAX_CATEGORIES} "
                "most frequent are used as categories and the rest count as missing."
            )
    return spec, classes, int(sum(s["rows"] for s in scans))


def _follow(client: Any, futures: list[Any], ours: list[str], topic: str, progress: Progress | None) -> list[Any]:
    """Wait for the training tasks, relaying rounds as progress; raise ``WorkerLost`` when a
    worker of ours leaves (its peers would otherwise wait in an allreduce for ever)."""
    seen = 0
    while True:
        time.sleep(POLL_S)  # not distributed.wait: it needs a default client, and ours is not one
        failed = [f for f in futures if f.status == "error"]
        if failed:
            try:
                failed[0].result()  # raises the task's own exception
            except Exception as exc:
                # A peer's death reaches its partners as a failed allreduce, often before the
                # scheduler has noticed the worker is gone: both are the lost worker's doing.
                gone = set(ours) - set(cluster.workers(client))
                if gone or _collective_failed(exc):
                    names = ", ".join(sorted(gone)) or "(a peer)"
                    raise WorkerLost(f"Dask worker {names} left during the fit ({type(exc).__name__}).") from exc
                raise
        if all(f.status == "finished" for f in futures):
            return client.gather(futures)
        gone = set(ours) - set(cluster.workers(client))
        if gone or any(f.status == "cancelled" for f in futures):
            raise WorkerLost(f"Dask worker {', '.join(sorted(gone)) or '(unknown)'} left during the fit.")
        events = client.get_events(topic)
        if events and events[-1][1]["round"] != seen:
            seen = events[-1][1]["round"]
            report(progress, "training", seen / events[-1][1]["rounds"], None)


def _collective_failed(exc: BaseException) -> bool:
    """XGBoost's collective (ring allreduce over sockets) failed: a peer went away mid-round."""
    text = str(exc)
    return "Allreduce failed" in text or ("collective" in text.lower() and "socket" in text.lower())
