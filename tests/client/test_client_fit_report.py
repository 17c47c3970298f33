"""The client side of what a fit learns and reports: CSV converted to Parquet before upload (with
the inferred types said), a regression fit with an evaluation dataset read back as typed metrics,
and a predict that keeps an id column."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as sk

import tabjob
from tabjob.csv_input import csv_to_parquet


@pytest.fixture
def client(api):
    with tabjob.Client(http=api) as c:
        yield c


def houses(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.uniform(40, 200, rows).round(1)
    town = rng.choice(["north", "south"], rows)
    price = 2.5 * size + np.where(town == "north", 50.0, 0.0) + rng.normal(0, 5, rows)
    return pd.DataFrame({"house": np.arange(rows), "size": size, "town": town, "sold": rng.random(rows) < 0.5,
                         "price": price.round(2)})  # fmt: skip


def test_csv_is_read_with_inferred_types_and_written_as_parquet(tmp_path):
    path = tmp_path / "houses.csv"
    path.write_text("house,size,town,sold,price,when\n1,50.5,north,true,120.25,2026-01-02\n2,,south,false,99,\n")
    blob, conversion = csv_to_parquet(path)
    table = pq.read_table(io.BytesIO(blob))
    assert conversion.rows == 2 == table.num_rows
    assert conversion.columns == {
        "house": "int64", "size": "double", "town": "string", "sold": "bool", "price": "double", "when": "date32[day]",
    }  # fmt: skip
    assert table.column("size").null_count == 1
    assert "house: int64" in conversion.describe() and "2 rows" in conversion.describe()


def test_a_csv_uploads_as_parquet_and_a_regression_reports_typed_metrics(client, small_worker, tmp_path):
    # Given two CSV files of the user's: training rows and labelled evaluation rows
    train_csv, eval_csv = tmp_path / "train.csv", tmp_path / "eval.csv"
    houses(600, 0).drop(columns=["house"]).to_csv(train_csv, index=False)
    evaluation = houses(200, 1)
    evaluation.drop(columns=["house"]).to_csv(eval_csv, index=False)

    seen: list[tabjob.CsvConversion] = []
    train = client.upload(train_csv, on_csv=seen.append)
    held_out = client.upload(eval_csv)

    # Then the server got Parquet (it refuses anything else) with the types CSV inference found
    assert train.state == "uploaded" and train.rows == 600
    assert seen and seen[0].columns == {"size": "double", "town": "string", "sold": "bool", "price": "double"}
    assert {c.name: c.kind for c in train.columns} == {
        "size": "numeric", "town": "categorical", "sold": "boolean", "price": "numeric",
    }  # fmt: skip

    # When a regression is fitted and scored on the evaluation rows
    job = client.wait(client.fit(train.id, target="price", evaluate_on=held_out.id, params={"max_iter": 50}).id)

    # Then the typed result carries the task and the metrics, equal to scikit-learn's
    assert job.status == "finished" and job.task == "regression" and "fractional" in job.task_reason
    validation = job.validation
    assert isinstance(validation, tabjob.Validation) and validation.split == "none"  # 600 rows: no early stopping
    scored = validation.evaluation
    assert isinstance(scored, tabjob.Evaluation) and (scored.dataset_id, scored.rows) == (held_out.id, 200)
    assert set(scored.metrics) == {"r2", "rmse", "mae"} and scored.metrics["r2"] > 0.9

    # When the user predicts the evaluation rows keeping their id
    predict_path = tmp_path / "predict.csv"
    evaluation.drop(columns=["price"]).to_csv(predict_path, index=False)
    rows = client.upload(predict_path)
    done = client.wait(client.predict(rows.id, job.id, passthrough=["house"]).id)
    out = pd.read_parquet(client.download(done.id, tmp_path / "out.parquet"))
    assert list(out.columns) == ["house", "price"]
    assert list(out["house"]) == list(evaluation["house"])
    assert scored.metrics["r2"] == pytest.approx(sk.r2_score(evaluation["price"], out["price"]))

    model = client.model(job.id)
    assert model.task == "regression" and model.classes == [] and model.target_range["min"] > 0
    assert model.evaluate_on == held_out.id and model.params_used["max_iter"] == 50


def test_an_unreadable_csv_is_refused_before_anything_is_created(client, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")  # a row of three columns under two names
    with pytest.raises(tabjob.ApiError) as refused:
        client.upload(path)
    assert refused.value.code == "client.unreadable_csv" and refused.value.hint
    assert client.datasets().items == []
