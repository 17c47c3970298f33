"""The ML contract: ``fit(data_url, model_url)`` and ``predict(data_url, model_url, result_url)``.

Pure functions of URLs: they know nothing of tenants, queues or job records. Bad data raises
``DataProblem``; transport problems raise ``httpx.HTTPError`` (the caller decides to retry).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

from ml.errors import DataProblem
from ml.features import FeatureSpec
from ml.io import Progress, fetch_to_file, read_bytes, write_file
from ml.schema import TARGET, check_predict_schema, check_target, check_training_schema, nan_as_null

DEFAULT_RANDOM_STATE = 0
# HistGradientBoosting's own rule and default for early stopping.
EARLY_STOPPING_AUTO_ROWS = 10_000
VALIDATION_FRACTION = 0.1


class ModelTampered(RuntimeError):
    """A model's bytes changed after training: it is never unpickled."""


@dataclass
class ModelBundle:
    """What a fit writes: the estimator plus everything needed to use it safely later."""

    estimator: HistGradientBoostingClassifier
    spec: FeatureSpec
    classes: list[Any]
    trained_rows: int
    params: dict[str, Any] = field(default_factory=dict)


def open_parquet(path: Path) -> pq.ParquetFile:
    """Open a Parquet file, turning 'not Parquet' and 'truncated' into a DataProblem."""
    if path.stat().st_size == 0:
        raise DataProblem(
            "dataset.empty_file", "The uploaded file is empty (0 bytes).", "Upload the Parquet file again."
        )
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataProblem(
            "dataset.not_parquet",
            f"The uploaded file is not a readable Parquet file ({exc}).",
            "Write the data with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table and upload the whole file.",
        ) from exc


def _note(progress: Progress | None, phase: str, fraction: float | None = None, message: str | None = None) -> None:
    if progress is not None:
        progress(phase, fraction, message)


def fit(
    data_url: str,
    model_url: str,
    *,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
) -> dict[str, Any]:
    """Train a HistGradientBoostingClassifier on the Parquet at ``data_url`` (target column ``y``)
    and write the cloudpickled ModelBundle to ``model_url``.

    Parameters:
      params: HistGradientBoostingClassifier parameters (keys of ml.params.TUNABLE_PARAMS).
      progress: called with (phase, fraction or None, message or None) as work advances.
      scratch_dir: where downloads are staged (the system temp dir when None).

    Returns a summary: feature columns and kinds, categories, classes, rows, timings in seconds.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    _note(progress, "downloading", 0.0)
    path, temporary = fetch_to_file(data_url, scratch_dir=scratch_dir, progress=progress)
    try:
        timings["download_s"] = time.perf_counter() - started
        _note(progress, "validating")
        source = open_parquet(path)
        kinds = check_training_schema(source.schema_arrow, source.metadata.num_rows)
        y = nan_as_null(source.read(columns=[TARGET]).column(0))
        check_target(y)
        rows = None
        if y.null_count:
            rows = pc.is_valid(y)
            y = y.filter(rows)
            _note(
                progress,
                "validating",
                None,
                f"{source.metadata.num_rows - len(y):,} row(s) without '{TARGET}' are left out.",
            )
        spec = FeatureSpec.learn(source, kinds)
        for message in spec.notes:
            _note(progress, "validating", None, message)
        target = _target_values(y)
        chosen = {"random_state": DEFAULT_RANDOM_STATE, **dict(params or {})}
        split = _validation_split(target, chosen)
        if split is None:
            X, X_val = spec.matrix(source, rows), None
        else:
            X, X_val = spec.matrices(source, rows, list(split))
        timings["prepare_s"] = time.perf_counter() - started - timings["download_s"]
    finally:
        if temporary:
            os.unlink(path)

    n_rows = len(target)
    _note(progress, "training", None, f"Training on {n_rows:,} rows x {X.shape[1]} features.")
    t0 = time.perf_counter()
    estimator = HistGradientBoostingClassifier(categorical_features=spec.categorical_mask, **chosen)
    if split is None:
        estimator.fit(X, target)
    else:
        # Early stopping on our own split, made while building the matrices: HistGradientBoosting's
        # internal split would copy the whole matrix and hold both at once.
        estimator.set_params(early_stopping=True)
        estimator.fit(X, target[split[0]], X_val=X_val, y_val=target[split[1]])
        estimator.set_params(early_stopping=chosen.get("early_stopping", "auto"))
    timings["train_s"] = time.perf_counter() - t0
    del X, X_val, target

    _note(progress, "uploading")
    t0 = time.perf_counter()
    bundle = ModelBundle(
        estimator=estimator,
        spec=spec,
        classes=[_plain(c) for c in estimator.classes_],
        trained_rows=n_rows,
        params=chosen,
    )
    blob = cloudpickle.dumps(bundle)
    _write_blob(model_url, blob, scratch_dir)
    timings["upload_s"] = time.perf_counter() - t0
    return {
        "model_sha256": hashlib.sha256(blob).hexdigest(),
        "features": spec.to_dict(),
        "classes": bundle.classes,
        "rows": n_rows,
        "iterations": int(estimator.n_iter_),
        "params": chosen,
        "notes": spec.notes,
        "timings": timings,
    }


def predict(
    data_url: str,
    model_url: str,
    result_url: str,
    *,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    model_sha256: str | None = None,
) -> dict[str, Any]:
    """Predict the class of every row of the Parquet at ``data_url`` with the model at
    ``model_url`` and write a Parquet file with one column ``y`` to ``result_url``.

    Parameters:
      model_sha256: the digest ``fit`` returned for this model. When given, the model's bytes
        must match it before they are unpickled (unpickling runs code: only the bytes ``fit``
        wrote may be loaded, whatever happened to the object since).

    Returns a summary: rows predicted and timings in seconds.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    _note(progress, "downloading", 0.0)
    blob = read_bytes(model_url)
    if model_sha256 is not None and not hmac.compare_digest(hashlib.sha256(blob).hexdigest(), model_sha256):
        raise ModelTampered("The model's bytes do not match the digest recorded when it was trained.")
    bundle: ModelBundle = cloudpickle.loads(blob)
    path, temporary = fetch_to_file(data_url, scratch_dir=scratch_dir, progress=progress)
    try:
        timings["download_s"] = time.perf_counter() - started
        _note(progress, "validating")
        source = open_parquet(path)
        check_predict_schema(source.schema_arrow, source.metadata.num_rows, bundle.spec.columns)
        X = bundle.spec.matrix(source)
    finally:
        if temporary:
            os.unlink(path)

    _note(progress, "predicting", None, f"Predicting {X.shape[0]:,} rows.")
    t0 = time.perf_counter()
    labels = bundle.estimator.predict(X)
    timings["predict_s"] = time.perf_counter() - t0

    _note(progress, "uploading")
    t0 = time.perf_counter()
    buffer = io.BytesIO()
    pd.DataFrame({TARGET: labels}).to_parquet(buffer, index=False)
    _write_blob(result_url, buffer.getvalue(), scratch_dir)
    timings["upload_s"] = time.perf_counter() - t0
    return {"rows": len(labels), "timings": timings}


def _validation_split(target: np.ndarray, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Train and validation row positions when early stopping is on, as HistGradientBoosting
    decides it ("auto": more than 10,000 rows), stratified by class where every class allows;
    None when early stopping is off."""
    early = params.get("early_stopping", "auto")
    if early is False or (early == "auto" and len(target) <= EARLY_STOPPING_AUTO_ROWS):
        return None
    _, counts = np.unique(target, return_counts=True)
    train, val = train_test_split(
        np.arange(len(target)),
        test_size=VALIDATION_FRACTION,
        stratify=target if counts.min() >= 2 else None,
        random_state=params.get("random_state", DEFAULT_RANDOM_STATE),
    )
    return np.sort(train), np.sort(val)


def _target_values(y: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_dictionary(y.type):
        y = y.cast(y.type.value_type)
    return y.to_numpy(zero_copy_only=False)


def _plain(value: Any) -> Any:
    """A class label as a JSON-ready Python value."""
    return value.item() if isinstance(value, np.generic) else value


def _write_blob(url: str, data: bytes, scratch_dir: str | None) -> None:
    fd, name = tempfile.mkstemp(prefix="tabjob-", suffix=".out", dir=scratch_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        write_file(url, Path(name))
    finally:
        os.unlink(name)
