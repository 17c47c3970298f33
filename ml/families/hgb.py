"""``hgb``: scikit-learn's HistGradientBoostingClassifier, the seed's model and the default family."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from ml.families.base import Family, Trained, TrainingSet

# The HistGradientBoostingClassifier parameters a user may set, with their types.
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


def new_estimator(data: TrainingSet, params: dict[str, Any]) -> HistGradientBoostingClassifier:
    """An unfitted estimator for ``data`` (its categorical columns) with ``params``."""
    mask = data.categorical if any(data.categorical) else None
    return HistGradientBoostingClassifier(categorical_features=mask, **params)


def train(data: TrainingSet, params: dict[str, Any], device: str, estimator: Any = None) -> Trained:
    """Fit on the CPU (``device`` is ignored); early stopping on ``data``'s validation rows when given.

    ``estimator``: one to continue with ``params`` (``warm_start``, a chunked fit: ml/checkpoint.py).
    """
    estimator = new_estimator(data, params) if estimator is None else estimator.set_params(**params)
    if data.X_val is None:
        estimator.fit(data.X, data.labels())
    else:
        # Early stopping on our own split, made while building the matrices: HistGradientBoosting's
        # internal split would copy the whole matrix and hold both at once.
        estimator.set_params(early_stopping=True)
        estimator.fit(data.X, data.labels(), X_val=data.X_val, y_val=data.classes[data.codes_val])
        estimator.set_params(early_stopping=params.get("early_stopping", "auto"))
    return Trained(estimator=estimator, iterations=int(estimator.n_iter_), device="cpu")


def predict(estimator: HistGradientBoostingClassifier, X: np.ndarray, device: str) -> np.ndarray:
    """The predicted label of each row (on the CPU)."""
    return estimator.predict(X)


FAMILY = Family(
    name="hgb",
    tunable_params=TUNABLE_PARAMS,
    default_params={"random_state": DEFAULT_RANDOM_STATE},
    matrix_dtype=np.float64,
    train=train,
    predict=predict,
)
