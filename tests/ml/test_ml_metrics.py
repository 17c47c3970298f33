"""``ml.metrics`` against scikit-learn's own functions on the same rows."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn import metrics as sk

from ml.metrics import (
    CLASSIFICATION_METRICS,
    HIGHER_IS_BETTER,
    REGRESSION_METRICS,
    is_better,
    metrics_for,
)


def _proba(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    raw = rng.random((rows, k)) ** 3
    return raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    "classes",
    [np.array(["no", "yes"], dtype=object), np.array([3, 7, 11]), np.array([False, True]), np.arange(6)],
)
def test_classification_metrics_match_scikit_learn(classes: np.ndarray) -> None:
    # Given labels of several types and probabilities with ties
    rng = np.random.default_rng(1)
    rows = 500
    proba = np.round(_proba(rng, rows, len(classes)), 2)
    proba /= proba.sum(axis=1, keepdims=True)
    y_true = classes[rng.integers(0, len(classes), rows)]
    y_pred = classes[proba.argmax(axis=1)]

    got = metrics_for("classification", y_true, y_pred, proba, classes)

    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert got["f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y_true, proba, labels=classes))
    if len(classes) == 2:
        expected_auc = sk.roc_auc_score(y_true == classes[1], proba[:, 1])
    else:
        expected_auc = sk.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
    assert got["roc_auc"] == pytest.approx(expected_auc)
    assert got["confusion_matrix"] == sk.confusion_matrix(y_true, y_pred, labels=classes).tolist()
    assert set(CLASSIFICATION_METRICS) <= set(got)


def test_f1_counts_only_labels_present_like_scikit_learn() -> None:
    # A class of the model never true nor predicted on these rows does not drag the macro mean down.
    classes = np.array(["a", "b", "c"], dtype=object)
    y_true = np.array(["a", "a", "b", "b"], dtype=object)
    y_pred = np.array(["a", "b", "b", "b"], dtype=object)
    got = metrics_for("classification", y_true, y_pred, classes=classes)
    assert got["f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))
    assert got["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert got["log_loss"] is None and got["roc_auc"] is None


def test_roc_auc_is_none_when_the_rows_hold_one_class() -> None:
    classes = np.array([0, 1])
    got = metrics_for("classification", np.zeros(5, int), np.zeros(5, int), np.full((5, 2), 0.5), classes)
    assert got["roc_auc"] is None
    assert got["accuracy"] == 1.0


def test_multiclass_roc_auc_leaves_out_a_class_absent_from_the_truth() -> None:
    rng = np.random.default_rng(2)
    classes = np.arange(3)
    proba = _proba(rng, 200, 3)
    y_true = rng.integers(0, 2, 200)  # class 2 never true
    got = metrics_for("classification", y_true, proba.argmax(axis=1), proba, classes)
    expected = np.mean([sk.roc_auc_score(y_true == c, proba[:, c]) for c in (0, 1)])
    assert got["roc_auc"] == pytest.approx(expected)


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.normal(50, 10, 1000)
    y_pred = y_true + rng.normal(0, 3, 1000)
    got = metrics_for("regression", y_true, y_pred)
    assert got == pytest.approx(
        {
            "r2": sk.r2_score(y_true, y_pred),
            "rmse": sk.root_mean_squared_error(y_true, y_pred),
            "mae": sk.mean_absolute_error(y_true, y_pred),
        }
    )
    assert set(got) == set(REGRESSION_METRICS)


def test_r2_of_a_constant_truth_follows_scikit_learn() -> None:
    y_true = np.full(4, 2.0)
    assert metrics_for("regression", y_true, y_true)["r2"] == sk.r2_score(y_true, y_true)
    assert metrics_for("regression", y_true, y_true + 1)["r2"] == sk.r2_score(y_true, y_true + 1)


def test_bad_calls_raise_value_error() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        metrics_for("ranking", [1], [1])
    with pytest.raises(ValueError, match="rows"):
        metrics_for("regression", [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="not one of the classes"):
        metrics_for("classification", ["a"], ["z"], classes=["a", "b"])
    with pytest.raises(ValueError, match="column per class"):
        metrics_for("classification", ["a"], ["a"], np.ones((1, 3)), classes=["a", "b"])


def test_direction_of_every_metric() -> None:
    assert set(HIGHER_IS_BETTER) == set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS)
    assert is_better("accuracy", 0.9, 0.8) and not is_better("accuracy", 0.8, 0.8)
    assert is_better("rmse", 1.0, 2.0) and is_better("log_loss", 0.1, 0.2)
    with pytest.raises(ValueError, match="unknown metric"):
        is_better("auc", 1.0, 0.0)


def test_module_does_not_load_scikit_learn() -> None:
    # The API and the registry import it; loading scikit-learn there would cost seconds of start-up.
    import subprocess

    code = "import sys, ml.metrics; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
