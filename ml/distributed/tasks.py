"""What runs on a Dask worker: scan a part, train on the worker's parts, predict a part.

A Dask worker holds no store credentials: every part arrives as a presigned URL. A worker's
memory limit is small next to the data (the embedded stack's default is 192 MiB per worker), so
nothing here holds a whole part as a matrix: each part is downloaded to the worker's scratch disk,
read one row group and one column at a time, and streamed into XGBoost's ``QuantileDMatrix`` through a
``DataIter``, which keeps only the quantised matrix (one byte per cell at ``max_bin`` <= 256,
a quarter of float32). This module imports neither scikit-learn nor pandas (see ``lean_imports``).
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.errors import DataProblem
from ml.features import FeatureSpec
from ml.io import fetch_to_file, write_file
from ml.schema import CATEGORICAL, TARGET, check_predict_schema, check_training_schema, nan_as_null

# Rows per batch handed to XGBoost (views of one row group's matrix).
BATCH_ROWS = 32_768
READ_BUFFER_BYTES = 1 << 20
# How often (seconds) rank 0 reports training progress to the client.
PROGRESS_EVERY_S = 1.0


def lean_imports() -> None:
    """Keep scikit-learn and pandas (and the scipy they drag in) out of a Dask worker.

    ``import xgboost`` imports scikit-learn for its estimator wrappers when it is installed, and
    pyarrow imports pandas on its first ``pa.array`` or ``to_numpy`` (measured in a ``dask worker``
    process: 112 MiB RSS idle, 169 MiB after pyarrow pulled pandas in, 190 MiB with XGBoost and
    scikit-learn; 135 MiB with XGBoost alone), which would leave a 192 MiB worker nothing for data.
    Both treat the module as optional, and the worker's tasks use neither (XGBoost's Booster API,
    pyarrow and numpy), so they are marked absent before anything imports them. Called by the
    worker preload (``ml.distributed.preload``) and again by each task; a no-op in a process that
    already imported any of them (a tabjob job process, a test)."""
    if not any(name in sys.modules for name in (*_KEPT_OUT, "xgboost")):
        # A finder, not ``sys.modules[name] = None``: pyarrow's pandas shim reads sys.modules directly.
        sys.meta_path.insert(0, _KeepOut())


_KEPT_OUT = ("sklearn", "pandas")


class _KeepOut(importlib.abc.MetaPathFinder):
    """Makes ``import sklearn`` and ``import pandas`` (and their submodules) fail as if not installed."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.partition(".")[0] in _KEPT_OUT:
            raise ModuleNotFoundError(f"No module named {fullname!r} (kept out of Dask workers)", name=fullname)
        return None


def _scratch() -> str | None:
    """The Dask worker's own local directory for downloads (its spill directory's parent)."""
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):
        return None


def _download(url: str) -> tuple[Path, bool]:
    return fetch_to_file(url, scratch_dir=_scratch())


def _release(path: Path, temporary: bool) -> None:
    if temporary:
        path.unlink(missing_ok=True)


def scan_part(url: str, target: str) -> dict[str, Any]:
    """What a fit needs to know of one part before training: its schema and feature kinds, the rows
    that have a target, the target's distinct values and each categorical column's value counts.

    Reads the target and the categorical columns only. Raises ``DataProblem`` for a part that
    cannot train (the same checks as a single file): returned as ``{"problem": {code, message,
    hint}}``."""
    path, temporary = _download(url)
    try:
        return _scan(path, target)
    except DataProblem as problem:  # returned, not raised: its three-argument constructor does not unpickle
        return {"problem": {"code": problem.code, "message": problem.message, "hint": problem.hint}}
    finally:
        _release(path, temporary)


def _scan(path: Path, target: str) -> dict[str, Any]:
    source = pq.ParquetFile(path)
    kinds = check_training_schema(source.schema_arrow, source.metadata.num_rows, target)
    y = nan_as_null(source.read(columns=[target]).column(0))
    if pa.types.is_dictionary(y.type):
        y = y.cast(y.type.value_type)
    counts: dict[str, dict[str, int]] = {}
    for name, kind in kinds.items():
        if kind == CATEGORICAL:
            column = pc.cast(_plain(source.read(columns=[name]).column(0)), pa.string())
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


def worker_device(requested: str | None) -> str:
    """``cpu`` or ``cuda``: what this Dask worker trains on for a request (``ml.device``)."""
    lean_imports()
    from ml.device import choose_device

    return choose_device(requested)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def batch_matrices(
    path: Path, spec: FeatureSpec, target: str | None, classes: np.ndarray | None
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """The Parquet file at ``path`` in batches: each a float32 matrix (the spec's encoding) and,
    with a ``target``, each row's class code; rows without a target are left out.

    One row group at a time, filled one column at a time (Arrow decodes whole row groups, so
    reading every column of one at once would hold it twice), handed out in slices of BATCH_ROWS
    rows: a part's peak is one row group as float32 plus one column. ``tabjob upload --parts``
    writes row groups of at most 65,536 rows."""
    source = pq.ParquetFile(path, buffer_size=READ_BUFFER_BYTES, pre_buffer=False)
    for group in range(source.metadata.num_row_groups):
        codes = keep = None
        if target is not None:
            y = _plain(nan_as_null(source.read_row_group(group, columns=[target]).column(0).combine_chunks()))
            keep = pc.is_valid(y) if y.null_count else None
            codes = np.searchsorted(classes, pc.drop_null(y).to_numpy(zero_copy_only=False)).astype(np.int32)
        n_rows = source.metadata.row_group(group).num_rows if keep is None else len(codes)
        X = np.empty((n_rows, len(spec.columns)), dtype=np.float32)
        for j, (name, kind) in enumerate(spec.columns.items()):
            column = source.read_row_group(group, columns=[name]).column(0)
            X[:, j] = spec.encode(name, kind, column if keep is None else column.filter(keep))
            del column
        for start in range(0, n_rows, BATCH_ROWS):
            stop = start + BATCH_ROWS
            yield X[start:stop], None if codes is None else codes[start:stop]
        del X


def _feature_types(spec: FeatureSpec) -> list[str]:
    return ["c" if kind == CATEGORICAL else "q" for kind in spec.columns.values()]


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
    local = [_download(url) for url in urls]
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
            _release(path, temporary)
    return {"rank": rank, "model": model, "rows": rows, "worker": worker.address, "peak_rss": _peak_rss()}


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def _parts_iter(paths: list[Path], spec: FeatureSpec, target: str, classes: np.ndarray) -> Any:
    """XGBoost's ``DataIter`` over a worker's parts, in batches of rows (XGBoost passes over
    it twice: once to sketch the quantiles, once to quantise). Defined here, not at module level,
    so importing this module never imports XGBoost (see ``lean_imports``)."""
    import xgboost

    class PartsIter(xgboost.DataIter):
        def __init__(self, paths: list[Path], spec: FeatureSpec, target: str, classes: np.ndarray) -> None:
            self.paths, self.spec, self.target, self.classes = paths, spec, target, classes
            self.feature_types = _feature_types(spec)
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
    path, temporary = _download(url)
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
        _release(path, temporary)
    predicted = np.concatenate(labels) if labels else classes[:0]
    fd, name = tempfile.mkstemp(prefix="tabjob-", suffix=".parquet", dir=_scratch())
    os.close(fd)
    try:
        pq.write_table(pa.table({TARGET: pa.array(predicted)}), name)
        write_file(result_url, Path(name))
    finally:
        os.unlink(name)
    return {"rows": len(predicted), "peak_rss": _peak_rss()}
