"""Bodies of the model registry (``/v1/registry``) and the notices feed (``/v1/notices``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api.examples import examples

AT = "2026-12-07T06:00:03Z"
VERSION = {
    "version": 2,
    "model_id": "job_5f0c2a9e1b7d4c3a8e21",
    "dataset_id": "ds_9a1e4c7b2d5f8a0c3e6b",
    "dataset_ref": "sales@latest",
    "evaluate_on": "ds_1c4f7a0d3b6e9c2f5a8d",
    "created_at": AT,
    "metrics": {"accuracy": 0.912, "f1": 0.908, "roc_auc": 0.967, "log_loss": 0.231},
    "by": "key:k7d2",
}
MOVE = {
    "version": 2,
    "from": 1,
    "at": AT,
    "by": "schedule:sch_3b8e1f6a9c2d5e8b1a4c",
    "job_id": VERSION["model_id"],
    "reason": "Version 2 is better: accuracy 0.912 against 0.874 for version 1 (improvement 0.038 >= min_delta 0).",
    "compared": {"metric": "accuracy", "new": 0.912, "old": 0.874},
}
NOTICE = {"seq": 0, "at": AT, "type": "registry.alias_moved", "message": "churn@champion moved to version 2 (from 1)",
          "name": "churn", "alias": "champion", "move": MOVE}  # fmt: skip


class PromoteRule(BaseModel):
    """Move ``alias`` to the new version if it beats the alias's current version on ``metric``,
    both scored on the fit's ``evaluate_on`` data, by more than nothing and at least ``min_delta``."""

    model_config = ConfigDict(extra="forbid", strict=True)  # a request: JSON false is no number
    alias: str = Field(min_length=1, max_length=50, examples=["champion"])
    metric: str = Field(
        min_length=1,
        max_length=50,
        examples=["accuracy"],
        description="A metric of the fit's task (accuracy, f1, roc_auc, log_loss; r2, rmse, mae).",
    )
    min_delta: float = Field(0.0, ge=0, description="How much better the new version must be.")  # fmt: skip


class RegistrationFields(BaseModel):
    """What a fit body may ask of the registry (``JobCreate`` takes these fields)."""

    register_as: str | None = Field(
        None, min_length=1, max_length=200, description="Register the finished fit as the next version of this model."
    )
    evaluate_on: str | None = Field(
        None,
        min_length=1,
        max_length=260,
        description="A fit: a dataset with the target (id or name@version) to score the model on "
        "(result.validation.evaluation); a registered fit's promotion compares versions on it.",
    )
    promote: PromoteRule | None = Field(None, description="Move an alias to the new version if it wins.")  # fmt: skip


class JobReferences(BaseModel):
    """What a job shows of its references and registration (``JobPublic`` has these fields)."""

    dataset_ref: str | None = Field(None, description="The reference dataset_id was resolved from (sales@latest).")
    model_ref: str | None = Field(None, description="The reference model_id was resolved from (churn@champion).")
    registration: dict[str, Any] | None = Field(None, description="A registered fit's name, evaluation data, rule.")


class RegistryVersionPublic(BaseModel):
    """One version of a registered model."""

    model_config = ConfigDict(extra="allow")
    version: int
    model_id: str = Field(description="The fit job whose model this version is (predict with it or name@version).")
    dataset_id: str
    dataset_ref: str | None = None
    evaluate_on: str | None = None
    metrics: dict[str, Any] = {}
    created_at: datetime
    by: str | None = Field(None, description="Who registered it: key:<api key id> or schedule:<id>.")


class RegistryModelPublic(BaseModel):
    """A registered model: its versions, oldest first, and where each alias points."""

    model_config = ConfigDict(json_schema_extra=examples({"name": "churn", "versions": [VERSION],
                                                          "aliases": {"champion": 2}}))  # fmt: skip
    name: str
    versions: list[RegistryVersionPublic]
    aliases: dict[str, int] = Field(examples=[{"champion": 2}])


class RegistryNamePublic(BaseModel):
    name: str
    latest_version: int | None
    aliases: dict[str, int]


class RegistryNamesPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=examples({"items": [{"name": "churn", "latest_version": 3, "aliases": {"champion": 2}}]})
    )
    items: list[RegistryNamePublic]


class AliasMove(BaseModel):
    """Point an alias at a version by hand (a rollback, or a manual promotion)."""

    model_config = ConfigDict(extra="forbid", strict=True)  # a request: JSON false is no number
    version: int = Field(ge=1)
    reason: str | None = Field(None, max_length=500)


class AliasMovePublic(BaseModel):
    """One move of an alias: to which version, from which, when, by whom, why, what was compared."""

    model_config = ConfigDict(extra="allow", json_schema_extra=examples(MOVE))
    version: int
    from_: int | None = Field(None, alias="from", serialization_alias="from")
    at: datetime
    by: str | None = None
    reason: str | None = None
    compared: dict[str, Any] | None = Field(None, description="The metric and both versions' scores, for a "
                                             "promotion decided by a fit.")  # fmt: skip
    job_id: str | None = None


class AliasHistoryPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra=examples({"name": "churn", "alias": "champion", "current": 2, "items": [MOVE]})
    )
    name: str
    alias: str
    current: int | None
    items: list[AliasMovePublic] = Field(description="Every move, oldest first.")


class NoticePublic(BaseModel):
    model_config = ConfigDict(extra="allow")
    seq: int
    at: datetime
    type: str = Field(examples=["registry.alias_moved", "schedule.failed"])
    message: str


class NoticesPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples({"items": [NOTICE], "next_after": 1}))
    items: list[NoticePublic]
    next_after: int
