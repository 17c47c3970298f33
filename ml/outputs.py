"""The columns of a predictions file, and the checks on the input columns a predict copies into it.

Light (pyarrow only): the API runs the same checks at submission, from the Parquet footer.

A predictions file holds, in order:

1. the ``passthrough`` columns of the input, in the input's column order (for joining back);
2. one column named after the model's target: the predicted label (a regression: value);
3. for a classification, one ``proba_<class>`` column per class, in the model's class order,
   each row summing to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ml.errors import DataProblem

PROBA_PREFIX = "proba_"


def proba_column(label: Any) -> str:
    """The name of a class's probability column: ``proba_`` and the label as text (``proba_yes``, ``proba_1``)."""
    return f"{PROBA_PREFIX}{label.item() if isinstance(label, np.generic) else label}"


def output_columns(target: str, classes: Sequence[Any], *, probabilities: bool = True) -> list[str]:
    """The columns a predict writes besides the passthrough ones (``classes`` empty for a regression)."""
    return [target] + ([proba_column(c) for c in classes] if probabilities else [])


def check_passthrough(
    schema: pa.Schema, names: Sequence[str], outputs: Sequence[str] = (), *, dataset: str = "the prediction data"
) -> None:
    """Refuse passthrough columns the input lacks, named twice, or clashing with a predicted column.

    Raises:
      DataProblem: ``job.passthrough_missing``, ``job.passthrough_duplicate`` or ``job.passthrough_conflict``.
    """
    missing = [n for n in names if n not in schema.names]
    if missing:
        shown = ", ".join(f"'{n}'" for n in missing[:10])
        raise DataProblem(
            "job.passthrough_missing",
            f"Passthrough column(s) {shown} are not in {dataset}. Columns found: "
            + ", ".join(f"'{n}'" for n in schema.names[:20])
            + ("..." if len(schema.names) > 20 else "")
            + ".",
            "Name columns of the dataset you predict (names are case-sensitive), or leave passthrough out.",
        )
    twice = sorted({n for n in names if list(names).count(n) > 1})
    if twice:
        raise DataProblem(
            "job.passthrough_duplicate",
            f"Passthrough names {', '.join(repr(n) for n in twice)} more than once.",
            "Name each column once.",
        )
    clash = [n for n in names if n in set(outputs)]
    if clash:
        raise DataProblem(
            "job.passthrough_conflict",
            f"Passthrough column(s) {', '.join(repr(n) for n in clash)} would have the name of a predicted column.",
            "Rename the column in the data, or leave it out of passthrough (the predictions file has "
            + ", ".join(repr(n) for n in outputs[:5])
            + ").",
        )
