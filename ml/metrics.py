"""The scores users compare models with, computed with NumPy alone on held-out rows.

Pure and light (no scikit-learn import): the API and the model registry may import it to compare
models without loading a learning library. Each function matches scikit-learn's function of the
same name on the same rows (``tests/ml/test_ml_metrics.py`` checks them against it):

- classification: ``accuracy`` (``accuracy_score``), ``log_loss`` (``log_loss`` with the model's
  classes as ``labels``), ``roc_auc`` (``roc_auc_score``: the positive class's probability for two
  classes; one-vs-rest, macro average, for more), ``f1`` (``f1_score(average="macro")`` over the
  labels present in the true or predicted values, as scikit-learn's default) and
  ``confusion_matrix`` (rows true, columns predicted, in the model's class order);
- regression: ``r2`` (``r2_score``), ``rmse`` (``root_mean_squared_error``), ``mae``
  (``mean_absolute_error``).

A metric that is undefined on the given rows (``roc_auc`` when the rows hold a single class) is None
rather than an error: a fit must not fail for its report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.names import CLASSIFICATION, REGRESSION, TASKS

# Every scalar metric of a task, in the order reports list them.
CLASSIFICATION_METRICS = ("accuracy", "log_loss", "roc_auc", "f1")
REGRESSION_METRICS = ("r2", "rmse", "mae")
METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    CLASSIFICATION: CLASSIFICATION_METRICS,
    REGRESSION: REGRESSION_METRICS,
}
# Which way is better, per scalar metric (the confusion matrix is not ordered).
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "log_loss": False,
    "roc_auc": True,
    "f1": True,
    "r2": True,
    "rmse": False,
    "mae": False,
}
# The metric a task's models are ranked by when a caller names none.
DEFAULT_METRIC: dict[str, str] = {CLASSIFICATION: "accuracy", REGRESSION: "r2"}

Metrics = dict[str, float | list[list[int]] | None]


def metrics_for(
    task: str,
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    proba: np.ndarray | None = None,
    classes: Sequence[Any] | np.ndarray | None = None,
) -> Metrics:
    """Every metric of ``task`` on these rows.

    Parameters:
      task: ``classification`` or ``regression``.
      y_true, y_pred: the true and predicted value of each row (labels of any type for a
        classification, numbers for a regression).
      proba: classification only: one row per row, one column per class of ``classes`` (in that
        order), summing to 1. Without it ``log_loss`` and ``roc_auc`` are None.
      classes: classification only: the model's classes in its order (the sorted labels); the
        labels of ``y_true`` and ``y_pred`` when None.

    Returns a dict of the task's metrics (``METRICS_BY_TASK``), plus ``confusion_matrix`` (a list of
    lists of counts) for a classification. Values are floats, or None where undefined.
    """
    if task == REGRESSION:
        return regression_metrics(y_true, y_pred)
    if task == CLASSIFICATION:
        return classification_metrics(y_true, y_pred, proba, classes)
    raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")


def regression_metrics(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray) -> Metrics:
    """``r2``, ``rmse`` and ``mae`` of numeric predictions."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    _same_length(t, p)
    error = t - p
    residual = float(np.dot(error, error))
    spread = float(np.sum((t - t.mean()) ** 2))
    # scikit-learn's force_finite rule: a constant truth scores 1 when predicted exactly, else 0.
    r2 = (1.0 if residual == 0 else 0.0) if spread == 0 else 1.0 - residual / spread
    return {"r2": r2, "rmse": float(np.sqrt(residual / len(t))), "mae": float(np.mean(np.abs(error)))}


def classification_metrics(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    proba: np.ndarray | None = None,
    classes: Sequence[Any] | np.ndarray | None = None,
) -> Metrics:
    """``accuracy``, ``log_loss``, ``roc_auc``, ``f1`` (macro) and ``confusion_matrix`` of predicted labels."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    _same_length(t, p)
    labels = list(np.unique(np.concatenate([t, p]))) if classes is None else list(classes)
    true_codes, pred_codes = _codes(t, labels), _codes(p, labels)
    k = len(labels)
    confusion = np.bincount(true_codes * k + pred_codes, minlength=k * k).reshape(k, k)
    result: Metrics = {
        "accuracy": float(np.mean(true_codes == pred_codes)),
        "log_loss": None,
        "roc_auc": None,
        "f1": _f1_macro(confusion),
        "confusion_matrix": confusion.tolist(),
    }
    if proba is not None:
        probabilities = np.asarray(proba, dtype=np.float64)
        if probabilities.shape != (len(t), k):
            raise ValueError(f"proba has shape {probabilities.shape}; expected ({len(t)}, {k}): a column per class")
        result["log_loss"] = _log_loss(true_codes, probabilities)
        result["roc_auc"] = _roc_auc(true_codes, probabilities)
    return result


def is_better(metric: str, candidate: float, incumbent: float) -> bool:
    """Whether ``candidate`` is strictly better than ``incumbent`` on ``metric`` (``HIGHER_IS_BETTER``)."""
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(HIGHER_IS_BETTER)}")
    return candidate > incumbent if HIGHER_IS_BETTER[metric] else candidate < incumbent


def _codes(values: np.ndarray, labels: list[Any]) -> np.ndarray:
    """Each value's position in ``labels``. Raises ValueError for a value that is not a label."""
    ordered = np.asarray(labels)
    if ordered.dtype != object and values.dtype != object and len(ordered) and np.all(ordered[:-1] < ordered[1:]):
        # Sorted labels of a plain dtype (the usual case: a model's classes): a binary search per row.
        found = np.searchsorted(ordered, values).clip(0, len(ordered) - 1)
        wrong = ordered[found] != values
        if not np.any(wrong):
            return found.astype(np.int64)
        raise ValueError(f"label {values[wrong][0]!r} is not one of the classes")
    index = {_key(c): i for i, c in enumerate(labels)}
    try:
        return np.fromiter((index[_key(v)] for v in values), dtype=np.int64, count=len(values))
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not one of the classes") from None


def _key(value: Any) -> Any:
    # NumPy scalars and Python values of the same label must meet in one dict key.
    return value.item() if isinstance(value, np.generic) else value


def _same_length(a: np.ndarray, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise ValueError(f"y_true has {len(a)} rows but y_pred has {len(b)}")
    if len(a) == 0:
        raise ValueError("no rows to score")


def _f1_macro(confusion: np.ndarray) -> float:
    true_positive = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    # scikit-learn's default labels: those present among the true or the predicted values.
    present = (support + predicted) > 0
    denominator = support + predicted
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
    return float(f1[present].mean())


def _log_loss(true_codes: np.ndarray, proba: np.ndarray) -> float:
    eps = np.finfo(proba.dtype).eps
    chosen = np.clip(proba[np.arange(len(true_codes)), true_codes], eps, 1 - eps)
    return float(-np.mean(np.log(chosen)))


def _roc_auc(true_codes: np.ndarray, proba: np.ndarray) -> float | None:
    k = proba.shape[1]
    if k == 2:
        return _binary_auc(true_codes == 1, proba[:, 1])
    # One-vs-rest, unweighted mean; scikit-learn refuses when a class is absent from the truth, a
    # report leaves that class out instead (None when no class can be scored).
    scores = [_binary_auc(true_codes == c, proba[:, c]) for c in range(k)]
    defined = [s for s in scores if s is not None]
    return float(np.mean(defined)) if defined else None


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """The Mann-Whitney form of the area under the ROC curve (ties count half), None without both classes."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    ranks = np.empty(len(score), dtype=np.float64)
    # Average ranks over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(score)]])
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
