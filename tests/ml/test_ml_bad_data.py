"""Data that cannot be used is refused with a DataProblem whose code is stable and whose message names the problem."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.errors import DataProblem
from ml.model import fit, predict

FAST = {"max_iter": 20}


def training_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"col_{i}": rng.normal(size=rows) for i in range(3)})
    frame["count"] = rng.integers(0, 10, size=rows)
    frame["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, size=rows), unit="D")
    frame["y"] = (frame["col_0"] > 0).astype("int64")
    return frame


def refused(code: str, call, *args, **kwargs) -> DataProblem:
    """Run ``call`` and return the DataProblem it raises, checking its code and that it says what to do."""
    with pytest.raises(DataProblem) as caught:
        call(*args, **kwargs)
    problem = caught.value
    assert problem.code == code, problem.message
    assert problem.message and problem.hint
    assert str(problem) == problem.message
    return problem


def refused_fit(code: str, data: str, tmp_path: Path) -> DataProblem:
    model = tmp_path / "model.pkl"
    problem = refused(code, fit, data, str(model), params=FAST)
    assert not model.exists(), "a refused fit must not write a model"
    return problem


# --- training data -----------------------------------------------------------------------------------------------


def test_zero_byte_file_is_empty_file(tmp_path):
    data = tmp_path / "empty.parquet"
    data.write_bytes(b"")

    problem = refused_fit("dataset.empty_file", str(data), tmp_path)

    assert "empty" in problem.message


def test_csv_is_not_parquet(tmp_path):
    data = tmp_path / "train.parquet"
    training_frame().to_csv(data, index=False)

    problem = refused_fit("dataset.not_parquet", str(data), tmp_path)

    assert "not a readable Parquet file" in problem.message


def test_truncated_parquet_is_not_parquet(tmp_path, write_parquet):
    # Given an upload cut off before the footer
    whole = Path(write_parquet("whole.parquet", training_frame()))
    data = tmp_path / "truncated.parquet"
    data.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    # Then it is refused as unreadable, not as a crash inside pyarrow
    refused_fit("dataset.not_parquet", str(data), tmp_path)


def test_no_rows(tmp_path, write_parquet):
    data = write_parquet("train.parquet", training_frame().iloc[:0])

    problem = refused_fit("dataset.no_rows", data, tmp_path)

    assert "no rows" in problem.message


def test_missing_target_names_y_and_the_columns_found(tmp_path, write_parquet):
    data = write_parquet("train.parquet", training_frame().rename(columns={"y": "label"}))

    problem = refused_fit("dataset.missing_target", data, tmp_path)

    assert "'y'" in problem.message
    assert "'label'" in problem.message


def test_target_entirely_null(tmp_path, write_parquet):
    frame = training_frame()
    frame["y"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    data = write_parquet("train.parquet", frame)

    problem = refused_fit("dataset.target_all_missing", data, tmp_path)

    assert "'y'" in problem.message


@pytest.mark.parametrize(
    ("labels", "code"),
    [([np.nan] * 4, "dataset.target_all_missing"), ([1.0, np.nan, 1.0, np.nan], "dataset.single_class")],
    ids=["all-nan", "one-class-and-nan"],
)
def test_nan_target_is_missing_not_a_class(tmp_path, write_parquet, labels, code):
    # Given a float target written by pyarrow, where NaN is a value rather than a null
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": pa.array(labels, from_pandas=False)})

    refused_fit(code, write_parquet("train.parquet", table), tmp_path)


def test_single_class_names_the_class(tmp_path, write_parquet):
    frame = training_frame()
    frame["y"] = "spam"
    data = write_parquet("train.parquet", frame)

    problem = refused_fit("dataset.single_class", data, tmp_path)

    assert "'spam'" in problem.message


def test_single_class_among_missing_targets(tmp_path, write_parquet):
    frame = training_frame()
    frame["y"] = pd.array([1, pd.NA] * (len(frame) // 2), dtype="Int64")
    data = write_parquet("train.parquet", frame)

    refused_fit("dataset.single_class", data, tmp_path)


def test_float_target_with_too_many_classes(tmp_path, write_parquet):
    # Given a regression target, fitted as a classification on purpose
    frame = training_frame(rows=1500)
    frame["y"] = np.random.default_rng(1).normal(size=len(frame))
    data = write_parquet("train.parquet", frame)
    model = tmp_path / "model.pkl"

    problem = refused("dataset.too_many_classes", fit, data, str(model), params=FAST, task="classification")

    assert "1,500 distinct values" in problem.message
    assert "regression" in problem.hint
    # Without a task, the same target is inferred as a regression, never silently as classes.
    assert fit(data, str(model), params=FAST)["task"] == "regression"


def test_only_the_target(tmp_path, write_parquet):
    data = write_parquet("train.parquet", training_frame()[["y"]])

    problem = refused_fit("dataset.no_features", data, tmp_path)

    assert "no feature columns" in problem.message


def test_nested_and_binary_columns_are_each_named(tmp_path, write_parquet):
    # Given one column of each type the model cannot use, beside good ones
    rows = 4
    table = pa.table(
        {
            "x": pa.array([0.1, 0.2, 0.3, 0.4]),
            "address": pa.array([{"street": "a", "number": i} for i in range(rows)]),
            "scores": pa.array([[1.0, 2.0]] * rows, pa.list_(pa.float64())),
            "blob": pa.array([b"\x00\x01"] * rows, pa.binary()),
            "y": pa.array([0, 1, 0, 1]),
        }
    )
    data = write_parquet("train.parquet", table)

    problem = refused_fit("dataset.unsupported_types", data, tmp_path)

    assert "'address' (struct)" in problem.message
    assert "'scores' (list<" in problem.message
    assert "'blob' (binary)" in problem.message
    assert "'x'" not in problem.message


def test_target_of_unusable_type(tmp_path, write_parquet):
    table = pa.table({"x": [1.0, 2.0], "y": pa.array([[1], [2]], pa.list_(pa.int64()))})
    data = write_parquet("train.parquet", table)

    problem = refused_fit("dataset.unsupported_target_type", data, tmp_path)

    assert "list<" in problem.message


# --- prediction data ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """A model trained on col_0..col_2 (float), count (int) and when (timestamp)."""
    folder = tmp_path_factory.mktemp("model")
    data = folder / "train.parquet"
    training_frame().to_parquet(data, index=False)
    model = folder / "model.pkl"
    fit(str(data), str(model), params=FAST)
    return str(model)


def refused_predict(code: str, data: str, model: str, tmp_path: Path) -> DataProblem:
    result = tmp_path / "result.parquet"
    problem = refused(code, predict, data, model, str(result))
    assert not result.exists(), "a refused prediction must not write a result"
    return problem


def test_predict_zero_byte_file(model, tmp_path):
    data = tmp_path / "new.parquet"
    data.write_bytes(b"")

    refused_predict("dataset.empty_file", str(data), model, tmp_path)


def test_predict_not_parquet(model, tmp_path):
    data = tmp_path / "new.parquet"
    data.write_text("col_0,col_1\n1,2\n")

    refused_predict("dataset.not_parquet", str(data), model, tmp_path)


def test_predict_no_rows(model, tmp_path, write_parquet):
    data = write_parquet("new.parquet", training_frame().drop(columns="y").iloc[:0])

    refused_predict("dataset.no_rows", data, model, tmp_path)


def test_predict_missing_columns_named(model, tmp_path, write_parquet):
    data = write_parquet("new.parquet", training_frame().drop(columns=["y", "col_0", "when"]))

    problem = refused_predict("dataset.missing_columns", data, model, tmp_path)

    assert "2 column(s)" in problem.message
    assert "'col_0'" in problem.message
    assert "'when'" in problem.message
    assert "'col_1'" not in problem.message


def test_predict_unexpected_columns_named(model, tmp_path, write_parquet):
    frame = training_frame().drop(columns="y")
    frame["extra"] = 1.0
    data = write_parquet("new.parquet", frame)

    problem = refused_predict("dataset.unexpected_columns", data, model, tmp_path)

    assert "'extra'" in problem.message


def test_predict_datetime_given_as_text(model, tmp_path, write_parquet):
    # Given the training timestamp column written as ISO strings
    frame = training_frame().drop(columns="y")
    frame["when"] = frame["when"].dt.strftime("%Y-%m-%d")
    data = write_parquet("new.parquet", frame)

    problem = refused_predict("dataset.incompatible_types", data, model, tmp_path)

    # pandas 3 writes text as large_string, older pandas as string
    assert re.search(r"'when' is (large_)?string but the model expects datetime", problem.message)


def test_predict_numeric_given_as_text(model, tmp_path, write_parquet):
    frame = training_frame().drop(columns="y")
    frame["col_1"] = frame["col_1"].astype(str)
    data = write_parquet("new.parquet", frame)

    problem = refused_predict("dataset.incompatible_types", data, model, tmp_path)

    assert "'col_1'" in problem.message
    assert "numeric" in problem.message
