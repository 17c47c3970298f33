"""Reading a part on a Dask worker: row group by row group, column by column, into float32 batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.features import FeatureSpec
from ml.schema import CATEGORICAL, nan_as_null

# Rows per batch handed to XGBoost (views of one row group's matrix).
BATCH_ROWS = 32_768
READ_BUFFER_BYTES = 1 << 20


def plain_type(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column as its plain values."""
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def batch_matrices(
    path: Path, spec: FeatureSpec, target: str | None, classes: np.ndarray | None
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """The Parquet file at ``path`` in batches: each a float32 matrix (the spec's encoding) and,
    with a ``target``, each row's class code; rows without a target are left out.

    One row group at a time, filled one column at a time (Arrow decodes whole row groups, so
    reading every column of one at once would hold it twice), handed out in slices of BATCH_ROWS
    rows: a part's peak is one row group as float32 plus one column. ``tabjob upload --parts``
    writes row groups of at most 65,536 rows."""
    source = pq.ParquetFile(path, buffer_size=READ_BUFFER_BYTES, pre_buffer=False)
    for group in range(source.metadata.num_row_groups):
        codes = keep = None
        if target is not None:
            y = plain_type(nan_as_null(source.read_row_group(group, columns=[target]).column(0).combine_chunks()))
            keep = pc.is_valid(y) if y.null_count else None
            codes = np.searchsorted(classes, pc.drop_null(y).to_numpy(zero_copy_only=False)).astype(np.int32)
        n_rows = source.metadata.row_group(group).num_rows if keep is None else len(codes)
        X = np.empty((n_rows, len(spec.columns)), dtype=np.float32)
        for j, (name, kind) in enumerate(spec.columns.items()):
            column = source.read_row_group(group, columns=[name]).column(0)
            X[:, j] = spec.encode(name, kind, column if keep is None else column.filter(keep))
            del column
        for start in range(0, n_rows, BATCH_ROWS):
            stop = start + BATCH_ROWS
            yield X[start:stop], None if codes is None else codes[start:stop]
        del X


def feature_types(spec: FeatureSpec) -> list[str]:
    return ["c" if kind == CATEGORICAL else "q" for kind in spec.columns.values()]
