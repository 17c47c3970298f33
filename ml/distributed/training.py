"""A Dask worker's share of a collective fit, within a memory limit smaller than its data.

Where a worker's memory goes (measured on a 192 MiB ``dask worker``, docs/distributed.md): about
140 MiB before any data (Python, distributed, numpy, pyarrow, XGBoost: half of it the libraries'
mapped code), then XGBoost's training state, about 55 bytes per training row (gradients, the
prediction cache, labels, the row partitions), whatever the number of columns. So the quantised
matrix is not kept in memory: the worker's parts stream through a ``DataIter`` into an
``ExtMemQuantileDMatrix`` whose pages (one byte per cell at ``max_bin`` <= 256) are cached on the
worker's local disk and read back page by page while the trees grow; its bins come from the cut
table the client computed (``ml.distributed.cuts``), so no quantile sketch runs here. Batches are
sized from the worker's memory limit (``worker_env.batch_budget_bytes``). With early stopping,
about a tenth of the rows (chosen by a seeded draw per batch, the same on every pass) form an
in-memory validation matrix whose loss XGBoost allreduces, so every worker stops at the same round.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ml.distributed.reading import batch_matrices, batch_rows, feature_types
from ml.distributed.worker_env import (
    batch_budget_bytes,
    download,
    lean_imports,
    peak_rss,
    release,
    scratch,
    trim_memory,
)
from ml.features import FeatureSpec
from ml.metrics import REGRESSION

# How often (seconds) rank 0 reports training progress to the client.
PROGRESS_EVERY_S = 1.0
# As a single-node fit: a tenth of the rows validate, 10 rounds without improvement stop
# (ml.training.VALIDATION_FRACTION, ml.families.xgb.EARLY_STOPPING_ROUNDS).
VALIDATION_FRACTION = 0.1
EARLY_STOPPING_ROUNDS = 10
TRAIN, VALIDATION = "train", "validation"


def start_tracker(n_workers: int, host: str | None) -> dict[str, Any]:
    """Start XGBoost's collective tracker for ``n_workers`` and return the arguments each worker's
    communicator needs. Runs on the Dask scheduler (``client.run_on_scheduler``), where
    xgboost.dask also runs it: every worker can reach the scheduler, and a tabjob worker need not
    accept connections from the Dask workers."""
    import threading

    from xgboost.tracker import RabitTracker

    tracker = RabitTracker(n_workers=n_workers, host_ip=host, sortby="task")
    tracker.start()
    # The thread holds the tracker until every worker has finished (as xgboost.dask does).
    threading.Thread(target=tracker.wait_for, daemon=True, name="tabjob-xgboost-tracker").start()
    return dict(tracker.worker_args())


def booster_params(params: Mapping[str, Any], task: str, n_classes: int, nthread: int, device: str) -> dict[str, Any]:
    """XGBClassifier's or XGBRegressor's parameters as the Booster API takes them, with the
    objective each would choose."""
    chosen = {k: v for k, v in params.items() if k not in ("n_estimators", "early_stopping", "random_state")}
    chosen.update(tree_method="hist", device=device, nthread=nthread, seed=params.get("random_state", 0))
    if task == REGRESSION:
        chosen.update(objective="reg:squarederror")
    elif n_classes > 2:
        chosen.update(objective="multi:softprob", num_class=n_classes)
    else:
        chosen.update(objective="binary:logistic")
    return chosen


def train_on_worker(
    parts: list[tuple[int, str]],
    work: Mapping[str, Any],
    coll_args: Mapping[str, Any],
    progress_topic: str,
) -> dict[str, Any]:
    """One worker's share of a collective fit: its ``parts`` (part index, URL) streamed into an
    external-memory quantised matrix, then boosting rounds in XGBoost's collective (histograms
    allreduced across workers), with early stopping when ``work["stopping"]``.

    ``work``: ``spec`` (FeatureSpec as a dict), ``classes``, ``target``, ``task``, ``params``,
    ``rounds``, ``nthread``, ``device``, ``stopping``, ``seed`` and ``cuts`` (the cut table).
    Returns the model (UBJSON bytes, from rank 0 only), the rows trained and validated here, the
    validation labels and predictions (for the metrics), the best round, the rank and the
    worker's peak resident memory in bytes."""
    lean_imports()
    import xgboost
    from distributed import get_worker
    from xgboost import collective

    worker = get_worker()
    gc.collect()
    trim_memory()  # what earlier tasks (the scans) freed, so that it does not count in this one's RSS
    local = [(index, *download(url)) for index, url in parts]
    cache = Path(tempfile.mkdtemp(prefix="tabjob-xgb-", dir=scratch()))
    try:
        source = _Source([(i, p) for i, p, _ in local], work)
        # The cuts, outside the collective: every worker builds them from the same table.
        ref = xgboost.QuantileDMatrix(
            work["cuts"], max_bin=_max_bin(work), feature_types=source.types, enable_categorical=True, nthread=1
        )
        task_id = f"[tabjob-dask-{worker.name}]:{worker.address}"  # ranks follow task ids, as in xgboost.dask
        with collective.CommunicatorContext(**coll_args, dmlc_task_id=task_id):
            rank = collective.get_rank()
            train, valid = _matrices(xgboost, source, ref, cache, work)
            del ref
            trim_memory()
            evals = [(valid, VALIDATION)] if valid is not None else []
            callbacks = [_trimming(), *([_progress(worker, progress_topic, work["rounds"])] if rank == 0 else [])]
            booster = xgboost.train(
                booster_params(work["params"], work["task"], len(work["classes"]), work["nthread"], work["device"]),
                train, num_boost_round=work["rounds"], evals=evals, callbacks=callbacks, verbose_eval=False,
                early_stopping_rounds=EARLY_STOPPING_ROUNDS if evals else None,
            )  # fmt: skip
            best = booster.best_iteration if evals else None
            scored = _validation_outputs(booster, valid, best) if valid is not None else None
            model = bytes(booster.save_raw(raw_format="ubj")) if rank == 0 else None
            rows = train.num_row()
            del train, valid  # XGBoost removes its page files as the matrix goes
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        for _, path, temporary in local:
            release(path, temporary)
    return {
        "rank": rank, "model": model, "rows": rows, "validation": scored, "best_iteration": best,
        "rounds": int(booster.num_boosted_rounds()), "worker": worker.address, "peak_rss": peak_rss(),
    }  # fmt: skip


def _max_bin(work: Mapping[str, Any]) -> int:
    return int(work["params"].get("max_bin", 256))


def _matrices(xgboost: Any, source: _Source, ref: Any, cache: Path, work: Mapping[str, Any]) -> tuple[Any, Any]:
    """The training matrix (external memory, pages under ``cache``) and, with early stopping, the
    validation matrix (in memory: a tenth of the rows), both binned by ``ref``'s cuts (the
    validation matrix through the training one, as XGBoost requires of an evaluation matrix)."""
    on_host = work["device"] == "cuda"  # GPU workers cache pages in host memory, CPU workers on disk
    train_iter = _iterator(xgboost, source, TRAIN if work["stopping"] else None, str(cache / "train"), on_host)
    train = xgboost.ExtMemQuantileDMatrix(
        train_iter, max_bin=_max_bin(work), ref=ref, enable_categorical=True, nthread=work["nthread"]
    )
    if not work["stopping"]:
        return train, None
    valid_iter = _iterator(xgboost, source, VALIDATION, None, on_host)
    valid = xgboost.QuantileDMatrix(
        valid_iter, max_bin=_max_bin(work), ref=train, enable_categorical=True, nthread=work["nthread"]
    )
    return train, valid


def _validation_outputs(booster: Any, valid: Any, best: int | None) -> dict[str, np.ndarray]:
    """This worker's validation labels and the model's outputs there, up to the best round."""
    rounds = (0, best + 1) if best is not None else (0, 0)
    return {"labels": valid.get_label(), "outputs": booster.predict(valid, iteration_range=rounds)}


class _Source:
    """A worker's parts read in batches, split into training and validation rows.

    The validation rows of a batch are drawn with a generator seeded by the fit's seed, the part and
    the batch's position, so both matrices and both of XGBoost's passes see the same split."""

    def __init__(self, paths: list[tuple[int, Path]], work: Mapping[str, Any]) -> None:
        self.paths = paths
        self.spec = FeatureSpec.from_dict(work["spec"])
        self.types = feature_types(self.spec)
        self.target, self.seed = work["target"], int(work["seed"])
        self.classes = None if work["task"] == REGRESSION else np.asarray(work["classes"])
        self.rows_per_batch = batch_rows(len(self.spec.columns), batch_budget_bytes())

    def batches(self, rows: str | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every batch's features and labels; ``rows``: TRAIN or VALIDATION rows only, None for all."""
        for index, path in self.paths:
            batches = batch_matrices(path, self.spec, self.target, self.classes, rows_per_batch=self.rows_per_batch)
            for number, (X, labels) in enumerate(batches):
                assert labels is not None
                if rows is not None:
                    draw = np.random.default_rng([self.seed, index, number]).random(len(labels))
                    chosen = draw < VALIDATION_FRACTION if rows == VALIDATION else draw >= VALIDATION_FRACTION
                    X, labels = X[chosen], labels[chosen]
                if len(labels):
                    yield X, labels


def _iterator(xgboost: Any, source: _Source, rows: str | None, cache_prefix: str | None, on_host: bool) -> Any:
    """XGBoost's ``DataIter`` over ``source`` (XGBoost passes over it more than once). Defined here,
    not at module level, so importing this module never imports XGBoost (``worker_env.lean_imports``)."""

    class PartsIter(xgboost.DataIter):
        def __init__(self) -> None:
            self._batches: Iterator[tuple[np.ndarray, np.ndarray]] | None = None
            super().__init__(cache_prefix=cache_prefix, release_data=True, on_host=on_host)

        def next(self, input_data: Any) -> bool:
            if self._batches is None:
                self._batches = source.batches(rows)
            for X, labels in self._batches:
                input_data(data=X, label=labels, feature_types=source.types)
                return True
            return False

        def reset(self) -> None:
            self._batches = None

    return PartsIter()


def _trimming() -> Any:
    """A callback that hands freed heap pages back after every round (``worker_env.trim_memory``):
    XGBoost's per-round buffers otherwise ratchet the worker's RSS up by a few MiB over the rounds."""
    import xgboost

    class Trim(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            trim_memory()
            return False

    return Trim()


def _progress(worker: Any, topic: str, rounds: int) -> Any:
    """Reports each boosting round to the client as a Dask event (rank 0 only, at most once a
    second): ``client.get_events(topic)`` reads them."""
    import xgboost

    class Progress(xgboost.callback.TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.last = 0.0

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            now = time.monotonic()
            if now - self.last >= PROGRESS_EVERY_S or epoch + 1 == rounds:
                self.last = now
                worker.log_event(topic, {"round": epoch + 1, "rounds": rounds})
            return False  # stopping is early stopping's call alone: every rank must run the same rounds

    return Progress()
