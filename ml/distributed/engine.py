"""The Dask client side of a distributed fit or predict, run in a tabjob job process.

The job process that runs the job is the Dask client: it scans the parts, learns the encoding,
starts XGBoost's tracker on the scheduler, hands each Dask worker its parts (presigned URLs, never
store credentials), follows the training and writes the model in the same bundle format as every
fit. It watches the workers it gave work to: one that leaves mid-fit makes the fit fail with
``WorkerLost`` (the service retries it) rather than wait on an allreduce that never completes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from ml import families
from ml.bundle import ModelBundle, load_bundle, save_bundle
from ml.distributed import tasks
from ml.errors import DataProblem
from ml.families.xgb import XGBoostModel
from ml.features import MAX_CATEGORIES, FeatureSpec
from ml.io import Progress, report
from ml.training import plain

ENGINE = "dask"
# XGBClassifier's default number of boosting rounds.
DEFAULT_ROUNDS = 100
CONNECT_TIMEOUT_S = 10.0
# How long a fit waits for a first Dask worker (a cluster scaled to zero starts one on demand).
WORKERS_WAIT_S = 300.0
POLL_S = 0.5


class ClusterUnavailable(RuntimeError):
    """The Dask scheduler cannot be reached or has no worker: a platform failure (retried)."""


class WorkerLost(RuntimeError):
    """A Dask worker holding part of the job left before the job ended: a platform failure (retried)."""


def connect(scheduler: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A Dask client of the scheduler at ``scheduler`` (``tcp://host:port``)."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        reason = type(exc).__name__
        raise ClusterUnavailable(f"The Dask scheduler at {scheduler} cannot be reached ({reason}).") from exc


def _workers(client: Any) -> list[str]:
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def _wait_for_workers(client: Any, wait_s: float, count: int = 1) -> list[str]:
    try:
        client.wait_for_workers(count, timeout=wait_s)
    except (TimeoutError, OSError) as exc:
        raise ClusterUnavailable(f"The Dask cluster has fewer than {count} workers after {wait_s:g} s.") from exc
    return _workers(client)


def free_workers(scheduler: str, workers: list[str] | None = None) -> list[str]:
    """Restart Dask workers (all of them by default), so a canceled, timed-out or failed job's
    tasks stop and its memory returns; their nannies start fresh worker processes. Returns the
    addresses restarted. A Dask task running native code cannot be interrupted any other way."""
    client = connect(scheduler)
    try:
        present = set(_workers(client))
        chosen = sorted(present if workers is None else present & set(workers))
        if chosen:
            client.restart_workers(chosen, raise_for_error=False)
        return chosen
    finally:
        client.close()


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
      params: the xgboost family's parameters (``ml.families.xgb.TUNABLE_PARAMS``); early
        stopping is not done on this engine.
      max_workers: use at most this many Dask workers (never more than there are parts).
      threads_per_worker: XGBoost threads in each Dask worker (its cores).
      device: ``cpu``, ``cuda`` or ``auto``: what the Dask workers train on (``auto``: ``cuda``
        when the workers report a GPU, see ``ml.device``).
      workers_wait_s, min_workers: wait up to this long for at least this many Dask workers (a
        retry after a lost worker waits for its replacement, so no worker gets twice its share).

    Returns the fit summary every fit returns, plus ``engine`` ({"name": "dask", "workers": N})
    and ``worker_peak_rss_bytes`` (each Dask worker process's peak resident memory, ascending).

    Raises:
      DataProblem: a part cannot train, or the parts do not share one schema.
      ClusterUnavailable, WorkerLost: the cluster failed (retry).
    """
    chosen = families.family("xgboost")
    chosen_params = families.chosen_params(chosen, params)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    client = connect(scheduler)
    ours: list[str] = []
    finished = False
    try:
        report(progress, "waiting", None, "Waiting for Dask workers.")
        present = _wait_for_workers(client, workers_wait_s, min_workers)
        report(progress, "validating", 0.0, f"Scanning {len(part_urls)} parts on {len(present)} Dask workers.")
        scans = client.gather([client.submit(tasks.scan_part, url, target, pure=False, retries=2) for url in part_urls])
        spec, classes, rows = _merge_scans(scans)
        timings["scan_s"] = time.perf_counter() - started

        ours = _workers(client)[: min(len(part_urls), max_workers or len(part_urls))]
        n = len(ours)
        used_device = _device(client, ours, device)
        share = [part_urls[i::n] for i in range(n)]  # round robin: worker i gets parts i, i+n, ...
        rounds = int(chosen_params.get("n_estimators", DEFAULT_ROUNDS))
        host = _scheduler_host(client)
        coll_args = client.run_on_scheduler(tasks.start_tracker, n, host)
        topic = f"tabjob-fit-{uuid.uuid4().hex[:12]}"
        shape = f"{rows:,} rows x {len(spec.columns)} features"
        report(progress, "training", 0.0, f"Training on {shape}, {n} Dask workers.")
        t0 = time.perf_counter()
        work = (spec.to_dict(), classes, target, chosen_params, coll_args, rounds, threads_per_worker, used_device)
        futures = [
            client.submit(tasks.train_on_worker, urls, *work, topic, workers=[w], allow_other_workers=False, pure=False)
            for w, urls in zip(ours, share, strict=True)
        ]
        results = _follow(client, futures, ours, topic, progress)
        timings["train_s"] = time.perf_counter() - t0
        finished = True
    finally:
        if not finished and ours:
            _restart(client, ours)
        client.close()

    model_bytes = next(r["model"] for r in results if r["rank"] == 0)
    estimator = XGBoostModel(
        model=model_bytes, classes=classes, feature_types=tasks._feature_types(spec), best_iteration=None
    )
    summary: dict[str, Any] = {
        "target": target,
        "family": chosen.name,
        "device": used_device,
        "classes": [plain(c) for c in classes],
        "rows": int(sum(r["rows"] for r in results)),
        "iterations": rounds,
        "best_iteration": None,
        "validation_score": None,
        "validation_rows": 0,
        "params": chosen_params,
        "engine": {"name": ENGINE, "workers": n},
        "parts": len(part_urls),
        "worker_peak_rss_bytes": sorted(r["peak_rss"] for r in results),
    }
    report(progress, "uploading")
    t0 = time.perf_counter()
    bundle = ModelBundle(
        estimator=estimator, spec=spec, classes=summary["classes"], trained_rows=summary["rows"],
        params=chosen_params, family=chosen.name, device=used_device, target=target,
    )  # fmt: skip
    digest = save_bundle(model_url, bundle, scratch_dir)
    timings["upload_s"] = time.perf_counter() - t0
    return {"model_sha256": digest, "features": spec.to_dict(), **summary, "notes": spec.notes, "timings": timings}


def _merge_scans(scans: list[dict[str, Any]]) -> tuple[FeatureSpec, np.ndarray, int]:
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


def _scheduler_host(client: Any) -> str | None:
    from distributed.comm import get_address_host

    try:
        return get_address_host(client.scheduler.address)
    except ValueError:
        return None


def _device(client: Any, workers: list[str], requested: str | None) -> str:
    """The device the Dask workers train on: asked for, or ``cuda`` when each reports a GPU."""
    if requested in ("cpu", "cuda"):
        return requested
    found = client.run(tasks.worker_device, requested, workers=workers)
    return "cuda" if all(d == "cuda" for d in found.values()) else "cpu"


def _follow(client: Any, futures: list[Any], workers: list[str], topic: str, progress: Progress | None) -> list[Any]:
    """Wait for the training tasks, relaying rounds as progress; raise ``WorkerLost`` when a
    worker of ours leaves (its peers would otherwise wait in an allreduce for ever)."""
    seen = 0.0
    while True:
        time.sleep(POLL_S)  # not distributed.wait: it needs a default client, and ours is not one
        failed = [f for f in futures if f.status == "error"]
        if failed:
            failed[0].result()  # raises the task's own exception
        if all(f.status == "finished" for f in futures):
            return client.gather(futures)
        gone = set(workers) - set(_workers(client))
        if gone or any(f.status == "cancelled" for f in futures):
            raise WorkerLost(f"Dask worker {', '.join(sorted(gone)) or '(unknown)'} left during the fit.")
        events = client.get_events(topic)
        if events:
            last = events[-1][1]
            if last["round"] != seen:
                seen = last["round"]
                report(progress, "training", last["round"] / last["rounds"], None)


def _restart(client: Any, workers: list[str]) -> None:
    """Stop what is left of a failed fit on ``workers`` (an allreduce waiting on a lost peer never
    returns by itself)."""
    present = set(_workers(client))
    alive = [w for w in workers if w in present]
    if alive:
        client.restart_workers(alive, raise_for_error=False)


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
    to ``result_urls[i]`` (a Parquet file with one column ``y``), in order.

    Returns the predict summary (rows, family, device, timings) plus ``engine`` and ``parts``.
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
    estimator = bundle.estimator
    model = {
        "model": estimator.model,
        "classes": estimator.classes,
        "feature_types": estimator.feature_types,
        "best_iteration": estimator.best_iteration,
    }
    timings["load_s"] = time.perf_counter() - started
    client = connect(scheduler)
    try:
        report(progress, "waiting", None, "Waiting for Dask workers.")
        workers = _wait_for_workers(client, workers_wait_s, min_workers)
        used_device = _device(client, workers, device)
        shared = client.scatter(model, broadcast=True)
        t0 = time.perf_counter()
        report(progress, "predicting", 0.0, f"Predicting {len(part_urls)} parts on {len(workers)} Dask workers.")
        work = (bundle.spec.to_dict(), shared, bundle.target, used_device)
        futures = [
            client.submit(tasks.predict_part, url, out, *work, pure=False, retries=2)
            for url, out in zip(part_urls, result_urls, strict=True)
        ]
        outcomes: dict[int, dict[str, Any]] = {}
        while len(outcomes) < len(futures):
            time.sleep(POLL_S)  # Dask retries a part whose worker was lost (retries=2)
            for i, future in enumerate(futures):
                if i not in outcomes and future.status in ("finished", "error"):
                    outcomes[i] = future.result()  # raises the task's error
                    report(progress, "predicting", len(outcomes) / len(futures), None)
        timings["predict_s"] = time.perf_counter() - t0
    finally:
        client.close()
    return {
        "rows": int(sum(o["rows"] for o in outcomes.values())),
        "family": bundle.family,
        "device": used_device,
        "engine": {"name": ENGINE, "workers": len(workers)},
        "parts": len(part_urls),
        "part_rows": [outcomes[i]["rows"] for i in range(len(futures))],
        "timings": timings,
    }
