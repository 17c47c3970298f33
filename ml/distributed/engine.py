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
from ml.distributed import cluster, tasks, training
from ml.distributed.cluster import ENGINE, POLL_S, WORKERS_WAIT_S, ClusterUnavailable, WorkerLost, connect
from ml.distributed.cuts import cut_table
from ml.distributed.predicting import predict
from ml.distributed.reading import feature_types
from ml.errors import DataProblem
from ml.families.xgb import XGBoostModel
from ml.features import MAX_CATEGORIES, FeatureSpec
from ml.io import Progress, report
from ml.metrics import CLASSIFICATION, DEFAULT_METRIC, REGRESSION, metrics_for
from ml.training import EARLY_STOPPING_AUTO_ROWS, plain

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
    task: str | None = None,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    device: str | None = None,
    max_workers: int | None = None,
    threads_per_worker: int = 1,
    workers_wait_s: float = WORKERS_WAIT_S,
    min_workers: int = 1,
) -> dict[str, Any]:
    """Train an XGBoost classifier or regressor on the Parquet parts at ``part_urls`` on the Dask
    cluster at ``scheduler``; write the ModelBundle (the one every fit writes) to ``model_url``.

    ``params``: the xgboost family's (early stopping as on one node, ``ml.training``); ``task``:
    classification (None) or regression; at most ``max_workers`` Dask workers (never more than
    parts), ``threads_per_worker`` XGBoost threads each, on ``device`` (cpu, cuda, auto); waits
    ``workers_wait_s`` for ``min_workers`` (a retry waits for a lost worker's replacement).

    Returns the summary every fit returns, plus ``engine`` ({"name": "dask", "workers": N}),
    ``parts`` and ``worker_peak_rss_bytes``. Raises ``DataProblem`` (a part cannot train, the
    parts differ) or ``ClusterUnavailable``/``WorkerLost`` (the cluster failed: retry).
    """
    task = task or CLASSIFICATION
    chosen_params = families.chosen_params(families.family("xgboost"), params)
    seed = int(chosen_params.get("random_state", 0))
    started, client, ours, timings = time.perf_counter(), connect(scheduler), [], dict[str, float]()
    try:
        report(progress, "waiting", None, "Waiting for Dask workers.")
        present = cluster.wait_for_workers(client, workers_wait_s, min_workers)
        report(progress, "validating", 0.0, f"Scanning {len(part_urls)} parts on {len(present)} Dask workers.")
        scans, spec, classes, rows, cuts = _scan(client, part_urls, target, task, seed, chosen_params)
        timings["scan_s"] = time.perf_counter() - started
        ours = cluster.workers(client)[: min(len(part_urls), max_workers or len(part_urls))]
        stopping = _early_stopping(chosen_params, rows)
        work = {
            "spec": spec.to_dict(), "classes": classes, "target": target, "task": task, "params": chosen_params,
            "rounds": int(chosen_params.get("n_estimators", DEFAULT_ROUNDS)), "nthread": threads_per_worker,
            "device": cluster.device(client, ours, device), "stopping": stopping, "seed": seed, "cuts": cuts,
        }  # fmt: skip
        report(progress, "training", 0.0, f"Training a {task} on {rows:,} rows x {len(spec.columns)} features, "
               f"{len(ours)} Dask workers.")  # fmt: skip
        t0 = time.perf_counter()
        results = _train(client, ours, part_urls, work, progress)
        timings["train_s"] = time.perf_counter() - t0
    except BaseException:
        if ours:
            cluster.restart(client, ours)  # what is left of the fit must not hold the workers
        raise
    finally:
        client.close()
    summary = _summary(results, classes, chosen_params, work, len(part_urls), scans)
    report(progress, "uploading")
    digest = _save(model_url, results, spec, classes, summary, scratch_dir, timings)
    return {"model_sha256": digest, "features": spec.to_dict(), **summary, "notes": spec.notes, "timings": timings}


def _scan(
    client: Any, part_urls: list[str], target: str, task: str, seed: int, params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], Any, Any, int, Any]:
    """Scan every part on the workers (schema, rows, classes, a sample each); merge them into one
    spec and the bin cuts of the whole dataset (from the parts' samples)."""
    scans = client.gather([client.submit(tasks.scan_part, url, target, task, seed + i, pure=False, retries=2)
                           for i, url in enumerate(part_urls)])  # fmt: skip
    spec, classes, rows = merge_scans(scans, task)
    cuts = cut_table([s.pop("sample") for s in scans], [s["rows"] for s in scans], spec,
                     int(params.get("max_bin", 256)))  # fmt: skip
    return scans, spec, classes, rows, cuts


def _early_stopping(params: Mapping[str, Any], rows: int) -> bool:
    """A single-node fit's rule (``ml.training.validation_split``): on when asked, or for "auto"
    above 10,000 rows."""
    early = params.get("early_stopping", "auto")
    return early is True or (early == "auto" and rows > EARLY_STOPPING_AUTO_ROWS)


def _train(
    client: Any, ours: list[str], part_urls: list[str], work: dict[str, Any], progress: Progress | None
) -> list[dict[str, Any]]:
    """One training task per worker, pinned to it, inside XGBoost's collective (tracker on the scheduler)."""
    n = len(ours)
    indexed = list(enumerate(part_urls))
    share = [indexed[i::n] for i in range(n)]  # round robin: worker i gets parts i, i+n, ...
    coll_args = client.run_on_scheduler(training.start_tracker, n, cluster.scheduler_host(client))
    topic = f"tabjob-fit-{uuid.uuid4().hex[:12]}"
    futures = [
        client.submit(training.train_on_worker, parts, work, coll_args, topic, workers=[w],
                      allow_other_workers=False, pure=False)
        for w, parts in zip(ours, share, strict=True)
    ]  # fmt: skip
    return _follow(client, futures, ours, topic, progress)


def _summary(
    results: list[dict[str, Any]], classes: np.ndarray, params: dict[str, Any], work: dict[str, Any], parts: int,
    scans: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    task = work["task"]
    best = results[0]["best_iteration"]
    metrics, validation_rows = _validation_metrics(results, task, classes)
    trained_rows = int(sum(r["rows"] for r in results))
    summary = {
        "task": task, "target": work["target"], "family": "xgboost", "device": work["device"],
        "classes": [plain(c) for c in classes], "rows": trained_rows + validation_rows,
        "iterations": int(results[0]["rounds"]), "best_iteration": best,
        "validation_score": None if metrics is None else metrics[DEFAULT_METRIC[task]],
        "validation_rows": validation_rows, "validation_metrics": metrics, "params": params,
        "engine": {"name": ENGINE, "workers": len(results)}, "parts": parts,
        "worker_peak_rss_bytes": sorted(r["peak_rss"] for r in results),
    }  # fmt: skip
    if task == REGRESSION:
        sums = [s["target_sums"] for s in scans if s["target_sums"] and s["target_sums"][0]]
        count = sum(s[0] for s in sums)
        summary["target_range"] = {"min": min(s[2] for s in sums), "max": max(s[3] for s in sums),
                                   "mean": sum(s[1] for s in sums) / count}  # fmt: skip
    return summary


def _validation_metrics(
    results: list[dict[str, Any]], task: str, classes: np.ndarray
) -> tuple[dict[str, Any] | None, int]:
    """Every metric of ``task`` (``ml.metrics``) on the rows the workers held out, and their count."""
    scored = [r["validation"] for r in results if r["validation"] is not None]
    if not scored:
        return None, 0
    labels = np.concatenate([s["labels"] for s in scored])
    outputs = np.concatenate([s["outputs"] for s in scored])
    if task == REGRESSION:
        return metrics_for(task, labels, outputs), len(labels)
    proba = outputs if outputs.ndim == 2 else np.column_stack([1.0 - outputs, outputs])
    truth = classes[labels.astype(np.int64)]
    return metrics_for(task, truth, classes[proba.argmax(axis=1)], proba, classes), len(labels)


def _save(
    model_url: str, results: list[dict[str, Any]], spec: FeatureSpec, classes: np.ndarray, summary: dict[str, Any],
    scratch_dir: str | None, timings: dict[str, float],
) -> str:  # fmt: skip
    """Rank 0's booster as an XGBoostModel in the ModelBundle every fit writes; its sha256
    (``timings`` gains ``upload_s``)."""
    t0 = time.perf_counter()
    model_bytes = next(r["model"] for r in results if r["rank"] == 0)
    estimator = XGBoostModel(
        model=model_bytes, classes=classes, feature_types=feature_types(spec),
        best_iteration=summary["best_iteration"], task=summary["task"],
    )  # fmt: skip
    bundle = ModelBundle(
        estimator=estimator, spec=spec, classes=summary["classes"], trained_rows=summary["rows"],
        params=summary["params"], family="xgboost", device=summary["device"], target=summary["target"],
    )  # fmt: skip
    digest = save_bundle(model_url, bundle, scratch_dir)
    timings["upload_s"] = time.perf_counter() - t0
    return digest


def merge_scans(scans: list[dict[str, Any]], task: str = CLASSIFICATION) -> tuple[FeatureSpec, np.ndarray, int]:
    """The encoding, classes (none for a regression) and rows of the whole dataset from each part's scan."""
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
    if task != REGRESSION and len(classes) < 2:
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
