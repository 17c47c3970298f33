"""XGBoost as a model family: the seed shape learned as well as hgb, in one call and in two steps alike."""

from __future__ import annotations

import cloudpickle
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ml.bundle import ModelBundle
from ml.families.xgb import XGBoostModel
from ml.model import fit, predict
from ml.model_step import predict_prepared, train_prepared
from ml.prepare_step import prepare


def recorder(calls: dict, name: str):
    calls[name] = []
    return lambda *call: calls[name].append(call)


@pytest.fixture(scope="module")
def seed_models(tmp_path_factory, seed_frames) -> dict:
    """The seed shape fitted and predicted as hgb, as xgboost in one call, and as xgboost in two steps."""
    folder = tmp_path_factory.mktemp("seed-xgb")
    train, test = seed_frames()
    train.to_parquet(folder / "train.parquet", index=False)
    test.drop(columns="y").to_parquet(folder / "test.parquet", index=False)
    data, new = str(folder / "train.parquet"), str(folder / "test.parquet")
    calls: dict = {}
    summaries = {
        "hgb": fit(data, str(folder / "hgb.pkl")),
        "xgboost": fit(data, str(folder / "xgboost.pkl"), family="xgboost"),
    }
    predict(new, str(folder / "hgb.pkl"), str(folder / "hgb.parquet"))
    predict(new, str(folder / "xgboost.pkl"), str(folder / "xgboost.parquet"))

    summaries["prepare"] = prepare(data, str(folder / "fit.arrow"), progress=recorder(calls, "prepare"))
    summaries["steps"] = train_prepared(
        str(folder / "fit.arrow"), str(folder / "steps.pkl"), family="xgboost", progress=recorder(calls, "train")
    )
    prepare(new, str(folder / "new.arrow"), kind="predict", feature_schema=summaries["steps"]["features"])
    summaries["predicted"] = predict_prepared(
        str(folder / "new.arrow"),
        str(folder / "steps.pkl"),
        str(folder / "steps.parquet"),
        progress=recorder(calls, "predict"),
    )
    return {"folder": folder, "test": test, "summaries": summaries, "calls": calls}


def labels(seed_models: dict, name: str) -> np.ndarray:
    table = pq.read_table(seed_models["folder"] / f"{name}.parquet")
    assert table.column_names == ["y"]
    return table.column("y").to_numpy()


def accuracy(seed_models: dict, name: str) -> float:
    return float(np.mean(labels(seed_models, name) == seed_models["test"]["y"].to_numpy()))


def phases(calls: list[tuple]) -> list[str]:
    return list(dict.fromkeys(phase for phase, _, _ in calls))


@pytest.mark.slow  # trains the seed shape with both families (seconds each)
@pytest.mark.parametrize("name", ["xgboost", "steps"])
def test_xgboost_is_within_two_points_of_hgb_on_the_seed_shape(seed_models, name):
    assert accuracy(seed_models, "hgb") > 0.8
    assert abs(accuracy(seed_models, name) - accuracy(seed_models, "hgb")) <= 0.02


@pytest.mark.slow  # trains the seed shape four ways (8 s)
def test_two_steps_predict_exactly_what_one_call_predicts(seed_models):
    one_call, steps = seed_models["summaries"]["xgboost"], seed_models["summaries"]["steps"]

    assert np.array_equal(labels(seed_models, "steps"), labels(seed_models, "xgboost"))
    ignored = {"timings", "model_sha256"}
    assert {k: v for k, v in steps.items() if k not in ignored} == {
        k: v for k, v in one_call.items() if k not in ignored
    }


@pytest.mark.slow  # uses seed_models: the seed shape trained four ways (8 s)
def test_xgboost_summary(seed_models):
    summary = seed_models["summaries"]["xgboost"]

    assert summary["family"] == "xgboost"
    assert summary["device"] == "cpu"  # no GPU usable here (xgboost-cpu)
    assert summary["classes"] == [0, 1]
    assert summary["rows"] == 1500
    assert summary["iterations"] == 100  # XGBoost's default n_estimators; no early stopping at 1,500 rows
    assert summary["best_iteration"] is None
    assert summary["validation_score"] is None
    assert summary["params"] == {"random_state": 0}
    assert summary["features"]["columns"] == {f"col_{i}": "numeric" for i in range(20)}
    assert set(summary["timings"]) == {"download_s", "prepare_s", "train_s", "upload_s"}
    assert set(seed_models["summaries"]["steps"]["timings"]) == {"download_s", "load_s", "train_s", "upload_s"}


@pytest.mark.slow  # uses seed_models: the seed shape trained four ways (8 s)
def test_hgb_summary_names_its_family_and_device(seed_models):
    summary = seed_models["summaries"]["hgb"]

    assert (summary["family"], summary["device"]) == ("hgb", "cpu")


@pytest.mark.slow  # uses seed_models: the seed shape trained four ways (8 s)
def test_model_files_record_their_family(seed_models):
    bundles = {
        name: cloudpickle.loads((seed_models["folder"] / f"{name}.pkl").read_bytes())
        for name in ("hgb", "xgboost", "steps")
    }

    assert {name: b.family for name, b in bundles.items()} == {"hgb": "hgb", "xgboost": "xgboost", "steps": "xgboost"}
    assert all(isinstance(b, ModelBundle) and b.device == "cpu" for b in bundles.values())
    assert isinstance(bundles["steps"].estimator, XGBoostModel)
    model = bundles["steps"].estimator
    assert model.model[:1] == b"{"  # XGBoost's own UBJSON model, not a pickled Python object
    assert model.booster("cpu").num_boosted_rounds() == seed_models["summaries"]["steps"]["iterations"]


@pytest.mark.slow  # uses seed_models: the seed shape trained four ways (8 s)
def test_each_step_reports_its_phases(seed_models):
    calls = seed_models["calls"]

    assert phases(calls["prepare"]) == ["downloading", "validating", "preparing", "uploading"]
    assert ("preparing", 0.0, "Encoding 1,500 rows x 20 features.") in calls["prepare"]
    assert ("preparing", 1.0, None) in calls["prepare"]
    assert phases(calls["train"]) == ["downloading", "training", "uploading"]
    assert ("training", None, "Training on 1,500 rows x 20 features.") in calls["train"]
    assert phases(calls["predict"]) == ["downloading", "predicting", "uploading"]
    assert seed_models["summaries"]["predicted"]["rows"] == 500


def test_early_stopping_on_the_same_split_in_both_paths(tmp_path, write_parquet, seed_frames):
    # Given more than 10,000 rows, where early stopping turns on by itself (HistGradientBoosting's rule)
    train, _ = seed_frames(rows=16_000, features=10)
    data = write_parquet("train.parquet", train)
    params = {"n_estimators": 300, "learning_rate": 0.5}

    one_call = fit(data, str(tmp_path / "a.pkl"), family="xgboost", params=params)
    prepare(data, str(tmp_path / "fit.arrow"))
    steps = train_prepared(str(tmp_path / "fit.arrow"), str(tmp_path / "b.pkl"), family="xgboost", params=params)

    # Then training stopped early on a validation tenth, the same in both paths
    assert one_call["best_iteration"] is not None
    assert one_call["iterations"] < 300
    assert 0.8 < one_call["validation_score"] <= 1.0
    for key in ("iterations", "best_iteration", "validation_score", "rows"):
        assert steps[key] == one_call[key], key


@pytest.mark.parametrize(("family", "params"), [("hgb", {"max_iter": 5}), ("xgboost", {"n_estimators": 5})])
def test_a_class_of_one_row_is_trained_on_not_held_out(tmp_path, write_parquet, family, params):
    # Given early stopping on (more than 10,000 rows) and a class with a single row
    rng = np.random.default_rng(0)
    x = rng.normal(size=12_000)
    y = np.where(x > 0, "up", "down").astype(object)
    y[16] = "rare"  # a row the unstratified split (random_state 0) puts in the validation tenth
    data = write_parquet("train.parquet", pd.DataFrame({"x": x, "y": y}))

    summary = fit(data, str(tmp_path / "m.pkl"), family=family, params=params)

    assert summary["classes"] == ["down", "rare", "up"]
    assert summary["validation_score"] is not None
    assert summary["rows"] == 12_000


def test_early_stopping_can_be_turned_off(tmp_path, write_parquet, seed_frames):
    train, _ = seed_frames(rows=16_000, features=4)

    summary = fit(
        write_parquet("train.parquet", train),
        str(tmp_path / "m.pkl"),
        family="xgboost",
        params={"n_estimators": 15, "early_stopping": False},
    )

    assert (summary["iterations"], summary["best_iteration"], summary["validation_score"]) == (15, None, None)


def test_categorical_missing_and_string_target_together(tmp_path, write_parquet, read_predictions):
    # Given a text feature that decides the class, with missing values in it and in a numeric column
    rng = np.random.default_rng(3)
    color = rng.choice(["red", "green", "blue"], size=600).astype(object)
    color[::9] = None
    noise = rng.normal(size=600)
    noise[::5] = np.nan
    train = pd.DataFrame({"color": color, "noise": noise, "y": np.where(color == "red", "stop", "go")})
    data = write_parquet("train.parquet", train)

    summary = fit(data, str(tmp_path / "m.pkl"), family="xgboost", params={"n_estimators": 10})
    predict(write_parquet("new.parquet", train.drop(columns="y")), str(tmp_path / "m.pkl"), str(tmp_path / "r.parquet"))

    assert summary["features"]["columns"] == {"color": "categorical", "noise": "numeric"}
    assert summary["classes"] == ["go", "stop"]
    bundle = cloudpickle.loads((tmp_path / "m.pkl").read_bytes())
    assert bundle.estimator.feature_types == ["c", "q"]
    assert read_predictions(str(tmp_path / "r.parquet")) == train["y"].tolist()


def test_model_files_without_a_family_are_hgb(tmp_path, write_parquet, read_predictions, seed_frames):
    # Given a model file written before families existed (its bundle has no 'family' attribute)
    train, test = seed_frames(rows=400, features=4)
    model = tmp_path / "old.pkl"
    fit(write_parquet("train.parquet", train), str(model), params={"max_iter": 5})
    bundle = cloudpickle.loads(model.read_bytes())
    del bundle.__dict__["family"], bundle.__dict__["device"]
    model.write_bytes(cloudpickle.dumps(bundle))

    summary = predict(write_parquet("new.parquet", test.drop(columns="y")), str(model), str(tmp_path / "r.parquet"))

    assert (summary["family"], summary["device"]) == ("hgb", "cpu")
    assert len(read_predictions(str(tmp_path / "r.parquet"))) == len(test)
