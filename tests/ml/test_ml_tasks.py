"""Tasks in ``ml``: the inference rule, a regression in both families and both paths (the same
model from one call and two steps), predictions with probabilities and passthrough columns, and
the prepared file's cache key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.errors import DataProblem
from ml.model import fit, predict
from ml.model_step import predict_prepared, train_prepared
from ml.prepare_step import prepare
from ml.prepared import prepared_cache_key
from ml.tasks import check_task, infer_task


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (pa.array(["yes", "no", None]), "classification"),
        (pa.array([True, False]), "classification"),
        (pa.array([1, 2, 3] * 5, pa.int8()), "classification"),
        (pa.array(range(21)), "regression"),  # more than 20 distinct integers
        (pa.array([0.0, 1.0, None, float("nan")]), "classification"),  # labels written as floats
        (pa.array([0.0, 1.0, 1.5]), "regression"),  # one fractional value is a quantity
        (pa.array(np.arange(100, dtype=float)), "regression"),  # whole floats, many values
        (pa.array(["a", "b"]).dictionary_encode(), "classification"),
    ],
)
def test_the_inference_rule(values, task):
    chosen, reason = infer_task(values, "t")
    assert chosen == task and "'t'" in reason


def test_a_regression_of_text_is_refused_naming_the_column():
    with pytest.raises(DataProblem) as refused:
        check_task("regression", pa.string(), "churned")
    assert refused.value.code == "dataset.target_not_numeric" and "'churned'" in refused.value.message
    check_task("regression", pa.int32(), "n")  # numbers are fine
    check_task(None, pa.string(), "churned")  # inferred: always possible


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    color = rng.choice(["red", "blue"], rows)
    return pd.DataFrame(
        {"id": np.arange(rows), "x": x, "color": color, "price": 3 * x + (color == "red") + rng.normal(0, 0.1, rows)}
    )


@pytest.mark.slow  # trains regressions of both families twice (9 s)
def test_a_regression_trains_the_same_in_one_call_and_in_two_steps(tmp_path):
    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    frame(3000).drop(columns=["id"]).to_parquet(train, index=False)
    frame(200, 1).drop(columns=["price"]).to_parquet(test, index=False)
    params = {"n_estimators": 30, "early_stopping": True}

    one = fit(str(train), str(tmp_path / "one.pkl"), family="xgboost", target="price", params=params, device="cpu")
    facts = prepare(str(train), str(tmp_path / "fit.arrow"), target="price", task="regression")
    two = train_prepared(str(tmp_path / "fit.arrow"), str(tmp_path / "two.pkl"), family="xgboost", params=params,
                         device="cpu", evaluate_url=str(train))  # fmt: skip

    assert one["task"] == facts["task"] == two["task"] == "regression" and one["classes"] == []
    assert one["validation_metrics"] == pytest.approx(two["validation_metrics"])
    assert set(one["validation_metrics"]) == {"r2", "rmse", "mae"} and one["validation_score"] > 0.9
    assert two["evaluation"]["rows"] == 3000 and set(two["evaluation"]["metrics"]) == {"r2", "rmse", "mae"}
    assert one["target_range"] == pytest.approx(two["target_range"])

    prepare(str(test), str(tmp_path / "p.arrow"), kind="predict", feature_schema=two["features"], passthrough=["id"])
    predict_prepared(str(tmp_path / "p.arrow"), str(tmp_path / "two.pkl"), str(tmp_path / "a.parquet"),
                     model_sha256=two["model_sha256"], device="cpu", probabilities=True)  # fmt: skip
    predict(str(test), str(tmp_path / "one.pkl"), str(tmp_path / "b.parquet"), device="cpu", passthrough=["id"])
    a, b = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert a.column_names == b.column_names == ["id", "price"]
    assert a.column("id").to_pylist() == list(range(200))
    np.testing.assert_allclose(a.column("price").to_numpy(), b.column("price").to_numpy(), rtol=1e-6)


@pytest.mark.slow  # trains for several seconds
def test_hgb_classification_probabilities_and_labels_keep_their_type(tmp_path):
    data = frame(400)
    data["label"] = np.where(data["price"] > 0, "up", "down")
    data.drop(columns=["price", "id"]).to_parquet(tmp_path / "train.parquet", index=False)
    summary = fit(str(tmp_path / "train.parquet"), str(tmp_path / "m.pkl"), target="label", params={"max_iter": 20})
    assert summary["task"] == "classification" and summary["classes"] == ["down", "up"]
    assert summary["estimator_params"]["max_iter"] == 20 and summary["estimator_params"]["loss"] == "log_loss"
    frame(50, 2).drop(columns=["price"]).to_parquet(tmp_path / "rows.parquet", index=False)
    predict(str(tmp_path / "rows.parquet"), str(tmp_path / "m.pkl"), str(tmp_path / "out.parquet"),
            probabilities=True, passthrough=["id"])  # fmt: skip
    out = pq.read_table(tmp_path / "out.parquet").to_pandas()
    assert list(out.columns) == ["id", "label", "proba_down", "proba_up"]
    assert set(out["label"]) <= {"up", "down"}
    np.testing.assert_allclose(out["proba_down"] + out["proba_up"], 1.0)
    with pytest.raises(DataProblem) as refused:
        predict(str(tmp_path / "rows.parquet"), str(tmp_path / "m.pkl"), str(tmp_path / "x.parquet"),
                passthrough=["customer"])  # fmt: skip
    assert refused.value.code == "job.passthrough_missing" and "'customer'" in refused.value.message


def test_the_cache_key_keeps_old_keys_and_separates_new_choices():
    base = prepared_cache_key("d" * 64, kind="fit")
    assert base == prepared_cache_key("d" * 64, kind="fit", target="y", task="classification")
    others = {
        prepared_cache_key("d" * 64, kind="fit", target="price"),
        prepared_cache_key("d" * 64, kind="fit", task="regression"),
        prepared_cache_key("d" * 64, kind="predict", feature_schema={"columns": {"x": "numeric"}}, passthrough=["id"]),
    }
    assert base not in others and len(others) == 3
