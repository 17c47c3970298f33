"""What runs on a Dask worker: scan a part, predict a part (training: ``ml.distributed.training``).

A Dask worker holds no store credentials: every part arrives as a presigned URL. A worker's
memory limit is small next to the data (the embedded stack's default is 192 MiB per worker), so
nothing here holds a whole part: each part is downloaded to the worker's scratch disk and read in
streamed batches (``ml.distributed.reading``). Nothing here imports scikit-learn or pandas
(``ml.distributed.worker_env.lean_imports``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.distributed.cuts import sample_part
from ml.distributed.reading import READ_BUFFER_BYTES, batch_matrices, batch_rows, plain_type
from ml.distributed.worker_env import (
    batch_budget_bytes,
    download,
    lean_imports,
    peak_rss,
    release,
    scratch,
    trim_memory,
)
from ml.errors import DataProblem
from ml.features import FeatureSpec
from ml.io import write_file
from ml.metrics import CLASSIFICATION, REGRESSION
from ml.schema import CATEGORICAL, TARGET, check_predict_schema, check_training_schema, nan_as_null
from ml.tasks import check_task


def scan_part(url: str, target: str, task: str = CLASSIFICATION, seed: int = 0) -> dict[str, Any]:
    """What a fit needs to know of one part before training: its schema and feature kinds, the rows
    that have a target, the target's distinct values (a classification), each categorical column's
    value counts and a sample of rows for the bins (``ml.distributed.cuts``, drawn with ``seed``).

    Raises ``DataProblem`` for a part that cannot train (the same checks as a single file, and a
    regression's target must be numeric): returned as ``{"problem": {code, message, hint}}``."""
    lean_imports()
    path, temporary = download(url)
    try:
        return _scan(path, target, task, seed)
    except DataProblem as problem:  # returned, not raised: its three-argument constructor does not unpickle
        return {"problem": {"code": problem.code, "message": problem.message, "hint": problem.hint}}
    finally:
        release(path, temporary)
        trim_memory()


def _scan(path: Path, target: str, task: str, seed: int) -> dict[str, Any]:
    source = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
    kinds = check_training_schema(source.schema_arrow, source.metadata.num_rows, target)
    check_task(task, source.schema_arrow.field(target).type, target)
    y = nan_as_null(source.read(columns=[target]).column(0))
    if pa.types.is_dictionary(y.type):
        y = y.cast(y.type.value_type)
    rows = len(y) - y.null_count
    if task == REGRESSION:
        values = pc.cast(pc.drop_null(y), pa.float64(), safe=False)
        target_sums = [rows, float(pc.sum(values).as_py() or 0.0), float(pc.min(values).as_py() or 0.0),
                       float(pc.max(values).as_py() or 0.0)]  # fmt: skip
        classes = np.array([], dtype=np.float64)
    else:
        target_sums, classes = None, np.unique(pc.drop_null(y).to_numpy(zero_copy_only=False))
    del y
    counts: dict[str, dict[str, int]] = {}
    for name, kind in kinds.items():
        if kind == CATEGORICAL:
            column = pc.cast(plain_type(source.read(columns=[name]).column(0)), pa.string())
            found = pc.value_counts(pc.drop_null(column))
            counts[name] = dict(zip(found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True))
    return {
        "schema": source.schema_arrow.remove_metadata().to_string(), "kinds": kinds, "rows": rows,
        "classes": classes, "target_sums": target_sums, "categories": counts,
        "sample": sample_part(path, FeatureSpec(columns=dict(kinds)), seed),
    }  # fmt: skip


def predict_part(
    url: str,
    result_url: str,
    spec_dict: Mapping[str, Any],
    model: Mapping[str, Any],
    target: str,
    device: str,
) -> dict[str, Any]:
    """Predict every row of one part with an XGBoost model and write a Parquet file with one column
    (the target's name) to ``result_url``, batch by batch (sized from the worker's memory limit,
    each batch's predictions written as a row group and freed). ``model``: the booster's UBJSON
    bytes (``model``), the ``classes``, ``feature_types``, ``best_iteration`` and ``task`` of an
    ``XGBoostModel``."""
    lean_imports()
    import xgboost

    spec = FeatureSpec.from_dict(spec_dict)
    booster = xgboost.Booster(model_file=bytearray(model["model"]))
    booster.set_param({"device": device, "nthread": 1})
    best = model.get("best_iteration")
    rounds = (0, best + 1) if best is not None else (0, 0)
    regression = model.get("task") == REGRESSION
    classes = np.asarray(model["classes"])
    path, temporary = download(url)
    fd, name = tempfile.mkstemp(prefix="tabjob-", suffix=".parquet", dir=scratch())
    os.close(fd)
    rows, writer = 0, None
    try:
        source = pq.ParquetFile(path)
        check_predict_schema(source.schema_arrow, source.metadata.num_rows, spec.columns, target)
        size = batch_rows(len(spec.columns), batch_budget_bytes())
        for X, _ in batch_matrices(path, spec, None, None, rows_per_batch=size):
            matrix = xgboost.DMatrix(X, feature_types=model["feature_types"], enable_categorical=True)
            out = booster.predict(matrix, iteration_range=rounds)
            del matrix, X
            labels = out if regression else classes[_codes(out)]
            table = pa.table({TARGET: pa.array(labels)})
            writer = writer or pq.ParquetWriter(name, table.schema)
            writer.write_table(table)
            rows += len(labels)
        if writer is None:  # a part of no rows: an empty file of the right column
            empty = np.array([], dtype=np.float32) if regression else classes[:0]
            pq.write_table(pa.table({TARGET: pa.array(empty)}), name)
        else:
            writer.close()
        write_file(result_url, Path(name))
    finally:
        release(path, temporary)
        os.unlink(name)
    return {"rows": rows, "peak_rss": peak_rss()}


def _codes(probabilities: np.ndarray) -> np.ndarray:
    """The most probable class of each row: a column per class, or the positive class's probability."""
    return probabilities.argmax(axis=1) if probabilities.ndim == 2 else (probabilities > 0.5).astype(np.int64)
