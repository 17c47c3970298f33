"""The ML contract: ``fit(data_url, model_url)`` and ``predict(data_url, model_url, result_url)``, in one call.

Pure functions of URLs: they know nothing of tenants, queues or job records. Bad data raises
``DataProblem``; transport problems raise ``httpx.HTTPError`` (the caller decides to retry).
``family`` chooses the model (``ml.families``: ``hgb``, the default, or ``xgboost``); the two-step
path of the same work is ``ml.prepare_step.prepare`` then ``ml.model_step``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from ml import families
from ml.bundle import ModelBundle, ModelTampered, load_bundle, predict_to_result, save_trained
from ml.checkpoint import Checkpoint
from ml.dataset import open_parquet, read_predict, read_training
from ml.device import choose_device
from ml.families.hgb import DEFAULT_RANDOM_STATE, TUNABLE_PARAMS
from ml.io import Progress, fetch_to_file, report
from ml.schema import TARGET
from ml.training import EARLY_STOPPING_AUTO_ROWS, VALIDATION_FRACTION, fit_summary, train_family

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
    checkpoint: Checkpoint | None = None,
) -> dict[str, Any]:
    """Train a classifier on the Parquet at ``data_url`` (target column ``target``, ``y`` by
    default) and write the cloudpickled ModelBundle to ``model_url``.

    Parameters:
      params: the family's parameters (its ``tunable_params``; TUNABLE_PARAMS for ``hgb``).
      progress: called with (phase, fraction or None, message or None) as work advances.
      scratch_dir: where downloads are staged (the system temp dir when None).
      family: the model family, ``hgb`` (HistGradientBoosting) or ``xgboost``.
      device: ``auto``, ``cpu`` or ``cuda`` for families that can use a GPU (see ``ml.device``).
      checkpoint: train in chunks of rounds, saving and resuming there (``ml.checkpoint``); None: in one go.

    Returns a summary: family, device, feature columns and kinds, categories, classes, rows,
    iterations, validation score (None without early stopping), parameters, notes, timings in seconds.
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
        training = read_training(path, progress, target)
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
    del data, training

    report(progress, "uploading")
    t0 = time.perf_counter()
    digest = save_trained(model_url, trained, spec, summary, scratch_dir)
    timings["upload_s"] = time.perf_counter() - t0
    return {"model_sha256": digest, "features": spec.to_dict(), **summary, "notes": spec.notes, "timings": timings}


def predict(
    data_url: str,
    model_url: str,
    result_url: str,
    *,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    model_sha256: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Predict the class of every row of the Parquet at ``data_url`` with the model at
    ``model_url`` and write a Parquet file with one column ``y`` to ``result_url``.

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
        X = bundle.spec.matrix(read_predict(path, bundle.spec, bundle.target), dtype=chosen.matrix_dtype)
    finally:
        if temporary:
            os.unlink(path)

    return predict_to_result(
        bundle, X, used_device, result_url, timings=timings, progress=progress, scratch_dir=scratch_dir
    )
