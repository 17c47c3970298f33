"""The parameters each model family takes in a fit's ``params`` (the OpenAPI document's
``FitParams`` and ``XGBoostParams``; ``tabjob fit --help`` lists the same)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FitParams(BaseModel):
    """HistGradientBoostingClassifier parameters a fit may set; all optional.

    The same names as ``ml.model.TUNABLE_PARAMS`` (a test keeps them in step): the API does not
    import ``ml.model``, which loads scikit-learn."""

    # strict: JSON true/false is not a number (lax mode would take false as random_state 0)
    model_config = ConfigDict(extra="forbid", strict=True)
    learning_rate: float | None = Field(None, gt=0, le=10)
    max_iter: int | None = Field(None, ge=1, le=10_000)
    max_leaf_nodes: int | None = Field(None, ge=2, le=65_536)
    max_depth: int | None = Field(None, ge=1, le=1_000)
    min_samples_leaf: int | None = Field(None, ge=1)
    l2_regularization: float | None = Field(None, ge=0)
    max_bins: int | None = Field(None, ge=2, le=255)
    early_stopping: bool | None = None
    random_state: int | None = Field(None, ge=0, le=2**32 - 1)

    def chosen(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class XGBoostParams(BaseModel):
    """XGBClassifier parameters a ``xgboost`` fit may set; all optional (unset: XGBoost's defaults).

    The same names as ``ml.families.xgb.TUNABLE_PARAMS`` (a test keeps them in step)."""

    # strict: JSON true/false is not a number (lax mode would take false as random_state 0)
    model_config = ConfigDict(extra="forbid", strict=True)
    n_estimators: int | None = Field(None, ge=1, le=10_000)
    learning_rate: float | None = Field(None, gt=0, le=10)
    max_depth: int | None = Field(None, ge=0, le=100)
    max_leaves: int | None = Field(None, ge=0, le=1_000_000)
    min_child_weight: float | None = Field(None, ge=0)
    reg_lambda: float | None = Field(None, ge=0)
    reg_alpha: float | None = Field(None, ge=0)
    subsample: float | None = Field(None, gt=0, le=1)
    colsample_bytree: float | None = Field(None, gt=0, le=1)
    max_bin: int | None = Field(None, ge=2, le=65_536)
    max_cat_to_onehot: int | None = Field(None, ge=1)
    early_stopping: bool | None = None
    random_state: int | None = Field(None, ge=0, le=2**32 - 1)

    def chosen(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# The parameters each model family takes (app.usecases.families lists the families).
PARAMS_BY_MODEL: dict[str, type[FitParams] | type[XGBoostParams]] = {"hgb": FitParams, "xgboost": XGBoostParams}
ModelName = Literal["hgb", "xgboost"]
