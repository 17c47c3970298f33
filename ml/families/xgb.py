"""``xgboost``: XGBoost's gradient-boosted trees (``hist``), on a GPU (``device="cuda"``) where one is usable.

XGBoost is imported when a model of this family trains or predicts, not when the registry is read:
a process that never uses the family (the API, a CPU lane) never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.families.base import Family, Trained, TrainingSet

# The XGBClassifier parameters a user may set, with their types; early_stopping as for hgb.
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

    def booster(self, device: str) -> Any:
        """The booster, loaded to run on ``device``."""
        import xgboost

        booster = xgboost.Booster(model_file=bytearray(self.model))
        booster.set_param({"device": device})
        return booster


def train(data: TrainingSet, params: dict[str, Any], device: str, start_from: XGBoostModel | None = None) -> Trained:
    """Fit an XGBClassifier on ``device``; early stopping on ``data``'s validation rows when given.

    Categorical columns are declared as such (``feature_types`` ``c``) and split on natively.
    ``start_from``: a model to continue with ``n_estimators`` more rounds (a chunked fit: ml/checkpoint.py).
    """
    import xgboost

    chosen = {k: v for k, v in params.items() if k != "early_stopping"}
    feature_types = ["c" if flag else "q" for flag in data.categorical]
    stopping = data.X_val is not None
    classifier = xgboost.XGBClassifier(
        tree_method="hist",
        device=device,
        enable_categorical=True,
        feature_types=feature_types,
        early_stopping_rounds=EARLY_STOPPING_ROUNDS if stopping else None,
        **chosen,
    )
    previous = None if start_from is None else start_from.booster(device)
    if stopping:
        classifier.fit(data.X, data.codes, eval_set=[(data.X_val, data.codes_val)], verbose=False, xgb_model=previous)
    else:
        classifier.fit(data.X, data.codes, xgb_model=previous)
    booster = classifier.get_booster()
    best = booster.attr("best_iteration")
    model = XGBoostModel(
        model=bytes(booster.save_raw(raw_format="ubj")),
        classes=data.classes,
        feature_types=feature_types,
        best_iteration=None if best is None else int(best),
    )
    return Trained(
        estimator=model,
        iterations=int(booster.num_boosted_rounds()),
        device=device,
        best_iteration=model.best_iteration,
    )


def predict(model: XGBoostModel, X: np.ndarray, device: str) -> np.ndarray:
    """The predicted label of each row, with the trees up to the best validation round when early stopping ran."""
    import xgboost

    booster = model.booster(device)  # the device of this process, whatever the model was trained on
    rounds = (0, model.best_iteration + 1) if model.best_iteration is not None else (0, 0)
    # Through a DMatrix rather than inplace_predict: from host memory onto a GPU model, inplace_predict
    # warns of mismatched devices and falls back to a DMatrix anyway.
    matrix = xgboost.DMatrix(X, feature_types=model.feature_types, enable_categorical=True)
    probabilities = booster.predict(matrix, iteration_range=rounds)
    codes = probabilities.argmax(axis=1) if probabilities.ndim == 2 else (probabilities > 0.5).astype(np.int64)
    return model.classes[codes]


FAMILY = Family(
    name="xgboost",
    tunable_params=TUNABLE_PARAMS,
    default_params={"random_state": DEFAULT_RANDOM_STATE},
    matrix_dtype=np.float32,
    train=train,
    predict=predict,
    uses_gpu=True,
)
