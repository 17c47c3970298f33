"""Response bodies of ``/v1/models``: a model, its validation score, features and export."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api import examples as ex


class EvaluationPublic(BaseModel):
    """A fit's metrics on its whole evaluation dataset (``evaluate_on``)."""

    model_config = ConfigDict(extra="allow")  # one key per metric of the task (docs/models.md)

    dataset_id: str
    rows: int
    notes: list[str] = []


class ValidationPublic(BaseModel):
    """A model's scores on rows it did not train on, and which rows those were.

    Beside ``score`` (the task's main metric), one key per metric of the task: a classification's
    ``accuracy``, ``log_loss``, ``roc_auc`` (one-vs-rest for several classes), ``f1`` (macro) and
    ``confusion_matrix`` (rows true, columns predicted, in ``classes`` order); a regression's
    ``r2``, ``rmse`` and ``mae``. ``evaluation`` holds the same on the ``evaluate_on`` dataset."""

    model_config = ConfigDict(extra="allow")

    score: float | None = Field(
        description="The task's main metric (accuracy; a regression's r2) on the held-out rows; None when none were."
    )
    metric: Literal["accuracy", "r2"] = "accuracy"
    split: Literal["early_stopping", "none"] = Field(
        description="`early_stopping`: the rows held out to decide when to stop training; `none`: no rows held out."
    )
    rows: int = 0
    note: str | None = None
    evaluation: EvaluationPublic | None = None


class FeaturePublic(BaseModel):
    name: str
    kind: str
    type: str | None = Field(None, description="The column's type in the training data (`double`, `string`...).")
    categories: list[str] | None = None


class ModelPublic(BaseModel):
    """A model: a finished fit, named by the fit job's id; what it reads, predicts, scores and weighs."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.MODEL))

    id: str
    dataset_id: str
    created_at: datetime
    trained_at: datetime | None = None
    target: str
    classes: list[Any]
    features: list[FeaturePublic]
    rows: int | None = None
    iterations: int | None = None
    family: str | None = None
    validation: ValidationPublic | None = None
    duration_s: float | None = Field(None, description="How long the fit ran, in seconds.")
    size_bytes: int | None = Field(None, description="The model file's size, in bytes.")
    params: dict[str, Any] = {}
    task: str = Field("classification", description="classification or regression.")
    task_reason: str | None = Field(None, description="`asked for`, or why the task was inferred from the target.")
    target_range: dict[str, float] | None = Field(
        None, description="A regression's target in training: min, max and mean (a classification has `classes`)."
    )
    params_used: dict[str, Any] = Field(
        {}, description="Every parameter the estimator was built with, the family's defaults included."
    )
    evaluate_on: str | None = Field(None, description="The dataset the model was also scored on, if any.")


class ModelsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.listing(ex.MODEL)))

    items: list[ModelPublic]
    next_cursor: str | None = None


class ModelSchemaPublic(BaseModel):
    """What a model reads and predicts: its target, classes and feature columns in order."""

    target: str
    classes: list[Any]
    features: list[FeaturePublic]


class ModelExportPublic(BaseModel):
    """A presigned URL of the model's file, its format, and its feature schema."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.MODEL_EXPORT))

    model_id: str
    url: str
    expires_at: datetime
    filename: str
    format: str
    schema_: ModelSchemaPublic = Field(alias="schema", serialization_alias="schema")
