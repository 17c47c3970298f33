"""Training a family on matrices, the same way whichever path built them: class codes, the early-stopping
split, the validation score and the summary. Nothing here reads Parquet."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.model_selection import train_test_split

from ml.families import Family, Trained, TrainingSet
from ml.schema import TARGET

# HistGradientBoosting's own rule and default for early stopping.
EARLY_STOPPING_AUTO_ROWS = 10_000
VALIDATION_FRACTION = 0.1


def encode_target(y: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The sorted classes of a target without nulls (keeping its dtype) and each row's class code (int32)."""
    if pa.types.is_dictionary(y.type):
        y = y.cast(y.type.value_type)
    classes, codes = np.unique(y.to_numpy(zero_copy_only=False), return_inverse=True)
    return classes, codes.astype(np.int32)


def validation_split(codes: np.ndarray, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Train and validation row positions when early stopping is on, as HistGradientBoosting
    decides it ("auto": more than 10,000 rows), stratified by class where every class allows;
    None when early stopping is off."""
    early = params.get("early_stopping", "auto")
    if early is False or (early == "auto" and len(codes) <= EARLY_STOPPING_AUTO_ROWS):
        return None
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


def validation_score(family: Family, trained: Trained, data: TrainingSet) -> float | None:
    """Accuracy on the validation rows, or None when there were none."""
    if data.X_val is None:
        return None
    predicted = family.predict(trained.estimator, data.X_val, trained.device)
    return float(np.mean(predicted == data.classes[data.codes_val]))


def fit_summary(
    family: Family, trained: Trained, data: TrainingSet, params: dict[str, Any], target: str = TARGET
) -> dict[str, Any]:
    """The facts about a training every path reports (the caller adds features, notes, digest, timings)."""
    return {
        "target": target,
        "family": family.name,
        "device": trained.device,
        "classes": [plain(c) for c in data.classes],
        "rows": len(data.codes) + (0 if data.codes_val is None else len(data.codes_val)),
        "iterations": trained.iterations,
        "best_iteration": trained.best_iteration,
        "validation_score": validation_score(family, trained, data),
        "validation_rows": 0 if data.codes_val is None else len(data.codes_val),
        "params": params,
    }


def plain(value: Any) -> Any:
    """A class label as a JSON-ready Python value."""
    return value.item() if isinstance(value, np.generic) else value
