"""What a submitter asks for, as the submission use case takes it: from ``POST /v1/jobs``, the
legacy routes and a schedule alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.domain import JobKind
from ml.names import CLASSIFICATION, TARGET


@dataclass(frozen=True)
class JobRequest:
    """What the submitter asked for."""

    kind: JobKind
    dataset_id: str
    model_id: str | None = None
    params: dict[str, Any] | None = None
    lane: str | None = None
    target: str = TARGET
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # The model family of a fit (default hgb); a predict's is its model's.
    model: str | None = None
    # What a fit learns: classification (the seed's, and the legacy routes'), regression, or None
    # to infer it from the target (app.usecases.tasks); a predict's is its model's.
    task: str | None = CLASSIFICATION
    # A fit's evaluation dataset (scored after training; it must have the target).
    evaluate_on: str | None = None
    # A predict's input columns copied next to the predictions, and whether it writes the
    # classes' probabilities (the legacy routes write the label column only).
    passthrough: tuple[str, ...] = ()
    probabilities: bool = False
    # The model registry (app/usecases/registry.py): register the fit as the next version of
    # ``register_as``, score it on ``evaluate_on``, and move ``promote["alias"]`` if it wins.
    register_as: str | None = None
    promote: dict[str, Any] | None = None
    # Who asked: ``key:<api key id>`` or ``schedule:<id>`` (the registry's history records it).
    actor: str | None = None
    # "dask" for the distributed engine (app/engines/); None: chosen from the dataset.
    engine: str | None = None
