"""A fit may name its target column: the schema checks use that name (``y`` by default)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ml.errors import DataProblem
from ml.schema import check_predict_schema, check_target, check_training_schema, feature_schema

SCHEMA = pa.schema([("a", pa.float64()), ("label", pa.string()), ("y", pa.int64())])


def test_a_named_target_is_the_label_and_y_becomes_a_feature():
    assert check_training_schema(SCHEMA, 10, target="label") == {"a": "numeric", "y": "numeric"}
    assert feature_schema(SCHEMA, "label") == {"a": "numeric", "y": "numeric"}
    assert check_training_schema(SCHEMA, 10) == {"a": "numeric", "label": "categorical"}


def test_messages_name_the_chosen_target():
    with pytest.raises(DataProblem) as missing:
        check_training_schema(pa.schema([("a", pa.float64()), ("y", pa.int64())]), 10, target="label")
    assert missing.value.code == "dataset.missing_target" and "'label'" in missing.value.message
    with pytest.raises(DataProblem) as single:
        check_target(pa.array(["x", "x"]), target="label")
    assert "'label'" in single.value.message


def test_prediction_data_may_carry_the_target_column_which_is_ignored():
    check_predict_schema(pa.schema([("a", pa.float64()), ("label", pa.string())]), 5, {"a": "numeric"}, "label")
    with pytest.raises(DataProblem) as unexpected:
        check_predict_schema(pa.schema([("a", pa.float64()), ("label", pa.string())]), 5, {"a": "numeric"})
    assert unexpected.value.code == "dataset.unexpected_columns"


def test_a_fit_learns_the_named_target_and_predict_ignores_that_column(tmp_path, seed_frames):
    from ml.model import fit, predict

    train, test = seed_frames()
    train = train.rename(columns={"y": "churned"})
    train.to_parquet(tmp_path / "train.parquet", index=False)
    summary = fit(
        str(tmp_path / "train.parquet"), str(tmp_path / "model.pkl"), params={"max_iter": 10}, target="churned"
    )
    assert summary["target"] == "churned" and "churned" not in summary["features"]["columns"]
    assert sorted(summary["classes"]) == [0, 1]
    # Prediction data may still carry the target column (a labelled hold-out set): it is ignored.
    test.rename(columns={"y": "churned"}).to_parquet(tmp_path / "test.parquet", index=False)
    done = predict(str(tmp_path / "test.parquet"), str(tmp_path / "model.pkl"), str(tmp_path / "out.parquet"))
    assert done["rows"] == len(test)
    with pytest.raises(DataProblem) as missing:
        fit(str(tmp_path / "train.parquet"), str(tmp_path / "m2.pkl"), params={"max_iter": 10})
    assert missing.value.code == "dataset.missing_target"
