"""Typed results about models: a model, its validation score, and where to download its file.

As in ``tabjob.results``, each class keeps the API's JSON whole in ``raw``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tabjob.results import _time

# The metric keys of ``result.validation`` per task (tabjob's ml.metrics; docs/models.md).
CLASSIFICATION_METRICS = ("accuracy", "log_loss", "roc_auc", "f1", "confusion_matrix")
REGRESSION_METRICS = ("r2", "rmse", "mae")
_METRIC_KEYS = CLASSIFICATION_METRICS + REGRESSION_METRICS


def _metrics(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in _METRIC_KEYS if k in data}


@dataclass(frozen=True)
class Evaluation:
    """A model's metrics on its whole evaluation dataset (the fit's ``evaluate_on``)."""

    dataset_id: str
    rows: int
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Evaluation | None:
        if not data:
            return None
        return cls(data.get("dataset_id", ""), int(data.get("rows") or 0), _metrics(data), data.get("notes") or [])


@dataclass(frozen=True)
class Validation:
    """How a model scored on rows it did not train on: ``score`` is ``metric`` (accuracy; a
    regression's r2) on ``split``, and ``metrics`` every metric of the task there (a
    classification's accuracy, log_loss, roc_auc, f1, confusion_matrix; a regression's r2, rmse,
    mae; None where undefined on those rows). ``evaluation`` has the same on the fit's
    ``evaluate_on`` dataset.

    ``split`` is ``early_stopping`` (the rows held out to decide when to stop training) or
    ``none`` (no rows were held out: ``score`` is None, and ``note`` says how to get one).
    """

    score: float | None
    metric: str
    split: str
    rows: int | None = None
    note: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    evaluation: Evaluation | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Validation | None:
        if not data:
            return None
        return cls(
            data.get("score"), data.get("metric", ""), data.get("split", ""), data.get("rows"), data.get("note"),
            _metrics(data), Evaluation.from_api(data.get("evaluation")),
        )  # fmt: skip


@dataclass(frozen=True)
class Model:
    """A trained model: a finished fit, named by the fit job's id.

    ``features`` are the columns a prediction needs (name, kind and type); ``target`` the column
    it learned; ``task`` ``classification`` (``classes``) or ``regression`` (``target_range``);
    ``params_used`` every parameter the estimator was built with; ``size_bytes`` the model
    file's size; ``duration_s`` how long the fit ran.
    """

    id: str
    dataset_id: str
    created_at: datetime
    target: str
    classes: list[Any]
    features: list[dict[str, Any]]
    trained_at: datetime | None = None
    rows: int | None = None
    iterations: int | None = None
    validation: Validation | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"
    task_reason: str | None = None
    family: str | None = None
    target_range: dict[str, float] | None = None
    params_used: dict[str, Any] = field(default_factory=dict)
    evaluate_on: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Model:
        return cls(
            id=data["id"],
            dataset_id=data["dataset_id"],
            created_at=_time(data["created_at"]),  # type: ignore[arg-type]
            target=data.get("target", "y"),
            classes=data.get("classes") or [],
            features=data.get("features") or [],
            trained_at=_time(data.get("trained_at")),
            rows=data.get("rows"),
            iterations=data.get("iterations"),
            validation=Validation.from_api(data.get("validation")),
            duration_s=data.get("duration_s"),
            size_bytes=data.get("size_bytes"),
            params=data.get("params") or {},
            task=data.get("task") or "classification",
            task_reason=data.get("task_reason"),
            family=data.get("family"),
            target_range=data.get("target_range"),
            params_used=data.get("params_used") or {},
            evaluate_on=data.get("evaluate_on"),
            raw=data,
        )

    def to_dict(self) -> dict[str, Any]:
        """The model as the API sent it (JSON-ready)."""
        return dict(self.raw)


@dataclass(frozen=True)
class ModelExport:
    """Where to download a model file (``url``, until ``expires_at``), its format, and its schema."""

    model_id: str
    url: str
    expires_at: datetime
    filename: str
    format: str
    schema: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ModelExport:
        return cls(
            model_id=data["model_id"],
            url=data["url"],
            expires_at=_time(data["expires_at"]),  # type: ignore[arg-type]
            filename=data["filename"],
            format=data["format"],
            schema=data["schema"],
            raw=data,
        )
