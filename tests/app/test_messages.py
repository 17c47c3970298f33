"""Messages that finish the thought (issue 26): a misspelt column, target or parameter gets the
closest names; a missing target's hint names `--target` / `target=`; `tabjob fit --help` lists
each family's parameters with their ranges."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from jobs_testing import upload
from typer.testing import CliRunner

from app.api.schemas import FitParams, XGBoostParams
from ml.errors import DataProblem
from ml.schema import check_predict_schema
from ml.suggest import closest, did_you_mean
from tabjob.cli.main import app
from tabjob.cli.params import PARAMETERS


def test_closest_names_ignore_case_first_and_stay_quiet_when_nothing_is_close():
    assert closest("y", ["Y", "x"]) == ["Y"]
    assert closest("max_iters", ["max_iter", "max_bins", "max_depth"])[0] == "max_iter"
    assert did_you_mean("label", ["y", "f0"]) == ""
    assert did_you_mean("agee", ["age", "page"]) == " Did you mean 'age' or 'page'?"


@pytest.mark.parametrize(
    ("model", "typo", "meant"), [("hgb", "max_iters", "max_iter"), ("xgboost", "n_estimator", "n_estimators")]
)
def test_a_misspelt_parameter_gets_the_familys_closest_names(api, model, typo, meant):
    body = {"kind": "fit", "dataset_id": "ds_0123456789abcdef", "model": model, "params": {typo: 3}}
    refused = api.post("/v1/jobs", json=body)
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert f"'{typo}' is not a parameter of model '{model}'. Did you mean '{meant}'" in message
    assert "Value error" not in message


def test_a_misspelt_target_gets_did_you_mean_and_a_hint_that_names_the_target_option(api, tmp_path):
    path = tmp_path / "labels.parquet"
    pd.DataFrame({"f0": [0.1, 0.2, 0.3, 0.4], "Label": [0, 1, 0, 1]}).to_parquet(path)
    dataset = upload(api, path)
    for target, near in (("y", None), ("label", "Label")):
        refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "target": target})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "dataset.missing_target"
        assert "--target" in error["hint"] and "target=" in error["hint"] and "rename" not in error["hint"].lower()
        if near:
            assert f"Did you mean '{near}'?" in error["message"] and f"--target {near}" in error["hint"]


def test_a_misspelt_prediction_column_names_the_column_it_probably_is():
    trained = {"age": "numeric", "income": "numeric"}
    schema = pa.schema([("Age", pa.float64()), ("income", pa.float64())])
    with pytest.raises(DataProblem) as refused:
        check_predict_schema(schema, 3, trained)
    assert refused.value.code == "dataset.missing_columns"
    assert "For 'age': Did you mean 'Age'?" in refused.value.message


def test_fit_help_lists_every_familys_parameters_with_their_ranges():
    shown = CliRunner().invoke(app, ["fit", "--help"], env={"COLUMNS": "120"}).stdout
    assert "Parameters of --model hgb" in shown and "Parameters of --model xgboost" in shown
    assert "max_iter           integer 1..10000" in shown and "subsample          number in (0, 1]" in shown


@pytest.mark.parametrize(("family", "model"), [("hgb", FitParams), ("xgboost", XGBoostParams)])
def test_the_clis_parameter_table_is_the_apis(family, model):
    """The client cannot import the server: its copy of the ranges must match the API's schema."""
    expected = {}
    for name, prop in model.model_json_schema()["properties"].items():
        (spec,) = [p for p in prop["anyOf"] if p["type"] != "null"]
        low = spec.get("minimum", spec.get("exclusiveMinimum"))
        expected[name] = (spec["type"], low, spec.get("maximum"), "exclusiveMinimum" in spec)
    assert PARAMETERS[family] == expected
