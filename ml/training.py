"""Training a family on matrices, the same way whichever path built them: class codes (or regression
values), the early-stopping split, the metrics on the held-out rows and the summary. Nothing here
reads Parquet."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.model_selection import train_test_split

from ml.families import Family, Trained, TrainingSet
from ml.metrics import CLASSIFICATION, DEFAULT_METRIC, REGRESSION, Metrics, metrics_for
from ml.schema import TARGET

# HistGradientBoosting's own rule and default for early stopping.
EARLY_STOPPING_AUTO_ROWS = 10_000
VALIDATION_FRACTION = 0.1


def encode_target(y: pa.ChunkedArray | pa.Array, task: str = CLASSIFICATION) -> tuple[np.ndarray, np.ndarray]:
    """The sorted classes of a target without nulls (keeping its dtype) and each row's class code (int32);
    for a regression, no classes and each row's value (float64)."""
    if pa.types.is_dictionary(y.type):
        y = y.cast(y.type.value_type)
    if task == REGRESSION:
        values = pc.cast(y, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        return np.array([], dtype=np.float64), np.ascontiguousarray(values, dtype=np.float64)
    classes, codes = np.unique(y.to_numpy(zero_copy_only=False), return_inverse=True)
    return classes, codes.astype(np.int32)


def validation_split(
    codes: np.ndarray, params: Mapping[str, Any], task: str = CLASSIFICATION
) -> tuple[np.ndarray, np.ndarray] | None:
    """Train and validation row positions when early stopping is on, as HistGradientBoosting
    decides it ("auto": more than 10,000 rows), stratified by class where every class allows (a
    regression's split is not stratified); None when early stopping is off."""
    early = params.get("early_stopping", "auto")
    if early is False or (early == "auto" and len(codes) <= EARLY_STOPPING_AUTO_ROWS):
        return None
    if task == REGRESSION:
        train, val = train_test_split(
            np.arange(len(codes)), test_size=VALIDATION_FRACTION, random_state=params.get("random_state", 0)
        )
        return np.sort(train), np.sort(val)
    counts = np.bincount(codes)
    stratified = counts[counts > 0].min() >= 2
    train, val = train_test_split(
        np.arange(len(codes)),
        test_size=VALIDATION_FRACTION,
        stratify=codes if stratified else None,
        random_state=params.get("random_state", 0),
    )
    if not stratified:
        # A class of one row may land in the validation part alone; a model cannot learn (or be
        # scored on) a class it never saw, so such rows train instead.
        unseen = np.isin(codes[val], codes[train], invert=True)
        train, val = np.concatenate([train, val[unseen]]), val[~unseen]
    return np.sort(train), np.sort(val)


def train_family(
    family: Family, data: TrainingSet, params: dict[str, Any], device: str, checkpoint: Any = None,
    progress: Any = None,
) -> tuple[Trained, float]:  # fmt: skip
    """Train ``family`` on ``data``; returns what it trained and the seconds it took (validation score aside).

    ``checkpoint``: an ``ml.checkpoint.Checkpoint``: the fit trains in chunks of rounds, saving
    and resuming there (``progress`` hears of each chunk); None trains in one go.
    """
    started = time.perf_counter()
    used = device if family.uses_gpu else "cpu"
    if checkpoint is None:
        trained = family.train(data, params, used)
    else:  # ---- checkpoint hook (issue 22): the chunk loop lives in ml/checkpoint.py
        from ml.checkpoint import train_in_chunks

        trained = train_in_chunks(family, data, params, used, checkpoint, progress)
    return trained, time.perf_counter() - started


def predictions(
    family: Family, estimator: Any, X: np.ndarray, device: str, task: str, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Each row's predicted label (a regression: value) and, for a classification by a family that
    has them, its class probabilities (columns in ``classes`` order; else None). The label is the
    most probable class, as both families' own ``predict`` decide it, so it is computed once."""
    if task == CLASSIFICATION and family.predict_proba is not None:
        proba = family.predict_proba(estimator, X, device)
        return classes[proba.argmax(axis=1)], proba
    return family.predict(estimator, X, device), None


def score_rows(
    family: Family, estimator: Any, X: np.ndarray, y_true: np.ndarray, device: str, task: str, classes: np.ndarray
) -> Metrics:
    """Every metric of ``task`` (``ml.metrics``) of the model on the rows ``X`` whose truth is ``y_true``."""
    predicted, proba = predictions(family, estimator, X, device, task, classes)
    return metrics_for(task, y_true, predicted, proba, classes if task == CLASSIFICATION else None)


def validation_metrics(family: Family, trained: Trained, data: TrainingSet) -> Metrics | None:
    """The metrics on the rows held out for early stopping, or None when there were none."""
    if data.X_val is None:
        return None
    y_val = data.labels_val()
    assert y_val is not None
    return score_rows(family, trained.estimator, data.X_val, y_val, trained.device, data.task, data.classes)


def fit_summary(
    family: Family, trained: Trained, data: TrainingSet, params: dict[str, Any], target: str = TARGET
) -> dict[str, Any]:
    """The facts about a training every path reports (the caller adds features, notes, digest, timings).

    ``validation_score`` is the task's main metric (accuracy; a regression's r2) on the held-out
    rows, as before metrics existed; ``validation_metrics`` has every metric of the task there."""
    metrics = validation_metrics(family, trained, data)
    summary: dict[str, Any] = {
        "task": data.task,
        "target": target,
        "family": family.name,
        "device": trained.device,
        "classes": [plain(c) for c in data.classes],
        "rows": len(data.codes) + (0 if data.codes_val is None else len(data.codes_val)),
        "iterations": trained.iterations,
        "best_iteration": trained.best_iteration,
        "validation_score": None if metrics is None else metrics[DEFAULT_METRIC[data.task]],
        "validation_rows": 0 if data.codes_val is None else len(data.codes_val),
        "validation_metrics": metrics,
        "params": params,
        "estimator_params": trained.used_params,
    }
    if data.regression:
        values = data.codes if data.codes_val is None else np.concatenate([data.codes, data.codes_val])
        summary["target_range"] = {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean())}
    return summary


def plain(value: Any) -> Any:
    """A class label as a JSON-ready Python value."""
    return value.item() if isinstance(value, np.generic) else value
