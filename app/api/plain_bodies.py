"""Success bodies that routes build as plain dicts (the seed's routes, the health probes), as the
OpenAPI document describes them.

The routes keep building the dicts, field for field what the seed's clients read; these models
only document them (FastAPI checks the dicts against them), so no client sees a change.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.api import examples as ex


class LegacyUploaded(BaseModel):
    """``GET /upload``: the new dataset's id and the presigned URL to PUT its Parquet bytes to."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"id": ex.DATASET_ID, "url": ex.URL}))

    id: str
    url: str


class LegacyFitSubmitted(BaseModel):
    """``POST /fit``: the job's id (an identical earlier fit's when deduplicated)."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"id": ex.FIT_ID, "deduplicated": False}))

    id: str
    deduplicated: bool = Field(description="True when an identical earlier fit was returned instead of a new one.")


class LegacyPredictSubmitted(BaseModel):
    """``POST /predict``: the job's id."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"id": ex.PREDICT_ID}))

    id: str


class LegacyDownload(BaseModel):
    """``GET /result``: a presigned GET URL of the predictions and when it expires (Unix seconds)."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"url": ex.URL, "expires_at": 1796115900.0}))

    url: str
    expires_at: float


class HealthStatus(BaseModel):
    """``/healthz`` and ``/readyz``: ``ok`` (alive) or ``ready`` (the broker and the store answer)."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"status": "ok"}, {"status": "ready"}))

    status: str = Field(examples=["ok", "ready"])
