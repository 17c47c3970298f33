"""What a job learns and reports, decided at submission: a fit's task (asked for, or inferred from a
bounded sample of its target), its evaluation dataset, and a predict's passthrough columns.

Every check reads the Parquet footer and at most ``target_scan_rows`` of one column (the same
bound as ``app.inspection.limits.scan_target``); the worker checks every row again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from app.core.domain import Job
from app.core.errors import UserError
from app.inspection.record_limits import TARGET_BATCH_ROWS, data_error
from ml.errors import DataProblem
from ml.outputs import check_passthrough, output_columns
from ml.tasks import CLASSIFICATION, INFERRED_MAX_CLASSES, REGRESSION, check_task, infer_task, is_numeric_target

ASKED_FOR = "asked for"


@dataclass(frozen=True)
class TaskChoice:
    """The task a fit learns, and why (``asked for``, or the inference rule's words)."""

    task: str
    reason: str


def choose_task(source: pq.ParquetFile, target: str, requested: str | None, max_rows: int) -> TaskChoice:
    """The fit's task: ``requested`` when given (refused when it cannot learn the target's type),
    else inferred from up to ``max_rows`` of the target (``ml.tasks.infer_task``).

    Raises:
      UserError: 422 ``dataset.target_not_numeric`` for a regression of text, booleans or dates.
    """
    dtype = source.schema_arrow.field(target).type
    try:
        check_task(requested, dtype, target)
    except DataProblem as problem:
        raise data_error(problem) from problem
    if requested is not None:
        return TaskChoice(requested, ASKED_FOR)
    sample, complete = _target_sample(source, target, max_rows)
    task, reason = infer_task(sample, target, sampled=not complete)
    return TaskChoice(task, reason)


def _target_sample(source: pq.ParquetFile, target: str, max_rows: int) -> tuple[pa.Array, bool]:
    """The distinct values of up to ``max_rows`` of the target (the rule depends on nothing else:
    how many there are, and whether they are whole), read in small batches and kept distinct, so
    memory stays one batch; stops once they are more than the rule's classes (nothing read later
    can change a regression back). Also whether every row was read."""
    dtype = source.schema_arrow.field(target).type
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    seen, scanned = pa.array([], type=dtype), 0
    if not is_numeric_target(dtype):  # text, booleans, dates: classes whatever the values
        return seen, True
    try:
        for batch in source.iter_batches(batch_size=TARGET_BATCH_ROWS, columns=[target], use_threads=False):
            seen = pa.concat_arrays([seen, batch.column(0).cast(dtype).unique()]).unique()
            scanned += batch.num_rows
            if scanned >= max_rows or len(seen) > INFERRED_MAX_CLASSES + 1:
                break
    except (pa.ArrowException, OSError) as exc:
        raise UserError(
            f"The column '{target}' could not be read ({exc}); the file is damaged or truncated.",
            code="dataset.corrupt",
            hint="Write and upload the file again.",
            status=422,
        ) from exc
    return seen, scanned >= source.metadata.num_rows


def check_predict_passthrough(schema: pa.Schema, model: Job, names: Sequence[str], probabilities: bool) -> None:
    """Refuse passthrough columns the prediction data lacks or that clash with a predicted column."""
    result = model.result or {}
    classes = result.get("classes") or [] if result.get("task", CLASSIFICATION) != REGRESSION else []
    target = result.get("target") or model.target
    try:
        check_passthrough(schema, names, output_columns(target, classes, probabilities=probabilities))
    except DataProblem as problem:
        raise data_error(problem) from problem
