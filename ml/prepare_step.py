"""Step one of a two-step job, on a CPU lane: Parquet in, prepared matrix out (``ml.prepared``).

Downloads the dataset, runs the same checks as the one-call ``fit``/``predict``, encodes every
feature column, and uploads the prepared file. The file depends only on the dataset's bytes (and,
for a predict, the model's feature encoding), never on the model family or its parameters: the
service keeps it under ``prepared_cache_key`` and skips this step when the key already exists.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.dataset import read_predict, read_training
from ml.features import FeatureSpec
from ml.io import Progress, fetch_to_file, report, write_file
from ml.matrix import fill_matrices
from ml.model import read_passthrough, training_feature_types
from ml.prepared import FIT, PREDICT, PREPARED_FORMAT_VERSION, write_prepared
from ml.schema import TARGET
from ml.training import plain


def prepare(
    data_url: str,
    prepared_url: str,
    *,
    kind: str = FIT,
    feature_schema: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    scratch_dir: str | None = None,
    target: str = TARGET,
    task: str | None = None,
    passthrough: Sequence[str] = (),
) -> dict[str, Any]:
    """Check and encode the Parquet at ``data_url`` and write the prepared file to ``prepared_url``.

    Parameters:
      kind: ``fit`` (needs the ``target`` column; rows without it are left out, classes are
        encoded, regression values kept) or ``predict``.
      feature_schema: for ``predict``, the model's feature encoding: the ``features`` of its fit
        summary (``{"columns": {name: kind}, "categories": {name: [...]}}``).
      progress: called with (phase, fraction or None, message or None): downloading, validating,
        preparing (fraction = columns done), uploading.
      scratch_dir: where the download and the prepared file are staged.
      target, task: for a fit, the column to learn and ``classification`` / ``regression`` (None:
        inferred, ``ml.tasks``).
      passthrough: for a predict, input columns kept in the file for the predictions.

    Returns a summary: kind, format, rows, features, classes (fit), notes, bytes, timings in seconds.

    Raises:
      DataProblem: the data cannot be used (the same checks and codes as ``fit`` and ``predict``).
    """
    if kind not in (FIT, PREDICT) or (kind == PREDICT) != (feature_schema is not None):
        raise ValueError("kind must be 'fit' (without feature_schema) or 'predict' (with feature_schema)")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    report(progress, "downloading", 0.0)
    path, temporary = fetch_to_file(data_url, scratch_dir=scratch_dir, progress=progress)
    fd, staged = tempfile.mkstemp(prefix="tabjob-", suffix=".arrow", dir=scratch_dir)
    os.close(fd)
    try:
        timings["download_s"] = time.perf_counter() - started
        t0 = time.perf_counter()
        report(progress, "validating")
        summary = _encode(path, Path(staged), kind, feature_schema, progress, target, task, passthrough)
        timings["encode_s"] = time.perf_counter() - t0
        if temporary:
            os.unlink(path)
            temporary = False
        report(progress, "uploading")
        t0 = time.perf_counter()
        size = Path(staged).stat().st_size
        write_file(prepared_url, Path(staged))
        timings["upload_s"] = time.perf_counter() - t0
    finally:
        os.unlink(staged)
        if temporary:
            os.unlink(path)
    return {"kind": kind, "format": PREPARED_FORMAT_VERSION, **summary, "bytes": size, "timings": timings}


def _encode(
    path: Path,
    staged: Path,
    kind: str,
    feature_schema: Mapping[str, Any] | None,
    progress: Progress | None,
    target: str = TARGET,
    task: str | None = None,
    passthrough: Sequence[str] = (),
) -> dict[str, Any]:
    """Check the Parquet at ``path``, write its prepared file to ``staged``; returns the summary's facts."""
    fit_facts: dict[str, Any] = {}
    kept = None
    if kind == FIT:
        training = read_training(path, progress, target, task)
        spec, source, rows = training.spec, training.source, training.rows
        codes, classes = training.codes, training.classes
        fit_facts = {
            "task": training.task,
            "target": target,
            "task_reason": training.task_reason,
            "feature_types": training_feature_types(training),
        }
    else:
        spec = FeatureSpec.from_dict(feature_schema or {})
        source, rows, codes, classes = read_predict(path, spec, passthrough=passthrough), None, None, None
        kept = read_passthrough(source, passthrough)
    n_columns = len(spec.columns)
    n_rows = source.metadata.num_rows if codes is None else len(codes)
    report(progress, "preparing", 0.0, f"Encoding {n_rows:,} rows x {n_columns} features.")
    columns = _reporting((spec.column_values(source, name, rows) for name in spec.columns), progress, n_columns)
    [X] = fill_matrices(columns, n_rows, n_columns, None, np.float32)
    write_prepared(
        staged, spec=spec, X=X, codes=codes, classes=classes, notes=spec.notes, passthrough=kept, **fit_facts
    )
    facts: dict[str, Any] = {"rows": n_rows, "features": spec.to_dict(), "notes": spec.notes, **fit_facts}
    if classes is not None:
        facts["classes"] = [plain(c) for c in classes]
    return facts


def _reporting(columns: Iterator[np.ndarray], progress: Progress | None, n_columns: int) -> Iterator[np.ndarray]:
    for j, values in enumerate(columns):
        yield values
        report(progress, "preparing", (j + 1) / n_columns)
