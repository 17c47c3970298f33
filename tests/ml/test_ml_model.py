"""The fit/predict contract: accuracy on the seed shape, progress, the summary, the saved bundle, determinism."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import numpy as np
import pyarrow.parquet as pq
import pytest

from ml.model import DEFAULT_RANDOM_STATE, ModelBundle, fit, predict

FAST = {"max_iter": 20}


@pytest.fixture(scope="module")
def seed_job(tmp_path_factory, seed_frames) -> dict:
    """One fit and predict of the seed shape, with everything they reported."""
    folder = tmp_path_factory.mktemp("seed")
    scratch = folder / "scratch"
    scratch.mkdir()
    train, test = seed_frames()
    train.to_parquet(folder / "train.parquet", index=False)
    test.drop(columns="y").to_parquet(folder / "test.parquet", index=False)
    fit_calls, predict_calls = [], []

    summary = fit(
        str(folder / "train.parquet"),
        str(folder / "model.pkl"),
        params={"max_iter": 50},
        progress=lambda *call: fit_calls.append(call),
        scratch_dir=str(scratch),
    )
    predicted = predict(
        str(folder / "test.parquet"),
        str(folder / "model.pkl"),
        str(folder / "result.parquet"),
        progress=lambda *call: predict_calls.append(call),
        scratch_dir=str(scratch),
    )
    return {
        "folder": folder,
        "scratch": scratch,
        "train": train,
        "test": test,
        "summary": summary,
        "predicted": predicted,
        "fit_calls": fit_calls,
        "predict_calls": predict_calls,
    }


def phases(calls: list[tuple]) -> list[str]:
    """Each phase once, in the order it first appeared."""
    return list(dict.fromkeys(phase for phase, _, _ in calls))


@pytest.mark.slow  # trains the seed shape (seconds)
def test_seed_shape_is_learned(seed_job, read_predictions):
    labels = read_predictions(str(seed_job["folder"] / "result.parquet"))

    assert seed_job["predicted"]["rows"] == len(labels) == 500
    assert np.mean(np.asarray(labels) == seed_job["test"]["y"].to_numpy()) > 0.8


def test_fit_reports_phases_in_order(seed_job):
    calls = seed_job["fit_calls"]

    assert phases(calls) == ["downloading", "validating", "training", "uploading"]
    assert calls[0] == ("downloading", 0.0, None)
    assert ("training", None, "Training on 1,500 rows x 20 features.") in calls
    for _, fraction, message in calls:
        assert fraction is None or 0.0 <= fraction <= 1.0
        assert message is None or isinstance(message, str)


def test_predict_reports_phases_in_order(seed_job):
    assert phases(seed_job["predict_calls"]) == ["downloading", "validating", "predicting", "uploading"]
    assert ("predicting", None, "Predicting 500 rows.") in seed_job["predict_calls"]


def test_fit_summary(seed_job):
    summary = seed_job["summary"]

    assert summary["features"]["columns"] == {f"col_{i}": "numeric" for i in range(20)}
    assert summary["features"]["categories"] == {}
    assert summary["classes"] == [0, 1]
    assert summary["rows"] == 1500
    assert 1 <= summary["iterations"] <= 50
    assert summary["params"] == {"random_state": DEFAULT_RANDOM_STATE, "max_iter": 50}
    assert summary["notes"] == []
    assert set(summary["timings"]) == {"download_s", "prepare_s", "train_s", "upload_s"}
    assert all(seconds >= 0 for seconds in summary["timings"].values())


def test_predict_summary(seed_job):
    assert seed_job["predicted"]["rows"] == 500
    assert set(seed_job["predicted"]["timings"]) == {"download_s", "predict_s", "upload_s"}


def test_model_file_is_a_bundle(seed_job):
    bundle = cloudpickle.loads((seed_job["folder"] / "model.pkl").read_bytes())

    assert isinstance(bundle, ModelBundle)
    assert bundle.classes == [0, 1]
    assert bundle.trained_rows == 1500
    assert bundle.params == seed_job["summary"]["params"]
    assert bundle.estimator.max_iter == 50
    assert list(bundle.spec.columns) == [f"col_{i}" for i in range(20)]


def test_scratch_dir_is_left_empty(seed_job):
    assert list(seed_job["scratch"].iterdir()) == []


def test_fit_is_deterministic(tmp_path, write_parquet, read_predictions, seed_frames):
    # Given the same data and parameters, fitted twice
    train, test = seed_frames(rows=600, features=8)
    data = write_parquet("train.parquet", train)
    new = write_parquet("test.parquet", test.drop(columns="y"))
    results = []
    for run in ("first", "second"):
        model = str(tmp_path / f"{run}.pkl")
        fit(data, model, params={**FAST, "max_leaf_nodes": 15})
        result = str(tmp_path / f"{run}.parquet")
        predict(new, model, result)
        results.append(cloudpickle.loads(Path(model).read_bytes()))
        results.append(read_predictions(result))

    first_model, first_labels, second_model, second_labels = results
    # Then the predictions, and the probabilities behind them, are identical
    assert first_labels == second_labels
    X = first_model.spec.matrix(pq.ParquetFile(new))
    assert np.array_equal(first_model.estimator.predict_proba(X), second_model.estimator.predict_proba(X))


def test_params_reach_the_estimator(tmp_path, write_parquet, seed_frames):
    train, _ = seed_frames(rows=400, features=4)
    model = tmp_path / "model.pkl"

    summary = fit(
        write_parquet("train.parquet", train), str(model), params={"max_iter": 3, "random_state": 7, "max_depth": 2}
    )

    assert summary["iterations"] == 3
    assert summary["params"] == {"max_iter": 3, "random_state": 7, "max_depth": 2}
    estimator = cloudpickle.loads(model.read_bytes()).estimator
    assert (estimator.random_state, estimator.max_depth) == (7, 2)
