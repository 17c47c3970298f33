"""``xgboost``: XGBoost's gradient-boosted trees (``hist``; XGBClassifier or XGBRegressor), on a GPU
(``device="cuda"``) where one is usable.

XGBoost is imported when a model of this family trains or predicts, not when the registry is read:
a process that never uses the family (the API, a CPU lane) never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.families.base import Family, Trained, TrainingSet, plain_params

# The XGBClassifier/XGBRegressor parameters a user may set, with their types; early_stopping as for hgb.
TUNABLE_PARAMS: dict[str, type] = {
    "n_estimators": int,
    "learning_rate": float,
    "max_depth": int,
    "max_leaves": int,
    "min_child_weight": float,
    "reg_lambda": float,
    "reg_alpha": float,
    "subsample": float,
    "colsample_bytree": float,
    "max_bin": int,
    "max_cat_to_onehot": int,
    "early_stopping": bool,
    "random_state": int,
}
DEFAULT_RANDOM_STATE = 0
# Rounds without improvement of the validation loss before training stops (HistGradientBoosting's n_iter_no_change).
EARLY_STOPPING_ROUNDS = 10


@dataclass
class XGBoostModel:
    """A trained booster, kept in XGBoost's own UBJSON model format rather than pickled: the bytes
    hold no device or library state, so a model trained on a GPU loads on a CPU-only worker (and
    with xgboost-cpu) and the other way round."""

    model: bytes
    classes: np.ndarray  # the labels the class codes stand for, with the target's dtype
    feature_types: list[str]  # "q" (quantitative) or "c" (categorical), per column
    best_iteration: int | None  # the best validation round when early stopping ran
    # Models written before regressions existed unpickle as classifications.
    task: str = "classification"

    def booster(self, device: str) -> Any:
        """The booster, loaded to run on ``device``."""
        import xgboost

        booster = xgboost.Booster(model_file=bytearray(self.model))
        booster.set_param({"device": device})
        return booster


def estimator(task: str, params: dict[str, Any], device: str, feature_types: list[str], stopping: bool) -> Any:
    """The unfitted XGBClassifier or XGBRegressor of ``task`` with ``params`` (``early_stopping`` aside) on
    ``device``; categorical columns declared as such (``feature_types`` ``c``) and split on natively."""
    import xgboost

    chosen = {k: v for k, v in params.items() if k != "early_stopping"}
    cls = xgboost.XGBRegressor if task == "regression" else xgboost.XGBClassifier
    return cls(
        tree_method="hist",
        device=device,
        enable_categorical=True,
        feature_types=feature_types,
        early_stopping_rounds=EARLY_STOPPING_ROUNDS if stopping else None,
        **chosen,
    )


def train(data: TrainingSet, params: dict[str, Any], device: str, start_from: XGBoostModel | None = None) -> Trained:
    """Fit on ``device``; early stopping on ``data``'s validation rows when given. A classifier learns
    the class codes (XGBoost wants 0..k-1), a regressor the values. ``start_from``: a model to
    continue with ``n_estimators`` more rounds (a chunked fit: ml/checkpoint.py)."""
    feature_types = ["c" if flag else "q" for flag in data.categorical]
    stopping = data.X_val is not None
    model = estimator(data.task, params, device, feature_types, stopping)
    previous = None if start_from is None else start_from.booster(device)
    if stopping:
        model.fit(data.X, data.codes, eval_set=[(data.X_val, data.codes_val)], verbose=False, xgb_model=previous)
    else:
        model.fit(data.X, data.codes, xgb_model=previous)
    booster = model.get_booster()
    best = booster.attr("best_iteration")
    saved = XGBoostModel(
        model=bytes(booster.save_raw(raw_format="ubj")),
        classes=data.classes,
        feature_types=feature_types,
        best_iteration=None if best is None else int(best),
        task=data.task,
    )
    used = {k: v for k, v in model.get_params().items() if v is not None and k != "feature_types"}
    return Trained(
        estimator=saved,
        iterations=int(booster.num_boosted_rounds()),
        device=device,
        best_iteration=saved.best_iteration,
        used_params=plain_params({**used, "objective": booster.attr("objective") or model.objective}),
    )


def _raw(model: XGBoostModel, X: np.ndarray, device: str) -> np.ndarray:
    """The booster's output for every row, with the trees up to the best validation round when
    early stopping ran: values (a regression), the positive class's probability (two classes) or
    one probability per class."""
    import xgboost

    booster = model.booster(device)  # the device of this process, whatever the model was trained on
    rounds = (0, model.best_iteration + 1) if model.best_iteration is not None else (0, 0)
    # Through a DMatrix rather than inplace_predict: from host memory onto a GPU model, inplace_predict
    # warns of mismatched devices and falls back to a DMatrix anyway.
    matrix = xgboost.DMatrix(X, feature_types=model.feature_types, enable_categorical=True)
    return booster.predict(matrix, iteration_range=rounds)


def predict_proba(model: XGBoostModel, X: np.ndarray, device: str) -> np.ndarray:
    """Each row's probability of each class (columns in the classes' order, float64, rows summing to 1)."""
    out = np.asarray(_raw(model, X, device), dtype=np.float64)
    if out.ndim == 1:
        out = np.column_stack([1.0 - out, out])
    # softprob's float32 rows can miss 1 by an ulp or so; users sum them.
    return out / out.sum(axis=1, keepdims=True)


def predict(model: XGBoostModel, X: np.ndarray, device: str) -> np.ndarray:
    """The predicted label of each row (a regression: value)."""
    if model.task == "regression":
        return np.asarray(_raw(model, X, device), dtype=np.float64)
    return model.classes[predict_proba(model, X, device).argmax(axis=1)]


FAMILY = Family(
    name="xgboost",
    tunable_params=TUNABLE_PARAMS,
    default_params={"random_state": DEFAULT_RANDOM_STATE},
    matrix_dtype=np.float32,
    train=train,
    predict=predict,
    uses_gpu=True,
    predict_proba=predict_proba,
)
