"""What a Parquet schema means for a HistGradientBoostingClassifier, and the checks on it.

The same checks run at submission (on the footer and the ``y`` column only) and again in the
worker, so bad data is refused early and never trusted late.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from ml.errors import DataProblem
from ml.names import TARGET
from ml.suggest import closest, did_you_mean

# A classifier with more classes than this is almost always a regression target by mistake,
# and HistGradientBoosting keeps one tree per class and iteration.
MAX_CLASSES = 1000

# How a column is fed to the model.
NUMERIC, BOOLEAN, CATEGORICAL, DATETIME = "numeric", "boolean", "categorical", "datetime"

# Which kinds a prediction column may have for a training kind (cast where needed).
_COMPATIBLE: dict[str, frozenset[str]] = {
    NUMERIC: frozenset({NUMERIC, BOOLEAN}),
    BOOLEAN: frozenset({BOOLEAN, NUMERIC}),
    CATEGORICAL: frozenset({CATEGORICAL, NUMERIC, BOOLEAN}),
    DATETIME: frozenset({DATETIME}),
}


def column_kind(dtype: pa.DataType) -> str | None:
    """The model-facing kind of an Arrow type, or None when the model cannot use it."""
    if pa.types.is_dictionary(dtype):
        return column_kind(dtype.value_type)
    if pa.types.is_boolean(dtype):
        return BOOLEAN
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_null(dtype)
    ):
        return NUMERIC
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return CATEGORICAL
    if pa.types.is_string_view(dtype):
        return CATEGORICAL
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return DATETIME
    return None


def describe_type(dtype: pa.DataType) -> str:
    """A short type name for messages (``list<double>``, ``struct``, ``binary``)."""
    if pa.types.is_struct(dtype):
        return "struct"
    return str(dtype)


def feature_schema(schema: pa.Schema, target: str = TARGET) -> dict[str, str]:
    """Feature columns and their kinds, in file order; the target and unusable columns left out."""
    kinds = {}
    for field in schema:
        kind = column_kind(field.type)
        if field.name != target and kind is not None:
            kinds[field.name] = kind
    return kinds


def check_unique_columns(schema: pa.Schema) -> None:
    """Refuse a file that names a column twice (which column would be meant is ambiguous)."""
    seen: set[str] = set()
    twice = sorted({n for n in schema.names if n in seen or seen.add(n)})
    if twice:
        raise DataProblem(
            "dataset.duplicate_columns",
            f"Column name(s) used more than once: {_preview(twice)}.",
            "Give every column a distinct name.",
        )


def check_training_schema(schema: pa.Schema, num_rows: int, target: str = TARGET) -> dict[str, str]:
    """Refuse a training file that cannot train; return its feature kinds.

    ``target`` names the column of class labels (``y`` unless the fit names another).

    Raises:
      DataProblem: no rows, no target column, no usable feature, columns named twice, or columns
        of unusable types.
    """
    check_unique_columns(schema)
    if num_rows == 0:
        raise DataProblem(
            "dataset.no_rows",
            "The dataset has no rows.",
            "Upload a Parquet file with at least two rows of training data.",
        )
    if target not in schema.names:
        raise DataProblem(
            "dataset.missing_target",
            f"The training data has no column named '{target}' (the target).{did_you_mean(target, schema.names)} "
            f"Columns found: {_preview(schema.names)}.",
            _target_hint(target, closest(target, schema.names)),
        )
    target_type = schema.field(target).type
    if column_kind(target_type) is None:
        raise DataProblem(
            "dataset.unsupported_target_type",
            f"The target column '{target}' has type {describe_type(target_type)}, which cannot hold class labels.",
            "Store class labels as integers, strings or booleans.",
        )
    _refuse_unusable_columns(schema, target)
    features = feature_schema(schema, target)
    if not features:
        raise DataProblem(
            "dataset.no_features",
            f"The training data has no feature columns besides '{target}'.",
            "Add at least one column to learn from.",
        )
    return features


def check_target(y: pa.ChunkedArray | pa.Array, target: str = TARGET) -> int:
    """Refuse a target the classifier cannot learn; return the number of classes.

    ``target`` is the column's name, for the messages.

    Raises:
      DataProblem: every value missing, a single class, or too many classes.
    """
    present = pc.drop_null(nan_as_null(y))
    if len(present) == 0:
        raise DataProblem(
            "dataset.target_all_missing",
            f"Every value of the target column '{target}' is missing.",
            f"Fill in '{target}' with the class of each row.",
        )
    classes = len(pc.unique(present))
    if classes < 2:
        only = present[0].as_py()
        raise DataProblem(
            "dataset.single_class",
            f"The target column '{target}' has only one class ({only!r}); a classifier needs at least two.",
            "Include rows of every class you want the model to predict.",
        )
    if classes > MAX_CLASSES:
        raise DataProblem(
            "dataset.too_many_classes",
            f"The target column '{target}' has {classes:,} distinct values; a classifier "
            f"supports at most {MAX_CLASSES:,} classes.",
            "This looks like a regression target: bin it into classes, or use class labels.",
        )
    return classes


def nan_as_null(y: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """``y`` with NaN labels as nulls: pyarrow and polars keep a float NaN as a value, where pandas writes a null."""
    if pa.types.is_floating(y.type):
        return pc.if_else(pc.is_nan(y), pa.scalar(None, y.type), y)
    return y


def check_predict_schema(
    schema: pa.Schema, num_rows: int, trained: Mapping[str, str], target: str = TARGET, passthrough: Iterable[str] = ()
) -> None:
    """Refuse prediction data that does not match the model's training columns.

    Parameters:
      schema: the prediction file's schema. The target column, if present, is ignored.
      num_rows: rows in the prediction file.
      trained: the model's feature columns and kinds, as saved at fit time.
      target: the column the model learned (``y`` unless its fit named another).
      passthrough: columns copied to the predictions: allowed besides the features (an id column).

    Raises:
      DataProblem: no rows, missing or unexpected columns, or types that cannot be cast.
    """
    check_unique_columns(schema)
    if num_rows == 0:
        raise DataProblem(
            "dataset.no_rows",
            "The dataset has no rows.",
            "Upload a Parquet file with at least one row to predict.",
        )
    kept = set(passthrough) - set(trained)
    names = [n for n in schema.names if n != target and n not in kept]
    missing = [c for c in trained if c not in names]
    if missing:
        raise DataProblem(
            "dataset.missing_columns",
            f"The data lacks {len(missing)} column(s) the model was trained on: {_preview(missing)}."
            + _renamed(missing, [n for n in names if n not in trained]),
            "Add the missing columns with the same names and types as in the training data (rename a misspelt one).",
        )
    unexpected = [c for c in names if c not in trained]
    if unexpected:
        raise DataProblem(
            "dataset.unexpected_columns",
            f"The data has {len(unexpected)} column(s) the model was not trained on: {_preview(unexpected)}.",
            "Remove these columns, or train a model that uses them.",
        )
    wrong = []
    for name, kind in trained.items():
        dtype = schema.field(name).type
        if column_kind(dtype) not in _COMPATIBLE[kind]:
            wrong.append(f"'{name}' is {describe_type(dtype)} but the model expects {kind}")
    if wrong:
        raise DataProblem(
            "dataset.incompatible_types",
            "Some columns have types the model cannot use: " + "; ".join(wrong[:10]) + ".",
            "Store each column with the type it had in the training data.",
        )


def _refuse_unusable_columns(schema: pa.Schema, target: str) -> None:
    bad = [f"'{f.name}' ({describe_type(f.type)})" for f in schema if f.name != target and column_kind(f.type) is None]
    if bad:
        raise DataProblem(
            "dataset.unsupported_types",
            f"Column(s) of types the model cannot use: {_preview(bad, quote=False)}.",
            "Drop these columns or flatten them into numeric, boolean, text or date columns.",
        )


def _renamed(missing: list[str], extra: list[str]) -> str:
    """`` For 'age': Did you mean 'Age'?`` for each missing column with a close unexpected one."""
    return "".join(f" For '{c}':{did_you_mean(c, extra)}" for c in missing[:10] if closest(c, extra))


def _target_hint(target: str, near: list[str]) -> str:
    """Name the fit's target option: the labels need not be renamed, only named."""
    column = near[0] if near else "COLUMN"
    return (
        f"Name your label column as the fit's target: `tabjob fit DATASET --target {column}`, or "
        f"`client.fit(dataset_id, target=\"{column}\")` (the API's `target` field); the default is '{TARGET}'."
    )


def _preview(names: Iterable[str], *, limit: int = 10, quote: bool = True) -> str:
    names = list(names)
    shown = [f"'{n}'" if quote else n for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(shown) + more
