"""What a model family is: how it trains on a prepared matrix and how it predicts with what it trained.

Families see only NumPy matrices and class codes, never Parquet or URLs: the same family serves the
one-call ``fit`` (matrix built from Parquet in memory) and the two-step path (matrix read from a
prepared file).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrainingSet:
    """The rows a family trains on.

    Attributes:
      X: the feature matrix (row-major, the family's ``matrix_dtype``), NaN for missing values.
      codes: a classification's class of each row of ``X``, as an index into ``classes`` (int32);
        a regression's target value of each row (float64).
      classes: the class labels in sorted order, with the target's own dtype (int8, bool, object...);
        empty for a regression.
      categorical: one flag per column of ``X``: True where the column holds category codes.
      X_val, codes_val: the validation rows for early stopping, or None when early stopping is off.
      task: ``classification`` or ``regression`` (``ml.tasks``).
    """

    X: np.ndarray
    codes: np.ndarray
    classes: np.ndarray
    categorical: list[bool]
    X_val: np.ndarray | None = None
    codes_val: np.ndarray | None = None
    task: str = "classification"

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    def labels(self) -> np.ndarray:
        """The original label (a regression: value) of each training row."""
        return self.codes if self.regression else self.classes[self.codes]

    def labels_val(self) -> np.ndarray | None:
        """The original label (a regression: value) of each validation row; None without them."""
        if self.codes_val is None:
            return None
        return self.codes_val if self.regression else self.classes[self.codes_val]


@dataclass
class Trained:
    """What a family's ``train`` returns: the estimator to save, and facts for the summary."""

    estimator: Any
    iterations: int
    device: str
    best_iteration: int | None = None
    # Every parameter the estimator was built with, defaults included (JSON-ready), for the model's page.
    used_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
      name: the family's name in requests, model files and summaries (``hgb``, ``xgboost``).
      tunable_params: the parameters a user may set, with their types.
      default_params: parameters set unless the user sets them.
      matrix_dtype: the float type of the matrix ``train`` and ``predict`` expect.
      train: ``train(data, params, device)`` fits on a TrainingSet with the given parameters on
        ``device`` (``cpu`` or ``cuda``) and returns a Trained.
      predict: ``predict(estimator, X, device)`` returns the predicted label (a regression: value)
        of each row of ``X``.
      predict_proba: ``predict_proba(estimator, X, device)`` returns a classifier's probability of
        each class (columns in the sorted classes' order, rows summing to 1); None when the family
        has none (a classification's predictions then carry no ``proba_`` columns).
      uses_gpu: whether the family can use a GPU (``device`` is ignored when False).
    """

    name: str
    tunable_params: Mapping[str, type]
    default_params: Mapping[str, Any]
    matrix_dtype: type
    train: Callable[[TrainingSet, dict[str, Any], str], Trained]
    predict: Callable[[Any, np.ndarray, str], np.ndarray]
    uses_gpu: bool = False
    predict_proba: Callable[[Any, np.ndarray, str], np.ndarray] | None = None


def plain_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values: NumPy scalars as Python ones, anything else unusual as its text."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value if value is None or isinstance(value, (bool, int, float, str)) else str(value)
    return out
