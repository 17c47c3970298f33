"""What a fit learns: a classification (class labels) or a regression (numbers), and how the task is
chosen when the user names none.

The inference rule (docs/models.md, "Tasks"):

- a target of text, booleans, categories or dates is a **classification**;
- a target of integers is a classification when it holds at most ``INFERRED_MAX_CLASSES`` (20)
  distinct values, a regression otherwise;
- a target of floating-point (or decimal) numbers is a classification only when every value is a
  whole number and there are at most 20 distinct ones (labels written as 0.0/1.0 because a
  column had missing values); any fractional value makes it a regression. So a float target with
  many distinct values is never silently taken as classes.

Naming the task overrides the rule: ``classification`` of integers with hundreds of values (up to
``ml.schema.MAX_CLASSES``), or ``regression`` of a numeric target with few values. A regression
target must be numeric.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.errors import DataProblem
from ml.metrics import CLASSIFICATION, REGRESSION, TASKS
from ml.schema import TARGET, describe_type, nan_as_null

__all__ = ["CLASSIFICATION", "INFERRED_MAX_CLASSES", "REGRESSION", "TASKS", "check_task", "infer_task"]

# The most distinct values a numeric target may hold to be inferred as classes.
INFERRED_MAX_CLASSES = 20


def _value_type(dtype: pa.DataType) -> pa.DataType:
    return dtype.value_type if pa.types.is_dictionary(dtype) else dtype


def is_numeric_target(dtype: pa.DataType) -> bool:
    """Whether a target of this Arrow type can be a regression target (integers, floats, decimals)."""
    dtype = _value_type(dtype)
    return pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)


def check_task(task: str | None, dtype: pa.DataType, target: str = TARGET) -> None:
    """Refuse a task that cannot learn a target of ``dtype`` (None: inferred, always possible).

    Raises:
      DataProblem: an unknown task, or a regression of a target that is not numeric.
    """
    if task is None:
        return
    if task not in TASKS:
        raise DataProblem("job.invalid_task", f"Unknown task '{task}'.", f"Use one of {', '.join(TASKS)}.")
    if task == REGRESSION and not is_numeric_target(dtype):
        raise DataProblem(
            "dataset.target_not_numeric",
            f"The target column '{target}' holds {describe_type(_value_type(dtype))} values; "
            "a regression predicts numbers.",
            f"Store '{target}' as integers or floats, or fit a classification (task: classification).",
        )


def infer_task(y: pa.Array | pa.ChunkedArray, target: str = TARGET, *, sampled: bool = False) -> tuple[str, str]:
    """The task the rule above gives for the target values ``y``, and the reason in words.

    ``sampled``: ``y`` is a sample of the column (the reason says so); the submission check reads
    a bounded sample, and more distinct values in the rest can only keep a regression one.
    """
    dtype = _value_type(y.type)
    if not is_numeric_target(dtype):
        return CLASSIFICATION, f"the target '{target}' holds {describe_type(dtype)} values, which are classes"
    present = pc.drop_null(nan_as_null(y.cast(dtype) if pa.types.is_dictionary(y.type) else y))
    distinct = len(pc.unique(present))
    where = " in the rows read" if sampled else ""
    if pa.types.is_integer(dtype):
        whole = True
    else:
        values = present.to_numpy(zero_copy_only=False).astype(np.float64)
        whole = bool(np.all(np.isfinite(values) & (np.floor(values) == values)))
    if whole and distinct <= INFERRED_MAX_CLASSES:
        return CLASSIFICATION, (
            f"the target '{target}' holds {distinct} distinct whole number(s){where} "
            f"(at most {INFERRED_MAX_CLASSES}), taken as classes"
        )
    if not whole:
        return REGRESSION, f"the target '{target}' holds fractional numbers ({describe_type(dtype)}), a quantity"
    return REGRESSION, (
        f"the target '{target}' holds {distinct:,} distinct numbers{where} "
        f"(more than {INFERRED_MAX_CLASSES}), a quantity"
    )
