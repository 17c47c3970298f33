"""The answer's part that says how long a job should run (``JobPublic.estimate``)."""

from __future__ import annotations

from pydantic import BaseModel


class EstimatePublic(BaseModel):
    """How long the job should run (its last attempt, start to end), from the history of finished
    jobs of its kind and model family: nearest in rows x columns (x iterations for a fit), on its
    lane when there are some (docs/api.md, "Duration estimates")."""

    duration_s: float
    low_s: float
    high_s: float
    basis: str
