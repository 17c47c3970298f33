"""Reading a part on a Dask worker: row group by row group, column by column, into float32 batches.

Arrow decodes a Parquet column a row group at a time, and its streaming reader
(``ParquetFile.iter_batches``) holds buffers for every column of the row group at once (measured:
+60 MiB of RSS for 20 columns at any batch size), so parts are read one column of one row group
at a time (+11 MiB). A row group no larger than a batch becomes one float32 matrix, filled column
by column. A larger one (pyarrow writes up to 1 Mi rows per group by default: 80 MiB of float32 at
20 columns) is staged: each column's float32 encoding is written to a scratch file beside the part,
and the batches are read back from it, a slice of every column at a time. Nothing here holds more
than one column of a row group and one batch; no pandas in between.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.features import FeatureSpec
from ml.schema import CATEGORICAL, nan_as_null

READ_BUFFER_BYTES = 1 << 20
# A batch costs each cell its float32 (4 bytes) and XGBoost's copy of it while it quantises the
# batch into a page (up to 4 more), counted at 12 for slack.
BATCH_BYTES_PER_CELL = 12
MIN_BATCH_ROWS = 1_024
MAX_BATCH_ROWS = 262_144
# Without a memory limit (a test, a job process): 8 MiB of batch.
DEFAULT_BATCH_BYTES = 8 << 20


def plain_type(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A dictionary-encoded column as its plain values."""
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def batch_rows(columns: int, budget_bytes: int = DEFAULT_BATCH_BYTES) -> int:
    """Rows per batch so that one batch of ``columns`` features costs about ``budget_bytes``."""
    rows = budget_bytes // (BATCH_BYTES_PER_CELL * max(1, columns))
    return int(min(MAX_BATCH_ROWS, max(MIN_BATCH_ROWS, rows)))


def batch_matrices(
    path: Path,
    spec: FeatureSpec,
    target: str | None,
    classes: np.ndarray | None,
    *,
    rows_per_batch: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """The Parquet file at ``path`` in batches of at most ``rows_per_batch`` rows (``batch_rows`` of
    the default budget when None): each a float32 matrix (the spec's encoding) and, with a
    ``target``, each row's label: its class code (int32) when ``classes`` are given, else the
    target's value (float32, a regression). Rows without a target are left out."""
    source = pq.ParquetFile(path, buffer_size=READ_BUFFER_BYTES, pre_buffer=False)
    size = rows_per_batch or batch_rows(len(spec.columns))
    for group in range(source.metadata.num_row_groups):
        labels = keep = None
        if target is not None:
            y = plain_type(nan_as_null(source.read_row_group(group, columns=[target]).column(0).combine_chunks()))
            keep = pc.is_valid(y) if y.null_count else None
            labels = _labels(pc.drop_null(y), classes)
            del y
        n_rows = source.metadata.row_group(group).num_rows if labels is None else len(labels)
        columns = (_column(source, group, name, kind, spec, keep) for name, kind in spec.columns.items())
        if n_rows <= size:
            X = np.empty((n_rows, len(spec.columns)), dtype=np.float32)
            for j, values in enumerate(columns):
                X[:, j] = values
            yield X, labels
            continue
        with _Staged(path, n_rows, len(spec.columns), columns) as staged:
            for start in range(0, n_rows, size):
                stop = min(n_rows, start + size)
                yield staged.rows(start, stop), None if labels is None else labels[start:stop]


def _column(
    source: pq.ParquetFile, group: int, name: str, kind: str, spec: FeatureSpec, keep: pa.Array | None
) -> np.ndarray:
    """One feature column of one row group, encoded (float64), rows without a target left out."""
    column = source.read_row_group(group, columns=[name]).column(0)
    return spec.encode(name, kind, column if keep is None else column.filter(keep))


class _Staged:
    """A row group's float32 columns in a scratch file (column after column), read back by rows."""

    def __init__(self, beside: Path, n_rows: int, n_columns: int, columns: Iterator[np.ndarray]) -> None:
        self.n_rows, self.n_columns = n_rows, n_columns
        fd, name = tempfile.mkstemp(prefix="tabjob-stage-", dir=beside.parent)
        self.path, self.file = Path(name), os.fdopen(fd, "w+b")
        for values in columns:
            values.astype(np.float32).tofile(self.file)
        self.file.flush()

    def rows(self, start: int, stop: int) -> np.ndarray:
        X = np.empty((stop - start, self.n_columns), dtype=np.float32)
        for j in range(self.n_columns):
            offset = (j * self.n_rows + start) * 4
            X[:, j] = np.frombuffer(os.pread(self.file.fileno(), (stop - start) * 4, offset), dtype=np.float32)
        return X

    def __enter__(self) -> _Staged:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


def _labels(y: pa.Array, classes: np.ndarray | None) -> np.ndarray:
    values = y.to_numpy(zero_copy_only=False)
    if classes is None:
        return values.astype(np.float32)
    return np.searchsorted(classes, values).astype(np.int32)


def feature_types(spec: FeatureSpec) -> list[str]:
    return ["c" if kind == CATEGORICAL else "q" for kind in spec.columns.values()]
