"""Reading a user's Parquet for a fit or a predict: open it, run the checks, learn the encoding, and
build the matrices a family trains on. The CPU side of the work; the model step never calls it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.errors import DataProblem
from ml.families import TrainingSet
from ml.features import FeatureSpec
from ml.io import Progress, report
from ml.outputs import check_passthrough
from ml.schema import (
    CATEGORICAL,
    TARGET,
    check_predict_schema,
    check_target,
    check_training_schema,
    describe_type,
    nan_as_null,
)
from ml.tasks import CLASSIFICATION, REGRESSION, check_task, infer_task
from ml.training import encode_target, validation_split


@dataclass
class TrainingSource:
    """A checked training file: its encoding, which rows have a target, their class codes (a
    regression: values), and the task with the reason it was chosen."""

    source: pq.ParquetFile
    spec: FeatureSpec
    rows: pa.ChunkedArray | None  # True where the row has a target; None when every row has one
    classes: np.ndarray
    codes: np.ndarray
    task: str = CLASSIFICATION
    task_reason: str = "asked for"

    def training_set(self, params: dict[str, Any], dtype: type) -> TrainingSet:
        """The matrices to train on, split for early stopping as ``params`` decide."""
        split = validation_split(self.codes, params, self.task)
        categorical = categorical_flags(self.spec)
        if split is None:
            X = self.spec.matrix(self.source, self.rows, dtype=dtype)
            return TrainingSet(X=X, codes=self.codes, classes=self.classes, categorical=categorical, task=self.task)
        X, X_val = self.spec.matrices(self.source, self.rows, list(split), dtype=dtype)
        return TrainingSet(
            X=X,
            codes=self.codes[split[0]],
            classes=self.classes,
            categorical=categorical,
            X_val=X_val,
            codes_val=self.codes[split[1]],
            task=self.task,
        )


def open_parquet(path: Path) -> pq.ParquetFile:
    """Open a Parquet file, turning 'not Parquet' and 'truncated' into a DataProblem."""
    if path.stat().st_size == 0:
        raise DataProblem(
            "dataset.empty_file", "The uploaded file is empty (0 bytes).", "Upload the Parquet file again."
        )
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataProblem(
            "dataset.not_parquet",
            f"The uploaded file is not a readable Parquet file ({exc}).",
            "Write the data with pandas.DataFrame.to_parquet or pyarrow.parquet.write_table and upload the whole file.",
        ) from exc


def read_training(
    path: Path, progress: Progress | None = None, target: str = TARGET, task: str | None = CLASSIFICATION
) -> TrainingSource:
    """Check a training file and learn its encoding; rows without a target are left out (and reported).

    ``target`` names the column to learn; ``task`` is ``classification``, ``regression`` or None
    (inferred from the target by ``ml.tasks.infer_task``, and reported).

    Raises:
      DataProblem: the file cannot train (see ``ml.schema`` and ``ml.tasks``).
    """
    source = open_parquet(path)
    kinds = check_training_schema(source.schema_arrow, source.metadata.num_rows, target)
    y = nan_as_null(source.read(columns=[target]).column(0))
    check_task(task, y.type, target)
    reason = "asked for"
    if task is None:
        task, reason = infer_task(y, target)
        report(progress, "validating", None, f"Task inferred: {task} ({reason}).")
    if task == REGRESSION:
        check_regression_target(y, target)
    else:
        check_target(y, target)
    rows = None
    if y.null_count:
        rows = pc.is_valid(y)
        y = y.filter(rows)
        message = f"{source.metadata.num_rows - len(y):,} row(s) without '{target}' are left out."
        report(progress, "validating", None, message)
    spec = FeatureSpec.learn(source, kinds)
    for message in spec.notes:
        report(progress, "validating", None, message)
    classes, codes = encode_target(y, task)
    return TrainingSource(
        source=source, spec=spec, rows=rows, classes=classes, codes=codes, task=task, task_reason=reason
    )


def check_regression_target(y: pa.ChunkedArray | pa.Array, target: str = TARGET) -> None:
    """Refuse a regression target without values, or with infinite ones (NaN counts as missing)."""
    present = pc.drop_null(y)
    if len(present) == 0:
        raise DataProblem(
            "dataset.target_all_missing",
            f"Every value of the target column '{target}' is missing.",
            f"Fill in '{target}' with the value to predict for each row.",
        )
    values = pc.cast(present, pa.float64(), safe=False)
    if not pc.all(pc.is_finite(values)).as_py():
        raise DataProblem(
            "dataset.target_not_finite",
            f"The target column '{target}' holds infinite values.",
            "Replace them with finite numbers, or leave those rows' target empty.",
        )


@dataclass
class EvaluationRows:
    """An evaluation dataset's rows with a target: their matrix and truth, and what was left out."""

    X: np.ndarray
    y_true: np.ndarray
    notes: list[str]


def read_evaluation(
    path: Path, spec: FeatureSpec, target: str, task: str, classes: np.ndarray, dtype: type
) -> EvaluationRows:
    """The rows of the evaluation file at ``path`` that have a target, encoded as the model's training was.

    A classification leaves out rows of classes the model never saw (it cannot score them) and says so.

    Raises:
      DataProblem: no target column, columns that do not match ``spec``, a regression target that
        is not numeric, or no row left to score.
    """
    source = open_parquet(path)
    if target not in source.schema_arrow.names:
        raise DataProblem(
            "evaluate.missing_target",
            f"The evaluation dataset has no column '{target}', the model's target.",
            f"Evaluate on a dataset with the true '{target}' of each row.",
        )
    check_predict_schema(source.schema_arrow, source.metadata.num_rows, spec.columns, target)
    y = nan_as_null(source.read(columns=[target]).column(0))
    if pa.types.is_dictionary(y.type):
        y = y.cast(y.type.value_type)
    check_task(task, y.type, target)
    keep = pc.is_valid(y)
    notes = []
    if y.null_count:
        notes.append(f"{y.null_count:,} evaluation row(s) without '{target}' are left out of its metrics.")
    if task == CLASSIFICATION:
        try:
            value_set = pa.array(list(classes)).cast(y.type, safe=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataProblem(
                "evaluate.incompatible_target",
                f"The evaluation dataset's '{target}' is {describe_type(y.type)}, unlike the model's classes ({exc}).",
                f"Store '{target}' with the type it had in the training data.",
            ) from exc
        known = pc.fill_null(pc.is_in(y, value_set=value_set), False)
        unseen = int(pc.sum(pc.and_(keep, pc.invert(known))).as_py() or 0)
        if unseen:
            notes.append(f"{unseen:,} evaluation row(s) of classes the model never saw are left out of its metrics.")
        keep = pc.and_(keep, known)
    kept = int(pc.sum(keep).as_py() or 0)
    if kept == 0:
        raise DataProblem(
            "evaluate.no_rows",
            f"No row of the evaluation dataset has a '{target}' the model can be scored on.",
            f"Fill in '{target}' with the true value of each row.",
        )
    y_true = y.filter(keep)
    if task == REGRESSION:
        y_values = pc.cast(y_true, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    else:
        y_values = y_true.to_numpy(zero_copy_only=False)
    X = spec.matrix(source, keep if kept < len(y) else None, dtype=dtype)
    return EvaluationRows(X=X, y_true=y_values, notes=notes)


def read_predict(
    path: Path, spec: FeatureSpec, target: str = TARGET, passthrough: Sequence[str] = ()
) -> pq.ParquetFile:
    """Open a prediction file and check it against the model's feature columns (a ``target``
    column, and ``passthrough`` columns, are allowed besides them).

    Raises:
      DataProblem: unreadable, no rows, or columns that do not match ``spec``.
    """
    source = open_parquet(path)
    if passthrough:  # first: a missing passthrough column is named as such, not as an unexpected one
        check_passthrough(source.schema_arrow, passthrough)
    check_predict_schema(source.schema_arrow, source.metadata.num_rows, spec.columns, target, passthrough)
    return source


def categorical_flags(spec: FeatureSpec) -> list[bool]:
    """One flag per feature column: True where it holds category codes."""
    return [kind == CATEGORICAL for kind in spec.columns.values()]
