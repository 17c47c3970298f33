"""Scoring a trained model on a labelled dataset: the registry compares versions this way.

``evaluate(data_url, model_url, model_sha256=…)`` predicts every row of a Parquet file that holds
the model's target column and returns the task's metrics (``ml.metrics``) on those rows. The
model registry runs it in the fit job for the new version and, when the alias's current version
was never measured on that dataset, for that version too, so both are compared on the same rows.

Its rows rule differs on purpose from a fit's ``evaluate_on`` report (``ml.model.evaluate``,
``ml.dataset.read_evaluation``), which leaves out rows without a label or of a class the model
never saw and says so in a note: two versions compared here must be scored on the same rows, so
such rows refuse the comparison (``evaluation.missing_labels``, ``evaluation.unknown_labels``)
instead of dropping different rows for each version.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ml import families
from ml.bundle import load_bundle
from ml.dataset import read_predict
from ml.device import choose_device
from ml.errors import DataProblem
from ml.io import Progress, fetch_to_file, report
from ml.metrics import CLASSIFICATION
from ml.training import score_rows


def evaluate(
    data_url: str,
    model_url: str,
    *,
    model_sha256: str,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """The model's metrics on the labelled Parquet at ``data_url``.

    Parameters:
      model_sha256: the digest its fit recorded; the bytes must match it before they are unpickled.
      device: ``auto``, ``cpu`` or ``cuda`` for families that can use a GPU.

    Returns ``{"rows", "task", "metrics": {name: float or None}, "timings"}`` (seconds).

    Raises:
      DataProblem: the file lacks the model's target or feature columns, or is unreadable.
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
        source = read_predict(path, bundle.spec, bundle.target)
        truth = _labels(source, bundle.target)
        X = bundle.spec.matrix(source, dtype=chosen.matrix_dtype)
    finally:
        if temporary:
            os.unlink(path)
    report(progress, "evaluating", None, f"Scoring the model on {len(truth):,} labelled rows.")
    t0 = time.perf_counter()
    task = getattr(bundle, "task", CLASSIFICATION)
    classes = np.asarray(bundle.classes) if task == CLASSIFICATION else None
    # The families' own prediction and the task's metrics, as a fit's (ml.training.score_rows).
    try:
        scores = score_rows(chosen, bundle.estimator, X, truth, used_device, task, classes)
    except ValueError as exc:  # a true label the model never saw
        raise DataProblem(
            "evaluation.unknown_labels",
            f"The evaluation dataset cannot score this model: {exc}.",
            "Evaluate on data labelled with the classes the model was trained on.",
        ) from exc
    timings["evaluate_s"] = time.perf_counter() - t0
    metrics = {k: v for k, v in scores.items() if v is None or isinstance(v, float)}
    return {"rows": len(truth), "task": task, "metrics": metrics, "timings": timings}


def _labels(source: Any, target: str) -> np.ndarray:
    """The true label of every row; refused when the column is missing or a row has none."""
    if target not in source.schema_arrow.names:
        raise DataProblem(
            "evaluation.missing_target",
            f"The evaluation dataset has no column '{target}', the column the model learned.",
            f"Evaluate on a labelled dataset: the model's feature columns plus '{target}'.",
        )
    column = source.read(columns=[target]).column(0)
    if column.null_count:
        raise DataProblem(
            "evaluation.missing_labels",
            f"{column.null_count:,} rows of the evaluation dataset have no '{target}'.",
            "Evaluate on rows that all carry their true label.",
        )
    return column.to_numpy(zero_copy_only=False)
