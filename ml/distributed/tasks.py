"""What runs on a Dask worker: scan a part, train on the worker's parts, predict a part.

A Dask worker holds no store credentials: every part arrives as a presigned URL. A worker's
memory limit is small next to the data (the embedded stack's default is 192 MiB per worker), so
nothing here holds a whole part as a matrix: each part is downloaded to the worker's scratch disk,
read one row group and one column at a time (``ml.distributed.reading``), and streamed into
XGBoost's ``QuantileDMatrix`` through a ``DataIter``, which keeps only the quantised matrix (one
byte per cell at ``max_bin`` <= 256, a quarter of float32). Nothing here imports scikit-learn or
pandas (``ml.distributed.worker_env.lean_imports``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.distributed.reading import batch_matrices, feature_types, plain_type
from ml.distributed.worker_env import download, lean_imports, peak_rss, release, scratch
from ml.errors import DataProblem
from ml.features import FeatureSpec
from ml.io import write_file
from ml.schema import CATEGORICAL, TARGET, check_predict_schema, check_training_schema, nan_as_null

# How often (seconds) rank 0 reports training progress to the client.
PROGRESS_EVERY_S = 1.0


def scan_part(url: str, target: str) -> dict[str, Any]:
    """What a fit needs to know of one part before training: its schema and feature kinds, the rows
    that have a target, the target's distinct values and each categorical column's value counts.

    Reads the target and the categorical columns only. Raises ``DataProblem`` for a part that
    cannot train (the same checks as a single file): returned as ``{"problem": {code, message,
    hint}}``."""
    path, temporary = download(url)
    try:
        return _scan(path, target)
    except DataProblem as problem:  # returned, not raised: its three-argument constructor does not unpickle
        return {"problem": {"code": problem.code, "message": problem.message, "hint": problem.hint}}
    finally:
        release(path, temporary)


def _scan(path: Path, target: str) -> dict[str, Any]:
    source = pq.ParquetFile(path)
    kinds = check_training_schema(source.schema_arrow, source.metadata.num_rows, target)
    y = nan_as_null(source.read(columns=[target]).column(0))
    if pa.types.is_dictionary(y.type):
        y = y.cast(y.type.value_type)
    counts: dict[str, dict[str, int]] = {}
    for name, kind in kinds.items():
        if kind == CATEGORICAL:
            column = pc.cast(plain_type(source.read(columns=[name]).column(0)), pa.string())
            found = pc.value_counts(pc.drop_null(column))
            counts[name] = dict(zip(found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True))
    return {
        "schema": source.schema_arrow.remove_metadata().to_string(),
        "kinds": kinds,
        "rows": len(y) - y.null_count,
        "classes": np.unique(pc.drop_null(y).to_numpy(zero_copy_only=False)),
        "categories": counts,
    }


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


def booster_params(params: Mapping[str, Any], n_classes: int, nthread: int, device: str) -> dict[str, Any]:
    """XGBClassifier's parameters as the Booster API takes them, with the objective it would choose."""
    chosen = {k: v for k, v in params.items() if k not in ("n_estimators", "early_stopping", "random_state")}
    chosen.update(tree_method="hist", device=device, nthread=nthread, seed=params.get("random_state", 0))
    if n_classes > 2:
        chosen.update(objective="multi:softprob", num_class=n_classes)
    else:
        chosen.update(objective="binary:logistic")
    return chosen


def train_on_worker(
    urls: list[str],
    spec_dict: Mapping[str, Any],
    classes: np.ndarray,
    target: str,
    params: Mapping[str, Any],
    coll_args: Mapping[str, Any],
    rounds: int,
    nthread: int,
    device: str,
    progress_topic: str,
) -> dict[str, Any]:
    """One worker's share of a collective fit: its parts streamed into a QuantileDMatrix, then
    ``rounds`` boosting rounds in XGBoost's collective (histograms allreduced across workers).

    Returns the model (UBJSON bytes, from rank 0 only), the rows this worker trained on, its rank
    and its peak resident memory in bytes."""
    lean_imports()
    import xgboost
    from distributed import get_worker
    from xgboost import collective

    worker = get_worker()
    spec = FeatureSpec.from_dict(spec_dict)
    local = [download(url) for url in urls]
    try:
        # Ranks follow the task ids; the same scheme as xgboost.dask's CommunicatorContext.
        task_id = f"[tabjob-dask-{worker.name}]:{worker.address}"
        with collective.CommunicatorContext(**coll_args, dmlc_task_id=task_id):
            rank = collective.get_rank()
            batches = _parts_iter([p for p, _ in local], spec, target, classes)
            matrix = xgboost.QuantileDMatrix(
                batches, max_bin=int(params.get("max_bin", 256)), enable_categorical=True, nthread=nthread
            )
            callbacks = [_progress(worker, progress_topic, rounds)] if rank == 0 else []
            booster = xgboost.train(
                booster_params(params, len(classes), nthread, device),
                matrix,
                num_boost_round=rounds,
                callbacks=callbacks,
                verbose_eval=False,
            )
            model = bytes(booster.save_raw(raw_format="ubj")) if rank == 0 else None
            rows = matrix.num_row()
    finally:
        for path, temporary in local:
            release(path, temporary)
    return {"rank": rank, "model": model, "rows": rows, "worker": worker.address, "peak_rss": peak_rss()}


def _parts_iter(paths: list[Path], spec: FeatureSpec, target: str, classes: np.ndarray) -> Any:
    """XGBoost's ``DataIter`` over a worker's parts, in batches of rows (XGBoost passes over
    it twice: once to sketch the quantiles, once to quantise). Defined here, not at module level,
    so importing this module never imports XGBoost (see ``ml.distributed.worker_env.lean_imports``)."""
    import xgboost

    class PartsIter(xgboost.DataIter):
        def __init__(self, paths: list[Path], spec: FeatureSpec, target: str, classes: np.ndarray) -> None:
            self.paths, self.spec, self.target, self.classes = paths, spec, target, classes
            self.feature_types = feature_types(spec)
            self._batches: Iterator[tuple[np.ndarray, np.ndarray | None]] | None = None
            super().__init__(cache_prefix=None)

        def _all(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
            for path in self.paths:
                yield from batch_matrices(path, self.spec, self.target, self.classes)

        def next(self, input_data: Any) -> bool:
            if self._batches is None:
                self._batches = self._all()
            for X, codes in self._batches:
                if len(X):
                    input_data(data=X, label=codes, feature_types=self.feature_types)
                    return True
            return False

        def reset(self) -> None:
            self._batches = None

    return PartsIter(paths, spec, target, classes)


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
            return False  # never stop early: every rank must run the same rounds

    return Progress()


def predict_part(
    url: str,
    result_url: str,
    spec_dict: Mapping[str, Any],
    model: Mapping[str, Any],
    target: str,
    device: str,
) -> dict[str, Any]:
    """Predict every row of one part with an XGBoost model and write a Parquet file with one column
    (the target's name) to ``result_url``. ``model``: the booster's UBJSON bytes (``model``), the
    ``classes``, ``feature_types`` and ``best_iteration`` of an ``XGBoostModel``."""
    lean_imports()
    import xgboost

    spec = FeatureSpec.from_dict(spec_dict)
    booster = xgboost.Booster(model_file=bytearray(model["model"]))
    booster.set_param({"device": device, "nthread": 1})
    best = model.get("best_iteration")
    rounds = (0, best + 1) if best is not None else (0, 0)
    classes = np.asarray(model["classes"])
    path, temporary = download(url)
    labels: list[np.ndarray] = []
    try:
        source = pq.ParquetFile(path)
        check_predict_schema(source.schema_arrow, source.metadata.num_rows, spec.columns, target)
        for X, _ in batch_matrices(path, spec, None, None):
            matrix = xgboost.DMatrix(X, feature_types=model["feature_types"], enable_categorical=True)
            probabilities = booster.predict(matrix, iteration_range=rounds)
            codes = probabilities.argmax(axis=1) if probabilities.ndim == 2 else (probabilities > 0.5).astype(np.int64)
            labels.append(classes[codes])
    finally:
        release(path, temporary)
    predicted = np.concatenate(labels) if labels else classes[:0]
    fd, name = tempfile.mkstemp(prefix="tabjob-", suffix=".parquet", dir=scratch())
    os.close(fd)
    try:
        pq.write_table(pa.table({TARGET: pa.array(predicted)}), name)
        write_file(result_url, Path(name))
    finally:
        os.unlink(name)
    return {"rows": len(predicted), "peak_rss": peak_rss()}
