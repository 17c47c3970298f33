"""``hgb``: scikit-learn's HistGradientBoostingClassifier (the seed's model and the default family) or, for a
regression, HistGradientBoostingRegressor."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from ml.families.base import Family, Trained, TrainingSet, plain_params

# The HistGradientBoosting parameters a user may set (the same for both tasks), with their types.
TUNABLE_PARAMS: dict[str, type] = {
    "learning_rate": float,
    "max_iter": int,
    "max_leaf_nodes": int,
    "max_depth": int,
    "min_samples_leaf": int,
    "l2_regularization": float,
    "max_bins": int,
    "early_stopping": bool,
    "random_state": int,
}
DEFAULT_RANDOM_STATE = 0


def estimator(
    task: str, params: dict[str, Any], categorical: list[bool]
) -> HistGradientBoostingClassifier | HistGradientBoostingRegressor:
    """The unfitted estimator of ``task`` (``classification`` or ``regression``) with ``params``."""
    mask = categorical if any(categorical) else None
    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return cls(categorical_features=mask, **params)


def new_estimator(
    data: TrainingSet, params: dict[str, Any]
) -> HistGradientBoostingClassifier | HistGradientBoostingRegressor:
    """An unfitted estimator for ``data`` (its task and categorical columns) with ``params``."""
    return estimator(data.task, params, data.categorical)


def train(data: TrainingSet, params: dict[str, Any], device: str, estimator: Any = None) -> Trained:
    """Fit on the CPU (``device`` is ignored); early stopping on ``data``'s validation rows when given.

    ``estimator``: one to continue with ``params`` (``warm_start``, a chunked fit: ml/checkpoint.py).
    """
    model = new_estimator(data, params) if estimator is None else estimator.set_params(**params)
    if data.X_val is None:
        model.fit(data.X, data.labels())
    else:
        # Early stopping on our own split, made while building the matrices: HistGradientBoosting's
        # internal split would copy the whole matrix and hold both at once.
        model.set_params(early_stopping=True)
        model.fit(data.X, data.labels(), X_val=data.X_val, y_val=data.labels_val())
        model.set_params(early_stopping=params.get("early_stopping", "auto"))
    used = {k: v for k, v in model.get_params().items() if k != "categorical_features"}
    return Trained(estimator=model, iterations=int(model.n_iter_), device="cpu", used_params=plain_params(used))


def predict(
    model: HistGradientBoostingClassifier | HistGradientBoostingRegressor, X: np.ndarray, device: str
) -> np.ndarray:
    """The predicted label (a regression: value) of each row (on the CPU)."""
    return model.predict(X)


def predict_proba(model: HistGradientBoostingClassifier, X: np.ndarray, device: str) -> np.ndarray:
    """Each row's probability of each class, in ``model.classes_`` (sorted) order."""
    return model.predict_proba(X)


FAMILY = Family(
    name="hgb",
    tunable_params=TUNABLE_PARAMS,
    default_params={"random_state": DEFAULT_RANDOM_STATE},
    matrix_dtype=np.float64,
    train=train,
    predict=predict,
    predict_proba=predict_proba,
)
