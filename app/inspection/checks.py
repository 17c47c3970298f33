"""What an inspection child checks of a tenant's file (``app.inspection.pool`` runs it under a
memory limit): the request, and the check itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.settings import Settings
from app.core.storage import ObjectInfo


@dataclass(frozen=True)
class InspectRequest:
    """What to check of the dataset at ``key`` (version ``info``).

    ``purpose``: ``schema`` (the bounded footer's rows, columns and schema only), ``describe``
    (also the columns' names, types and kinds for the dataset page), ``fit`` (the training
    schema and a bounded scan of ``target``) or ``predict`` (the schema against ``features``, the
    model's training columns)."""

    purpose: str
    key: str
    info: ObjectInfo
    target: str = "y"
    features: dict[str, str] | None = None
    # A fit's task: classification, regression, or None to infer it (app/usecases/tasks.py).
    task: str | None = "classification"
    # A predict's columns copied next to the predictions (allowed beside the features).
    passthrough: tuple[str, ...] = ()


def inspect_in_child(store: Any, settings: Settings, request: InspectRequest) -> dict[str, Any]:
    """The check itself, run in a child: a summary with ``rows``, ``columns`` and the Arrow
    ``schema`` (the footer's, already bounded), a fit's ``task`` and ``task_reason``, and for
    ``describe`` the columns' names, types and kinds."""
    from app.inspection.limits import open_bounded, scan_target, with_dictionary
    from app.inspection.reading import data_error, describe
    from app.usecases.tasks import choose_task
    from ml.errors import DataProblem
    from ml.schema import check_predict_schema, check_training_schema
    from ml.tasks import CLASSIFICATION

    source = open_bounded(store, request.key, request.info, settings)
    rows, columns = source.metadata.num_rows, source.metadata.num_columns
    try:
        if request.purpose == "fit":
            check_training_schema(source.schema_arrow, rows, request.target)
        elif request.purpose == "predict":
            features = request.features or {}
            check_predict_schema(source.schema_arrow, rows, features, request.target, request.passthrough)
    except DataProblem as problem:
        raise data_error(problem) from problem
    summary: dict[str, Any] = {"rows": rows, "columns": columns, "schema": source.schema_arrow}
    if request.purpose == "fit":
        # The task from a bounded sample of a numeric target (text is classes without reading);
        # then a classification's labels, read as a dictionary, bounded in rows and bytes.
        choice = choose_task(source, request.target, request.task, settings.target_scan_rows)
        summary |= {"task": choice.task, "task_reason": choice.reason}
        if choice.task == CLASSIFICATION:
            labels = with_dictionary(store, request.key, request.info, source, request.target)
            scan_target(labels, settings, request.target)
    if request.purpose == "describe":
        summary["described"] = describe(source)
    return summary
