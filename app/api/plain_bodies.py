"""Success bodies that routes build as plain dicts (the seed's routes, the health probes), as the
OpenAPI document describes them.

The routes keep building the dicts, field for field what the seed's clients read; these models
only document them (FastAPI checks the dicts against them), so no client sees a change.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class LegacyUploaded(BaseModel):
    """``GET /upload``: the new dataset's id and the presigned URL to PUT its Parquet bytes to."""

    id: str
    url: str


class LegacyFitSubmitted(BaseModel):
    """``POST /fit``: the job's id (an identical earlier fit's when deduplicated)."""

    id: str
    deduplicated: bool = Field(description="True when an identical earlier fit was returned instead of a new one.")


class LegacyPredictSubmitted(BaseModel):
    """``POST /predict``: the job's id."""

    id: str


class LegacyDownload(BaseModel):
    """``GET /result``: a presigned GET URL of the predictions and when it expires (Unix seconds)."""

    url: str
    expires_at: float


class HealthStatus(BaseModel):
    """``/healthz`` and ``/readyz``: ``ok`` (alive) or ``ready`` (the broker and the store answer)."""

    status: str = Field(examples=["ok", "ready"])
