"""The ML contract: ``fit(data_url, model_url)`` and ``predict(data_url, model_url, result_url)``, in one call.

Pure functions of URLs: they know nothing of tenants, queues or job records. Bad data raises
``DataProblem``; transport problems raise ``httpx.HTTPError`` (the caller decides to retry).
``family`` chooses the model (``ml.families``: ``hgb``, the default, or ``xgboost``); the two-step
path of the same work is ``ml.prepare_step.prepare`` then ``ml.model_step``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml import families
from ml.bundle import ModelBundle, ModelTampered, load_bundle, predict_to_result, save_trained
from ml.checkpoint import Checkpoint
from ml.dataset import TrainingSource, open_parquet, read_evaluation, read_predict, read_training
from ml.device import choose_device
from ml.families import Trained
from ml.families.hgb import DEFAULT_RANDOM_STATE, TUNABLE_PARAMS
from ml.features import FeatureSpec
from ml.io import Progress, fetch_to_file, report
from ml.outputs import check_passthrough, output_columns
from ml.schema import TARGET, describe_type
from ml.training import EARLY_STOPPING_AUTO_ROWS, VALIDATION_FRACTION, fit_summary, score_rows, train_family

__all__ = [
    "DEFAULT_RANDOM_STATE",
    "EARLY_STOPPING_AUTO_ROWS",
    "TUNABLE_PARAMS",
    "VALIDATION_FRACTION",
    "ModelBundle",
    "ModelTampered",
    "fit",
    "open_parquet",
    "predict",
]


def fit(
    data_url: str,
    model_url: str,
    *,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    family: str = families.DEFAULT_FAMILY,
    device: str | None = None,
    target: str = TARGET,
    task: str | None = None,
    evaluate_url: str | None = None,
    checkpoint: Checkpoint | None = None,
) -> dict[str, Any]:
    """Train a classifier or a regressor on the Parquet at ``data_url`` (target column ``target``,
    ``y`` by default) and write the cloudpickled ModelBundle to ``model_url``.

    Parameters:
      params: the family's parameters (its ``tunable_params``; TUNABLE_PARAMS for ``hgb``).
      progress: called with (phase, fraction or None, message or None) as work advances.
      scratch_dir: where downloads are staged (the system temp dir when None).
      family: the model family, ``hgb`` (HistGradientBoosting) or ``xgboost``.
      device: ``auto``, ``cpu`` or ``cuda`` for families that can use a GPU (see ``ml.device``).
      task: ``classification``, ``regression``, or None to infer it from the target (``ml.tasks``).
      evaluate_url: a second Parquet file with the target, on which the model is scored after training.
      checkpoint: train in chunks of rounds, saving and resuming there (``ml.checkpoint``); None: in one go.

    Returns a summary (docs/models.md, "The contract the job service calls"), timings in seconds.
    """
    chosen = families.family(family)
    chosen_params = families.chosen_params(chosen, params)
    used_device = choose_device(device) if chosen.uses_gpu else "cpu"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    report(progress, "downloading", 0.0)
    path, temporary = fetch_to_file(data_url, scratch_dir=scratch_dir, progress=progress)
    try:
        timings["download_s"] = time.perf_counter() - started
        report(progress, "validating")
        training = read_training(path, progress, target, task)
        data = training.training_set(chosen_params, chosen.matrix_dtype)
        timings["prepare_s"] = time.perf_counter() - started - timings["download_s"]
    finally:
        if temporary:
            os.unlink(path)

    spec = training.spec
    n_rows = len(training.codes)
    report(progress, "training", None, f"Training on {n_rows:,} rows x {data.X.shape[1]} features.")
    trained, timings["train_s"] = train_family(chosen, data, chosen_params, used_device, checkpoint, progress)
    summary = fit_summary(chosen, trained, data, chosen_params, target)
    summary.update(task_reason=training.task_reason, feature_types=training_feature_types(training))
    del data, training
    add_evaluation(summary, timings, chosen, trained, spec, evaluate_url, scratch_dir, progress)

    report(progress, "uploading")
    t0 = time.perf_counter()
    digest = save_trained(model_url, trained, spec, summary, scratch_dir)
    timings["upload_s"] = time.perf_counter() - t0
    return {"model_sha256": digest, "features": spec.to_dict(), **summary, "notes": spec.notes, "timings": timings}


def add_evaluation(
    summary: dict[str, Any],
    timings: dict[str, float],
    family: families.Family,
    trained: Trained,
    spec: FeatureSpec,
    evaluate_url: str | None,
    scratch_dir: str | None,
    progress: Progress | None,
) -> None:
    """With an ``evaluate_url``, score the model on it: ``summary["evaluation"]`` and ``timings["evaluate_s"]``."""
    if evaluate_url is not None:
        t0 = time.perf_counter()
        summary["evaluation"] = evaluate(family, trained, spec, summary, evaluate_url, scratch_dir, progress)
        timings["evaluate_s"] = time.perf_counter() - t0


def evaluate(
    family: families.Family,
    trained: Trained,
    spec: FeatureSpec,
    summary: dict[str, Any],
    evaluate_url: str,
    scratch_dir: str | None,
    progress: Progress | None,
) -> dict[str, Any]:
    """The metrics of a freshly trained model on the whole evaluation file at ``evaluate_url``:
    ``{"rows": n, "metrics": {...}, "notes": [...]}``."""
    report(progress, "evaluating", None, "Scoring the model on the evaluation dataset.")
    path, temporary = fetch_to_file(evaluate_url, scratch_dir=scratch_dir, phase="evaluating")
    try:
        task = summary["task"]
        classes = np.asarray(trained_classes(trained, summary))
        rows = read_evaluation(path, spec, summary["target"], task, classes, family.matrix_dtype)
    finally:
        if temporary:
            os.unlink(path)
    metrics = score_rows(family, trained.estimator, rows.X, rows.y_true, trained.device, task, classes)
    return {"rows": len(rows.y_true), "metrics": metrics, "notes": rows.notes}


def trained_classes(trained: Trained, summary: dict[str, Any]) -> Any:
    """The classes of what a family trained, with their own type where the estimator keeps them."""
    for name in ("classes_", "classes"):
        own = getattr(trained.estimator, name, None)
        if own is not None:
            return own
    return summary["classes"]


def training_feature_types(training: TrainingSource) -> dict[str, str]:
    """Each feature column's Arrow type as text (``double``, ``string``, ``timestamp[us]``)."""
    schema = training.source.schema_arrow
    return {name: describe_type(schema.field(name).type) for name in training.spec.columns}


def read_passthrough(
    source: pq.ParquetFile, names: Sequence[str], bundle_target: str = TARGET, classes: Sequence[Any] = ()
) -> pa.Table | None:
    """The input's ``names`` columns, in input order (None when none are asked for).

    Raises:
      DataProblem: a column is not in the input.
    """
    if not names:
        return None
    check_passthrough(source.schema_arrow, names, output_columns(bundle_target, classes))
    wanted = set(names)
    return source.read(columns=[n for n in source.schema_arrow.names if n in wanted])


def predict(
    data_url: str,
    model_url: str,
    result_url: str,
    *,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    model_sha256: str | None = None,
    device: str | None = None,
    probabilities: bool = False,
    passthrough: Sequence[str] = (),
) -> dict[str, Any]:
    """Predict every row of the Parquet at ``data_url`` with the model at ``model_url`` and write
    the predictions to ``result_url``: a Parquet file with the ``passthrough`` columns of the input
    (in input order), a column named after the model's target and, for a classification, one
    ``proba_<class>`` column per class when ``probabilities`` (the service asks for them; the seed
    contract, and the legacy routes, write the label column only).

    Parameters:
      model_sha256: the digest ``fit`` returned for this model. When given, the model's bytes
        must match it before they are unpickled (unpickling runs code: only the bytes ``fit``
        wrote may be loaded, whatever happened to the object since).
      device: ``auto``, ``cpu`` or ``cuda`` for families that can use a GPU.

    Returns a summary: rows predicted, family, device and timings in seconds.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    report(progress, "downloading", 0.0)
    bundle = load_bundle(model_url, model_sha256)
    chosen = families.family(bundle.family)
    used_device = choose_device(device) if chosen.uses_gpu else "cpu"
    path, temporary = fetch_to_file(data_url, scratch_dir=scratch_dir, progress=progress)
    try:
        timings["download_s"] = time.perf_counter() - started
        report(progress, "validating")
        source = read_predict(path, bundle.spec, bundle.target, passthrough)
        kept = read_passthrough(source, passthrough, bundle.target, bundle.classes if probabilities else ())
        X = bundle.spec.matrix(source, dtype=chosen.matrix_dtype)
    finally:
        if temporary:
            os.unlink(path)

    return predict_to_result(
        bundle, X, used_device, result_url, timings=timings, progress=progress, scratch_dir=scratch_dir,
        probabilities=probabilities, passthrough=kept,
    )  # fmt: skip
