"""The answer's part that says how long a job should run (``JobPublic.estimate``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class EstimatePublic(BaseModel):
    """How long the job should run (its last attempt, start to end), from the history of finished
    jobs of its kind and model family: nearest in rows x columns (x iterations for a fit), on its
    lane when there are some (docs/api.md, "Duration estimates")."""

    duration_s: float
    low_s: float
    high_s: float
    basis: str


class ExpectedStartPublic(BaseModel):
    """When a queued job should start: the jobs ahead of it on its lane and the running ones, each
    taking its duration estimate, handed to the lane's workers as they free up (docs/api.md,
    "Expected start"). Without a worker on the lane, no time: ``reason`` says so."""

    at: datetime | None = Field(description="The expected start (UTC); None when no worker runs on the lane.")
    low: datetime | None = Field(description="The earliest it should start: every job ahead at its `low_s`.")
    high: datetime | None = Field(description="The latest it should start: every job ahead at its `high_s`.")
    in_s: float | None = Field(description="Seconds from now to `at`.")
    jobs_ahead: int = Field(description="Queued jobs ahead of it on its lane.")
    workers: int = Field(description="Live workers consuming its lane.")
    unestimated: int = Field(description="Jobs ahead or running with no estimate yet, counted as taking no time.")
    reason: str | None = Field(description="Why there is no time (no worker on the lane); None when there is one.")
    basis: str = Field(description="How the time was worked out, in words.")
