"""Reading a user's Parquet for a fit or a predict: open it, run the checks, learn the encoding, and
build the matrices a family trains on. The CPU side of the work; the model step never calls it."""

from __future__ import annotations

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
from ml.schema import CATEGORICAL, TARGET, check_predict_schema, check_target, check_training_schema, nan_as_null
from ml.training import encode_target, validation_split


@dataclass
class TrainingSource:
    """A checked training file: its encoding, which rows have a target, and their class codes."""

    source: pq.ParquetFile
    spec: FeatureSpec
    rows: pa.ChunkedArray | None  # True where the row has a target; None when every row has one
    classes: np.ndarray
    codes: np.ndarray

    def training_set(self, params: dict[str, Any], dtype: type) -> TrainingSet:
        """The matrices to train on, split for early stopping as ``params`` decide."""
        split = validation_split(self.codes, params)
        categorical = categorical_flags(self.spec)
        if split is None:
            X = self.spec.matrix(self.source, self.rows, dtype=dtype)
            return TrainingSet(X=X, codes=self.codes, classes=self.classes, categorical=categorical)
        X, X_val = self.spec.matrices(self.source, self.rows, list(split), dtype=dtype)
        return TrainingSet(
            X=X,
            codes=self.codes[split[0]],
            classes=self.classes,
            categorical=categorical,
            X_val=X_val,
            codes_val=self.codes[split[1]],
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


def read_training(path: Path, progress: Progress | None = None, target: str = TARGET) -> TrainingSource:
    """Check a training file and learn its encoding; rows without a target are left out (and reported).

    ``target`` names the column of class labels.

    Raises:
      DataProblem: the file cannot train (see ``ml.schema``).
    """
    source = open_parquet(path)
    kinds = check_training_schema(source.schema_arrow, source.metadata.num_rows, target)
    y = nan_as_null(source.read(columns=[target]).column(0))
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
    classes, codes = encode_target(y)
    return TrainingSource(source=source, spec=spec, rows=rows, classes=classes, codes=codes)


def read_predict(path: Path, spec: FeatureSpec, target: str = TARGET) -> pq.ParquetFile:
    """Open a prediction file and check it against the model's feature columns (a ``target`` column is ignored).

    Raises:
      DataProblem: unreadable, no rows, or columns that do not match ``spec``.
    """
    source = open_parquet(path)
    check_predict_schema(source.schema_arrow, source.metadata.num_rows, spec.columns, target)
    return source


def categorical_flags(spec: FeatureSpec) -> list[bool]:
    """One flag per feature column: True where it holds category codes."""
    return [kind == CATEGORICAL for kind in spec.columns.values()]
