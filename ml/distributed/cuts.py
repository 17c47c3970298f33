"""The histogram bin boundaries of a distributed fit, learnt from a sample of rows, not a sketch.

XGBoost's ``hist`` method bins every feature before training. Left to itself, each Dask worker
would sketch the quantiles of its whole share (a weighted quantile sketch of about 16 bytes per
summary entry and feature, tens of MiB at a few hundred thousand rows: measured 21 MiB for 100,000
rows x 20 features on top of a 150 MiB worker) and allreduce the sketches. The engine instead
samples rows while it scans the parts (``sample_part``, at most ``SAMPLE_ROWS_PER_PART`` rows),
computes each feature's quantiles here, in the job process, and hands every worker the same small
table whose distinct values are those quantiles; a ``QuantileDMatrix`` of that table (``max_bin``
+ 1 rows) gives its cuts to the training matrix (``ref=``) with no sketch on the workers, and every
worker bins identically. LightGBM builds its bins the same way, from 200,000 sampled rows
(``bin_construct_sample_cnt``, https://lightgbm.readthedocs.io/en/latest/Parameters.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.distributed.reading import READ_BUFFER_BYTES
from ml.features import FeatureSpec
from ml.schema import CATEGORICAL

# Rows sampled for the bins over the whole dataset (LightGBM's default), and at most per part:
# a part's sample travels to the job process, so it is bounded in cells as well.
SAMPLE_ROWS = 200_000
SAMPLE_CELLS_PER_PART = 2_000_000


def sample_part(path: Path, spec: FeatureSpec, seed: int) -> np.ndarray:
    """A uniform sample of the part's rows (at most ``SAMPLE_ROWS`` and ``SAMPLE_CELLS_PER_PART``
    cells), its numeric features as float32 and its categorical ones as NaN (their bins are their
    categories)."""
    source = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
    n_rows = source.metadata.num_rows
    want = min(n_rows, SAMPLE_ROWS, SAMPLE_CELLS_PER_PART // max(1, len(spec.columns)))
    chosen = np.sort(np.random.default_rng(seed).choice(n_rows, size=want, replace=False))
    sample = np.full((want, len(spec.columns)), np.nan, dtype=np.float32)
    start = filled = 0
    for group in range(source.metadata.num_row_groups):
        stop = start + source.metadata.row_group(group).num_rows
        lo, hi = np.searchsorted(chosen, [start, stop])
        if hi > lo:
            rows = pa.array(chosen[lo:hi] - start)
            for j, (name, kind) in enumerate(spec.columns.items()):
                if kind != CATEGORICAL:  # one column of one row group at a time (ml.distributed.reading)
                    column = source.read_row_group(group, columns=[name]).column(0).take(rows)
                    sample[filled : filled + hi - lo, j] = spec.encode(name, kind, column)
            filled += hi - lo
        start = stop
    return sample


def cut_table(samples: Sequence[np.ndarray], rows: Sequence[int], spec: FeatureSpec, max_bin: int) -> np.ndarray:
    """The table whose distinct values are each feature's bin boundaries (float32, NaN padded):
    ``max_bin`` + 1 quantiles of the numeric features over the parts' samples, each part weighted
    by its share of the rows; every category code of the categorical features."""
    weights = np.asarray(rows, dtype=np.float64) / max(1, sum(rows))
    rng = np.random.default_rng(0)
    pooled = np.concatenate([
        s[rng.choice(len(s), min(len(s), max(1, round(w * SAMPLE_ROWS))), replace=False)]
        for s, w in zip(samples, weights, strict=True) if len(s)
    ] or [np.empty((0, len(spec.columns)), np.float32)])  # fmt: skip
    height = max(max_bin + 1, *(len(spec.categories.get(n, ())) for n in spec.columns))
    table = np.full((height, len(spec.columns)), np.nan, dtype=np.float32)
    levels = np.linspace(0.0, 1.0, max_bin + 1)
    for j, (name, kind) in enumerate(spec.columns.items()):
        if kind == CATEGORICAL:
            count = len(spec.categories.get(name, ()))
            table[:count, j] = np.arange(count, dtype=np.float32)
            continue
        values = pooled[:, j][~np.isnan(pooled[:, j])]
        if len(values):
            # Values that occur in the data ("inverted_cdf"), as XGBoost's own sketch picks them.
            table[:, j][: len(levels)] = np.quantile(values, levels, method="inverted_cdf")
    return table
