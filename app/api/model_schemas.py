"""Response bodies of ``/v1/models``: a model, its validation score, features and export."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api import examples as ex


class ValidationPublic(BaseModel):
    """A model's score on rows it did not train on, and which rows those were."""

    score: float | None = Field(description="Accuracy on the held-out rows; None when none were held out.")
    metric: Literal["accuracy"] = "accuracy"
    split: Literal["early_stopping", "none"] = Field(
        description="`early_stopping`: the rows held out to decide when to stop training; `none`: no rows held out."
    )
    rows: int = 0
    note: str | None = None


class FeaturePublic(BaseModel):
    name: str
    kind: str
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
