"""Bodies of the model registry (``/v1/registry``) and the notices feed (``/v1/notices``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PromoteRule(BaseModel):
    """Move ``alias`` to the new version if it beats the alias's current version on ``metric``,
    both scored on the fit's ``evaluate_on`` data, by more than nothing and at least ``min_delta``."""

    model_config = ConfigDict(extra="forbid")
    alias: str = Field(min_length=1, max_length=50, examples=["champion"])
    metric: str = Field(
        min_length=1,
        max_length=50,
        examples=["accuracy"],
        description="A metric of the fit's task (accuracy, f1, roc_auc, log_loss; r2, rmse, mae).",
    )
    min_delta: float = Field(0.0, ge=0, description="How much better the new version must be.")  # fmt: skip


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

    name: str
    versions: list[RegistryVersionPublic]
    aliases: dict[str, int] = Field(examples=[{"champion": 2}])


class RegistryNamePublic(BaseModel):
    name: str
    latest_version: int | None
    aliases: dict[str, int]


class RegistryNamesPublic(BaseModel):
    items: list[RegistryNamePublic]


class AliasMove(BaseModel):
    """Point an alias at a version by hand (a rollback, or a manual promotion)."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    reason: str | None = Field(None, max_length=500)


class AliasMovePublic(BaseModel):
    """One move of an alias: to which version, from which, when, by whom, why, what was compared."""

    model_config = ConfigDict(extra="allow")
    version: int
    from_: int | None = Field(None, alias="from", serialization_alias="from")
    at: datetime
    by: str | None = None
    reason: str | None = None
    compared: dict[str, Any] | None = Field(None, description="The metric and both versions' scores, for a "
                                             "promotion decided by a fit.")  # fmt: skip
    job_id: str | None = None


class AliasHistoryPublic(BaseModel):
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
    items: list[NoticePublic]
    next_after: int
