"""Data that is odd but learnable trains, and the model predicts from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.features import MAX_CATEGORIES
from ml.model import fit, predict
from ml.model_step import predict_prepared, train_prepared
from ml.prepare_step import prepare

ROWS = 400

# Slow: every learnable case through the three ways a model is made trains ~60 models (19 s).
pytestmark = pytest.mark.slow


# Each learnable case runs through every way a model is made: the seed's one-call hgb, the one-call
# xgboost, and xgboost as two steps (prepare, then the model step on the prepared matrix). XGBoost's
# max_bin above the row count puts its cut points between distinct values, as hgb's are on these small
# sets (with the default 256 bins, one row of 400 at x=0.035 falls on the wrong side of x > 0).
XGBOOST = {"n_estimators": 20, "max_bin": 1024}
PATHS = {
    "hgb": ("hgb", {"max_iter": 20}, False),
    "xgboost": ("xgboost", XGBOOST, False),
    "xgboost-steps": ("xgboost", XGBOOST, True),
}


@pytest.fixture(params=list(PATHS))
def fit_predict(request, tmp_path, write_parquet, read_predictions):
    """``fit_predict(train, new=None)``: fit on ``train``, predict ``new`` (default: ``train`` less ``y``).

    Returns the fit summary, the predicted labels and the progress calls of the fit (of prepare and
    the model step, for two steps).
    """
    family, params, steps = PATHS[request.param]

    def run(train: pd.DataFrame | pa.Table, new: pd.DataFrame | pa.Table | None = None, **write_kwargs):
        if new is None:
            new = train.drop(columns="y") if isinstance(train, pd.DataFrame) else train.drop_columns(["y"])
        calls = []
        data, new_data = write_parquet("train.parquet", train, **write_kwargs), write_parquet("new.parquet", new)
        model, result = str(tmp_path / "model.pkl"), str(tmp_path / "result.parquet")
        if steps:
            prepare(data, str(tmp_path / "fit.arrow"), progress=lambda *call: calls.append(call))
            summary = train_prepared(str(tmp_path / "fit.arrow"), model, family=family, params=params)
            prepare(new_data, str(tmp_path / "new.arrow"), kind="predict", feature_schema=summary["features"])
            predicted = predict_prepared(str(tmp_path / "new.arrow"), model, result)
        else:
            summary = fit(data, model, params=params, family=family, progress=lambda *call: calls.append(call))
            predicted = predict(new_data, model, result)
        labels = read_predictions(result)
        assert predicted["rows"] == len(labels) == len(new)
        assert summary["family"] == predicted["family"] == family
        return summary, labels, calls

    return run


def accuracy(labels: list, truth) -> float:
    return float(np.mean(np.asarray(labels, dtype=object) == np.asarray(list(truth), dtype=object)))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_text_feature_is_learned_as_categories(fit_predict):
    colors = rng().choice(["red", "green", "blue"], size=ROWS)
    train = pd.DataFrame({"color": colors, "noise": rng(1).normal(size=ROWS), "y": (colors == "red").astype(int)})

    summary, labels, _ = fit_predict(train)

    assert summary["features"]["columns"] == {"color": "categorical", "noise": "numeric"}
    assert sorted(summary["features"]["categories"]["color"]) == ["blue", "green", "red"]
    assert accuracy(labels, train["y"]) == 1.0


def test_pandas_categorical_features(fit_predict):
    # Given pandas categoricals, which Parquet stores as dictionary columns (of text and of integers)
    sizes = pd.Categorical(rng().choice(["S", "M", "L"], size=ROWS), categories=["S", "M", "L"])
    floors = pd.Categorical(rng(1).choice([1, 2, 3], size=ROWS))
    train = pd.DataFrame({"size": sizes, "floor": floors, "y": (sizes == "L") | (floors == 3)})
    assert pa.types.is_dictionary(pa.Table.from_pandas(train).schema.field("size").type)

    summary, labels, _ = fit_predict(train)

    assert summary["features"]["columns"] == {"size": "categorical", "floor": "numeric"}
    assert accuracy(labels, train["y"]) == 1.0


def test_categorical_model_predicts_plain_text_columns(fit_predict):
    sizes = pd.Categorical(rng().choice(["S", "M", "L"], size=ROWS))
    train = pd.DataFrame({"size": sizes, "y": (sizes == "L").astype(int)})
    new = pd.DataFrame({"size": ["L", "S", "M", "XL", None]})

    _, labels, _ = fit_predict(train, new)

    assert labels[:3] == [1, 0, 0]
    assert labels[3] in (0, 1)  # unseen category and missing value count as missing


def test_boolean_features(fit_predict):
    flag = rng().random(ROWS) < 0.5
    train = pd.DataFrame({"member": flag, "noise": rng(1).normal(size=ROWS), "y": np.where(flag, "yes", "no")})

    summary, labels, _ = fit_predict(train)

    assert summary["features"]["columns"]["member"] == "boolean"
    assert accuracy(labels, train["y"]) == 1.0


def test_missing_values_in_every_kind_of_feature(fit_predict):
    # Given a quarter of each feature missing
    x = rng().normal(size=ROWS)
    missing = rng(1).random(ROWS) < 0.25
    train = pd.DataFrame(
        {
            "x": np.where(missing, np.nan, x),
            "text": pd.Series(np.where(x > 0, "up", "down"), dtype=object).mask(missing, None),
            "flag": pd.array(x > 0, dtype="boolean").copy(),
            "when": (pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(ROWS), unit="D")).to_series().values,
            "y": (x > 0).astype(int),
        }
    )
    train.loc[missing, "flag"] = pd.NA
    train.loc[rng(2).random(ROWS) < 0.25, "when"] = pd.NaT

    _, labels, _ = fit_predict(train)

    assert accuracy(np.asarray(labels)[~missing], train["y"][~missing]) == 1.0


def test_rows_with_missing_target_are_left_out(fit_predict):
    x = rng().normal(size=ROWS)
    y = pd.array((x > 0).astype(int), dtype="Int64")
    y[:100] = pd.NA
    train = pd.DataFrame({"x": x, "y": y})

    summary, labels, calls = fit_predict(train)

    assert summary["rows"] == ROWS - 100
    assert ("validating", None, "100 row(s) without 'y' are left out.") in calls
    assert accuracy(labels[100:], (x[100:] > 0).astype(int)) == 1.0


def test_missing_target_across_row_groups(fit_predict):
    # Given row groups of 64 rows, so the target mask and each column are chunked alike, and missing y in several
    x = rng().normal(size=ROWS)
    y = pd.array(np.where(x > 0, "pos", "neg"), dtype=object)
    y[::7] = None
    train = pd.DataFrame({"x": x, "text": np.where(x > 1, "far", "near"), "y": y})

    summary, labels, _ = fit_predict(train, row_group_size=64)

    assert summary["rows"] == ROWS - len(range(0, ROWS, 7))
    assert accuracy(labels, np.where(x > 0, "pos", "neg")) == 1.0


def test_nan_target_counts_as_missing(fit_predict):
    # Given a float target written by pyarrow, where NaN is a value rather than a null
    x = rng().normal(size=ROWS)
    y = (x > 0).astype(float)
    y[:10] = np.nan
    train = pa.table({"x": x, "y": pa.array(y, from_pandas=False)})
    assert train.column("y").null_count == 0

    summary, labels, _ = fit_predict(train)

    assert summary["classes"] == [0.0, 1.0]
    assert summary["rows"] == ROWS - 10
    assert accuracy(labels[10:], y[10:]) == 1.0


def test_string_target_predicted_as_the_original_strings(fit_predict):
    x = rng().normal(size=ROWS)
    y = np.select([x < -0.5, x > 0.5], ["low", "high"], "middle")
    train = pd.DataFrame({"x": x, "y": y})

    summary, labels, _ = fit_predict(train)

    assert summary["classes"] == ["high", "low", "middle"]
    assert set(labels) == {"high", "low", "middle"}
    assert accuracy(labels, y) > 0.95


def test_categorical_target(fit_predict):
    x = rng().normal(size=ROWS)
    train = pd.DataFrame({"x": x, "y": pd.Categorical(np.where(x > 0, "cat", "dog"))})

    summary, labels, _ = fit_predict(train)

    assert summary["classes"] == ["cat", "dog"]
    assert accuracy(labels, train["y"].astype(str)) == 1.0


@pytest.mark.parametrize(
    ("labels_of", "classes"),
    [
        (lambda up: np.where(up, 7, -3).astype("int64"), [-3, 7]),
        (lambda up: np.where(up, 7, -3).astype("int8"), [-3, 7]),
        (lambda up: up, [False, True]),
    ],
    ids=["int64", "int8", "bool"],
)
def test_integer_and_boolean_targets(fit_predict, labels_of, classes):
    x = rng().normal(size=ROWS)
    train = pd.DataFrame({"x": x, "y": labels_of(x > 0)})

    summary, labels, _ = fit_predict(train)

    assert summary["classes"] == classes
    assert all(type(c) is type(classes[0]) for c in summary["classes"]), "classes are plain JSON-ready values"
    assert labels == train["y"].tolist()


@pytest.mark.parametrize(
    "dates",
    [
        pd.date_range("2024-01-01", periods=ROWS, freq="h"),
        pd.date_range("2024-01-01", periods=ROWS, freq="h", tz="Europe/Paris"),
        # nanosecond timestamps, as from time.time_ns(), which do not fit microseconds exactly
        pd.to_datetime(1_700_000_000_000_000_000 + np.arange(ROWS) * 3_600_000_000_001, unit="ns"),
        pd.date_range("2024-01-01", periods=ROWS, freq="D").date,
    ],
    ids=["naive", "timezone", "nanoseconds", "date"],
)
def test_datetime_features(fit_predict, dates):
    # Given the class set by whether a moment is before or after the middle of the range
    train = pd.DataFrame({"when": dates, "y": np.arange(ROWS) >= ROWS // 2})

    summary, labels, _ = fit_predict(train)

    assert summary["features"]["columns"] == {"when": "datetime"}
    assert accuracy(labels, train["y"]) == 1.0


def test_datetime_model_predicts_other_time_units(fit_predict):
    # Given a model trained on nanosecond timestamps and a prediction file in seconds
    when = pd.date_range("2024-01-01", periods=ROWS, freq="h")
    train = pd.DataFrame({"when": when, "y": np.arange(ROWS) >= ROWS // 2})
    new = pa.table({"when": pa.array(when.as_unit("s"), pa.timestamp("s"))})

    _, labels, _ = fit_predict(train, new)

    assert labels == train["y"].tolist()


def test_high_cardinality_text_keeps_the_most_frequent_and_says_so(fit_predict):
    # Given 400 distinct ids, ten of them frequent (and the only ones that matter)
    frequent = [f"vip-{i}" for i in range(10)]
    ids = [f"id-{i}" for i in range(400)] + frequent * 40
    train = pd.DataFrame({"customer": ids, "y": [c.startswith("vip") for c in ids]})

    summary, labels, calls = fit_predict(train)

    categories = summary["features"]["categories"]["customer"]
    assert len(categories) == MAX_CATEGORIES
    assert categories[:10] == frequent
    [note] = summary["notes"]
    assert "'customer' has 410 distinct values" in note
    assert ("validating", None, note) in calls
    assert accuracy(labels, train["y"]) == 1.0


def test_integers_beyond_float_precision(fit_predict):
    # Given 64-bit ids larger than 2**53, which float64 holds only approximately
    ids = 2**60 + rng().integers(0, 2**40, size=ROWS)
    train = pd.DataFrame({"id": ids, "y": ids > 2**60 + 2**39})

    summary, labels, _ = fit_predict(train)

    # XGBoost holds features as float32 (24-bit mantissa): near 2**60 only 16 distinct values are left
    # in this range, so it learns the threshold to within 1/16 of it.
    assert accuracy(labels, train["y"]) > (0.95 if summary["family"] == "hgb" else 0.9)


def test_prediction_file_with_a_y_column_ignores_it(fit_predict):
    x = rng().normal(size=ROWS)
    train = pd.DataFrame({"x": x, "y": (x > 0).astype(int)})
    new = pd.DataFrame({"y": ["stale"] * 3, "x": [-2.0, 2.0, -1.0]})

    _, labels, _ = fit_predict(train, new)

    assert labels == [0, 1, 0]


def test_integer_columns_predicted_from_floats_and_booleans(fit_predict):
    # Given features trained as integers and sent for prediction as floats and booleans of the same names
    count = rng().integers(0, 10, size=ROWS)
    flag = rng(1).integers(0, 2, size=ROWS)
    train = pd.DataFrame({"count": count, "flag": flag, "y": (count >= 5) & (flag == 1)})
    new = pa.table({"count": pa.array([9.0, 9.0, 1.0, None]), "flag": pa.array([True, False, True, True])})

    _, labels, _ = fit_predict(train, new)

    assert labels[:3] == [True, False, False]


def test_numeric_and_boolean_features_predicted_from_each_other(fit_predict):
    flag = rng().random(ROWS) < 0.5
    x = rng(1).random(ROWS)
    train = pd.DataFrame({"flag": flag, "x": x, "y": flag & (x > 0.5)})
    new = pa.table({"flag": pa.array([1, 1, 0], pa.int32()), "x": pa.array([True, False, True])})

    _, labels, _ = fit_predict(train, new)

    assert labels == [True, False, False]
