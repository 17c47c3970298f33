"""Turning Parquet columns into the matrix a model family learns from.

Every column becomes one column of a row-major matrix (float64 for HistGradientBoosting, float32
for XGBoost), filled one Parquet column at a time, so peak memory is the matrix plus one column
(never a DataFrame plus a copy): numbers as they are, booleans as 0/1, text as category codes
(both families' native categorical support), dates as seconds since the epoch; missing values as NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.matrix import fill_matrices
from ml.schema import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC

# HistGradientBoosting bins categories into at most max_bins (255) bins, one kept for missing.
MAX_CATEGORIES = 250
_UNITS_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


@dataclass
class FeatureSpec:
    """The feature columns a model was trained on, and how each is encoded.

    Attributes:
      columns: column name to kind (numeric, boolean, categorical, datetime), in training order.
      categories: for categorical columns, the categories in code order; others map to missing.
      notes: remarks for the user made while learning the encoding.
    """

    columns: dict[str, str]
    categories: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def learn(cls, source: pq.ParquetFile, kinds: Mapping[str, str]) -> FeatureSpec:
        """Learn the encoding of ``kinds`` from the training file (reads categorical columns only)."""
        spec = cls(columns=dict(kinds))
        for name, kind in kinds.items():
            if kind != CATEGORICAL:
                continue
            values = _as_text(source.read(columns=[name]).column(0))
            counts = pc.value_counts(pc.drop_null(values))
            order = np.argsort(-counts.field("counts").to_numpy(), kind="stable")
            cats = counts.field("values").take(pa.array(order[:MAX_CATEGORIES])).to_pylist()
            if len(counts) > MAX_CATEGORIES:
                spec.notes.append(
                    f"Column '{name}' has {len(counts):,} distinct values; the {MAX_CATEGORIES} "
                    "most frequent are used as categories and the rest count as missing."
                )
            spec.categories[name] = cats
        return spec

    @property
    def categorical_mask(self) -> list[bool] | None:
        """Which matrix columns are categorical, or None when none are."""
        mask = [kind == CATEGORICAL for kind in self.columns.values()]
        return mask if any(mask) else None

    def matrix(
        self, source: pq.ParquetFile, rows: pa.ChunkedArray | None = None, *, dtype: type = np.float64
    ) -> np.ndarray:
        """The feature matrix of ``source``, optionally only the rows where ``rows`` is true."""
        return self.matrices(source, rows, dtype=dtype)[0]

    def matrices(
        self,
        source: pq.ParquetFile,
        rows: pa.ChunkedArray | None = None,
        parts: list[np.ndarray] | None = None,
        *,
        dtype: type = np.float64,
    ) -> list[np.ndarray]:
        """One matrix per index array in ``parts`` (row positions after the ``rows`` filter), all
        filled in one pass over the columns: a train/validation split costs no copy of the whole
        matrix. Without ``parts``, one matrix of every row. ``dtype``: float64 for
        HistGradientBoosting, float32 for XGBoost (what it stores internally anyway)."""
        n = source.metadata.num_rows if rows is None else int(pc.sum(rows).as_py() or 0)
        values = (self.column_values(source, name, rows) for name in self.columns)
        return fill_matrices(values, n, len(self.columns), parts, dtype)

    def column_values(self, source: pq.ParquetFile, name: str, rows: pa.ChunkedArray | None = None) -> np.ndarray:
        """One feature column of ``source`` encoded as float64 (NaN for missing), filtered by ``rows``."""
        column = source.read(columns=[name]).column(0)
        if rows is not None:
            column = column.filter(rows)
        return self._encode(name, self.columns[name], column)

    @classmethod
    def from_dict(cls, described: Mapping) -> FeatureSpec:
        """The spec ``to_dict`` described (as a fit summary reports it under ``features``)."""
        return cls(columns=dict(described["columns"]), categories=dict(described.get("categories", {})))

    def _encode(self, name: str, kind: str, column: pa.ChunkedArray) -> np.ndarray:
        if kind == CATEGORICAL:
            codes = pc.index_in(_as_text(column), value_set=pa.array(self.categories[name], pa.string()))
            return _floats(codes)
        if kind == DATETIME:
            return _seconds(column)
        if kind in (NUMERIC, BOOLEAN):
            return _floats(column)
        raise ValueError(f"unknown feature kind {kind!r} for column {name!r}")

    def encode(self, name: str, kind: str, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """One feature column (any slice of it, a row group for instance) encoded as float64."""
        return self._encode(name, kind, column)

    def to_dict(self) -> dict:
        """A JSON-ready description (saved beside the model for checks at submission)."""
        return {"columns": self.columns, "categories": self.categories}


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return pc.cast(column, pa.string())


def _seconds(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_date(column.type):
        column = pc.cast(column, pa.timestamp("s"))
    # Through integers of the column's own unit: casting timestamp[ns] to another unit refuses
    # values that are not whole in that unit (nanosecond clocks).
    return _floats(pc.cast(column, pa.int64())) / _UNITS_PER_SECOND[column.type.unit]


def _floats(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    # float64 nulls come out as NaN, the model's missing value. Unsafe: integers beyond 2**53
    # (ids, nanosecond clocks) round to the nearest float instead of failing the cast.
    return pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
