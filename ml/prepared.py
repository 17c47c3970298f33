"""The prepared matrix: the hand-over between the prepare step (CPU) and the model step (GPU).

An Arrow IPC file (Feather v2), uncompressed, so the model step maps it into memory and takes the
matrix without parsing or copying (docs/models.md gives the measurements behind the choice):

- column ``X``: the feature matrix, row-major, as a fixed-size list of float32 per row (its values
  buffer *is* the C-order matrix): numbers as they are, booleans 0/1, categories as codes (XGBoost
  categoricals), dates as seconds since the epoch, NaN for missing values. Rows are laid out on
  the CPU lane, so the GPU worker does not transpose columns;
- for a fit, column ``y``: each row's class code (int32) or, for a regression, its target value
  (float64); rows without a target are gone;
- for a predict with passthrough columns, each of them as ``passthrough:<name>``, with its own
  Arrow type, in the input's order (the model step copies them into the predictions);
- schema metadata ``tabjob.prepared``: JSON with the format version, the kind (fit or predict),
  the feature encoding (FeatureSpec: names, kinds and categories of the matrix's columns, in
  order), the notes and, for a fit, the task, target name, the feature columns' Arrow types and
  the classes (an Arrow array in IPC bytes, base64, so labels keep their type: int8 stays int8).
  Files without a task are classifications of ``y`` (as written before regressions existed).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ml.families import TrainingSet
from ml.features import FeatureSpec
from ml.metrics import CLASSIFICATION, REGRESSION
from ml.schema import CATEGORICAL, TARGET
from ml.training import validation_split

# Bump when the encoding or the layout changes: it is part of the cache key, so old files are not reused.
PREPARED_FORMAT_VERSION = 1
METADATA_KEY = b"tabjob.prepared"
FIT, PREDICT = "fit", "predict"
FEATURES = "X"  # the matrix column; the class codes are column "y"
PASSTHROUGH_PREFIX = "passthrough:"


class PreparedMismatch(ValueError):
    """A prepared file that does not fit the step given it (wrong kind, format or feature encoding)."""


@dataclass
class Prepared:
    """A prepared file opened for reading; the matrix stays in the memory-mapped file until copied."""

    kind: str
    spec: FeatureSpec
    table: pa.Table
    classes: np.ndarray | None
    notes: list[str]
    task: str = CLASSIFICATION
    target: str = TARGET
    task_reason: str = "asked for"
    feature_types: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def matrix(self, dtype: type) -> np.ndarray:
        """Every row's features, row-major: a read-only view of the mapped file when ``dtype`` is float32."""
        column = self.table.column(FEATURES)
        # Written as one record batch: one chunk, taken as it is (combine_chunks would copy even one).
        rows = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        flat = rows.flatten().to_numpy()  # zero-copy: float32 without nulls
        return flat.reshape(self.rows, len(self.spec.columns)).astype(dtype, copy=False)

    def training_set(self, params: Mapping[str, Any], dtype: type) -> TrainingSet:
        """The matrices to train on, split for early stopping exactly as the one-call fit splits them."""
        if self.kind != FIT or self.classes is None:
            raise PreparedMismatch(f"a {self.kind} prepared file cannot train a model")
        codes = self.table.column(TARGET).to_numpy()
        categorical = [kind == CATEGORICAL for kind in self.spec.columns.values()]
        X = self.matrix(dtype)
        split = validation_split(codes, params, self.task)
        if split is None:
            return TrainingSet(X=X, codes=codes, classes=self.classes, categorical=categorical, task=self.task)
        train, val = split
        return TrainingSet(X[train], codes[train], self.classes, categorical, X[val], codes[val], task=self.task)

    def passthrough(self) -> pa.Table | None:
        """The input columns a predict copies next to its predictions (None when there are none)."""
        names = [n for n in self.table.column_names if n.startswith(PASSTHROUGH_PREFIX)]
        if not names:
            return None
        return pa.table({n[len(PASSTHROUGH_PREFIX) :]: self.table.column(n) for n in names})


def write_prepared(
    path: Path,
    *,
    spec: FeatureSpec,
    X: np.ndarray,
    codes: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    notes: list[str] | None = None,
    task: str = CLASSIFICATION,
    target: str = TARGET,
    task_reason: str = "asked for",
    feature_types: Mapping[str, str] | None = None,
    passthrough: pa.Table | None = None,
) -> None:
    """Write the float32 row-major feature matrix ``X`` (columns in ``spec`` order) and, for a fit,
    the class ``codes`` (a regression: values) and ``classes``, as a prepared file at ``path``;
    for a predict, the ``passthrough`` columns of its input."""
    flat = pa.array(np.ascontiguousarray(X, dtype=np.float32).reshape(-1))
    arrays = [pa.FixedSizeListArray.from_arrays(flat, len(spec.columns))]
    names = [FEATURES]
    meta: dict[str, Any] = {
        "format": PREPARED_FORMAT_VERSION,
        "kind": FIT if codes is not None else PREDICT,
        "features": spec.to_dict(),
        "notes": notes or [],
    }
    if codes is not None:
        dtype = np.float64 if task == REGRESSION else np.int32
        arrays.append(pa.array(np.asarray(codes, dtype=dtype)))
        names.append(TARGET)
        meta["classes"] = _array_to_text(pa.array(classes))
        meta.update(task=task, target=target, task_reason=task_reason, feature_types=dict(feature_types or {}))
    if passthrough is not None:
        for name in passthrough.column_names:
            arrays.append(passthrough.column(name).combine_chunks())
            names.append(PASSTHROUGH_PREFIX + name)
    table = pa.Table.from_arrays(arrays, names=names).replace_schema_metadata({METADATA_KEY: json.dumps(meta)})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_prepared(path: Path) -> Prepared:
    """Open the prepared file at ``path`` (memory-mapped: nothing is parsed or copied here).

    Raises:
      PreparedMismatch: not a prepared file of this format version.
    """
    try:
        table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
        meta = json.loads((table.schema.metadata or {})[METADATA_KEY])
    except (pa.ArrowInvalid, KeyError, ValueError) as exc:
        raise PreparedMismatch(f"{path.name} is not a prepared file ({exc})") from exc
    if meta.get("format") != PREPARED_FORMAT_VERSION:
        raise PreparedMismatch(f"prepared format {meta.get('format')} is not {PREPARED_FORMAT_VERSION}")
    classes = _array_from_text(meta["classes"]).to_numpy(zero_copy_only=False) if "classes" in meta else None
    spec = FeatureSpec.from_dict(meta["features"])
    return Prepared(
        kind=meta["kind"],
        spec=spec,
        table=table,
        classes=classes,
        notes=list(meta["notes"]),
        task=meta.get("task", CLASSIFICATION),
        target=meta.get("target", TARGET),
        task_reason=meta.get("task_reason", "asked for"),
        feature_types=dict(meta.get("feature_types", {})),
    )


def prepared_cache_key(
    dataset_sha256: str,
    *,
    kind: str,
    feature_schema: Mapping[str, Any] | None = None,
    target: str = TARGET,
    task: str = CLASSIFICATION,
    passthrough: Sequence[str] = (),
) -> str:
    """The name under which the prepared file of a dataset is kept and found again (sha256 hex).

    Parameters:
      dataset_sha256: the sha256 of the dataset's bytes (``ml.io.file_sha256``, or the digest the
        service recorded at upload); any digest of the content works, such as an S3 ETag.
      kind: ``fit`` or ``predict``.
      feature_schema: for ``predict``, the model's feature encoding (a fit summary's ``features``):
        the same data prepared for two models with different encodings gives two files.
      target, task: for ``fit``, the column learned and the task (resolved, never inferred here);
        in the recipe only when not ``y`` / ``classification``, so the keys of files prepared
        before them stay the same.
      passthrough: for ``predict``, the input columns kept in the file (in the recipe when any).
    """
    if kind not in (FIT, PREDICT):
        raise ValueError(f"kind must be {FIT!r} or {PREDICT!r}, not {kind!r}")
    if (kind == PREDICT) != (feature_schema is not None):
        raise ValueError("feature_schema is required for a predict, and only for a predict")
    recipe: dict[str, Any] = {"format": PREPARED_FORMAT_VERSION, "dataset_sha256": dataset_sha256, "kind": kind}
    if feature_schema is not None:
        # Columns as ordered pairs: their order is the matrix's column order.
        recipe["columns"] = [[name, kind_] for name, kind_ in feature_schema["columns"].items()]
        recipe["categories"] = {name: list(cats) for name, cats in feature_schema.get("categories", {}).items()}
    if target != TARGET:
        recipe["target"] = target
    if task != CLASSIFICATION:
        recipe["task"] = task
    if passthrough:
        recipe["passthrough"] = list(passthrough)
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _array_to_text(array: pa.Array) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([("classes", array.type)])) as writer:
        writer.write_table(pa.table({"classes": array}))
    return base64.b64encode(sink.getvalue().to_pybytes()).decode()


def _array_from_text(text: str) -> pa.Array:
    return pa.ipc.open_stream(pa.py_buffer(base64.b64decode(text))).read_all().column(0).combine_chunks()
