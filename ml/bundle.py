"""What a model step writes and reads: the pickled ModelBundle (checked against its digest before it
is unpickled) and the predictions: a Parquet file with the input's ``passthrough`` columns (in input
order), one column named after the model's target, and for a classification one ``proba_<class>``
column per class (summing to 1)."""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml import families
from ml.families.base import Trained
from ml.features import FeatureSpec
from ml.io import read_bytes, report, write_file
from ml.outputs import proba_column
from ml.schema import TARGET
from ml.training import predictions


class ModelTampered(RuntimeError):
    """A model's bytes changed after training: it is never unpickled."""


@dataclass
class ModelBundle:
    """What a fit writes: the estimator plus everything needed to use it safely later.

    ``family`` names the model family (``ml.families``) whose ``predict`` uses ``estimator``; model
    files written before families existed unpickle with the class default, ``hgb``.
    """

    estimator: Any
    spec: FeatureSpec
    classes: list[Any]
    trained_rows: int
    params: dict[str, Any] = field(default_factory=dict)
    family: str = "hgb"
    device: str = "cpu"
    # The column the model learned; files written before fits could name it unpickle with ``y``.
    target: str = TARGET
    # ``classification`` or ``regression``; files written before regressions unpickle as classifications.
    task: str = "classification"


def save_bundle(url: str, bundle: ModelBundle, scratch_dir: str | None) -> str:
    """Write the cloudpickled bundle to ``url``; returns the sha256 of its bytes (hex)."""
    blob = cloudpickle.dumps(bundle)
    write_blob(url, blob, scratch_dir)
    return hashlib.sha256(blob).hexdigest()


def save_trained(
    url: str, trained: Trained, spec: FeatureSpec, summary: dict[str, Any], scratch_dir: str | None
) -> str:
    """Write what a family trained, with the facts of its fit ``summary`` (``ml.training.fit_summary``),
    as a ModelBundle to ``url``; returns the sha256 of its bytes (hex)."""
    bundle = ModelBundle(
        estimator=trained.estimator,
        spec=spec,
        classes=summary["classes"],
        trained_rows=summary["rows"],
        params=summary["params"],
        family=summary["family"],
        device=trained.device,
        target=summary.get("target", TARGET),
        task=summary.get("task", "classification"),
    )
    return save_bundle(url, bundle, scratch_dir)


def load_bundle(url: str, model_sha256: str | None = None) -> ModelBundle:
    """The bundle at ``url``. When ``model_sha256`` is given, the bytes must match it before they are
    unpickled (unpickling runs code: only the bytes a fit wrote may be loaded).

    Raises:
      ModelTampered: the bytes do not match ``model_sha256``.
    """
    blob = read_bytes(url)
    if model_sha256 is not None and not hmac.compare_digest(hashlib.sha256(blob).hexdigest(), model_sha256):
        raise ModelTampered("The model's bytes do not match the digest recorded when it was trained.")
    return cloudpickle.loads(blob)


def predict_to_result(
    bundle: ModelBundle,
    X: np.ndarray,
    device: str,
    result_url: str,
    *,
    timings: dict[str, float],
    progress: Any,
    scratch_dir: str | None,
    probabilities: bool = False,
    passthrough: pa.Table | None = None,
) -> dict[str, Any]:
    """The end both predict paths share: predict ``X`` with the bundle's family on ``device``,
    upload the predictions to ``result_url``, and return the predict summary (``timings`` gains
    ``predict_s`` and ``upload_s``, in seconds).

    ``probabilities``: add the ``proba_<class>`` columns of a classification (the legacy routes'
    files have one column ``y`` only). ``passthrough``: the input's columns to copy next to the
    predictions, row for row."""
    chosen = families.family(bundle.family)
    report(progress, "predicting", None, f"Predicting {X.shape[0]:,} rows.")
    t0 = time.perf_counter()
    classes = _typed_classes(bundle) if bundle.task == "classification" else np.array([])
    if probabilities:
        labels, proba = predictions(chosen, bundle.estimator, X, device, bundle.task, classes)
    else:
        labels, proba = chosen.predict(bundle.estimator, X, device), None
    timings["predict_s"] = time.perf_counter() - t0

    report(progress, "uploading")
    t0 = time.perf_counter()
    table = prediction_table(bundle.target, labels, proba, classes, passthrough)
    write_table(result_url, table, scratch_dir)
    timings["upload_s"] = time.perf_counter() - t0
    return {
        "rows": len(labels),
        "family": chosen.name,
        "device": device,
        "task": bundle.task,
        "columns": table.column_names,
        "timings": timings,
    }


def prediction_table(
    target: str, labels: np.ndarray, proba: np.ndarray | None, classes: np.ndarray, passthrough: pa.Table | None
) -> pa.Table:
    """The predictions as a table: passthrough columns, the target-named column, the probabilities."""
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    if passthrough is not None:
        for name in passthrough.column_names:
            columns[name] = passthrough.column(name)
    columns[target] = pa.array(labels)
    if proba is not None:
        for j, label in enumerate(classes):
            columns[proba_column(label)] = pa.array(proba[:, j])
    return pa.table(columns)


def _typed_classes(bundle: ModelBundle) -> np.ndarray:
    """The model's classes as an array of their own type (the estimator's when it keeps them)."""
    own = getattr(bundle.estimator, "classes_", None)
    if own is None:
        own = getattr(bundle.estimator, "classes", None)
    return np.asarray(own) if own is not None else np.asarray(bundle.classes)


def write_table(url: str, table: pa.Table, scratch_dir: str | None) -> None:
    """Write ``table`` to ``url`` as Parquet (pyarrow, no pandas)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_blob(url, sink.getvalue().to_pybytes(), scratch_dir)


def write_blob(url: str, data: bytes, scratch_dir: str | None) -> None:
    """Upload ``data`` to ``url`` through a scratch file (removed afterwards)."""
    fd, name = tempfile.mkstemp(prefix="tabjob-", suffix=".out", dir=scratch_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        write_file(url, Path(name))
    finally:
        os.unlink(name)
