"""What a fit learns and reports, through the API on the real broker and store: regression and
classification with both families (hgb in one call, xgboost in two steps), the task inferred and
reported, metrics equal to scikit-learn's on the same held-out rows and on an evaluation dataset,
predictions named after the target with class probabilities and passthrough columns, the model's
page, and the bad requests refused with a code and a hint."""

from __future__ import annotations

import io
from pathlib import Path

import cloudpickle
import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from jobs_testing import upload, wait_job
from sklearn import metrics as sk

from ml import families
from ml.training import validation_split

ROWS = 1500
PARAMS = {
    "hgb": {"max_iter": 40, "early_stopping": True},
    "xgboost": {"n_estimators": 40, "early_stopping": True, "max_bin": 64},
}


@pytest.fixture(scope="module")
def pipeline(module_workers):
    """One worker on the small lane (hgb jobs, prepare steps) and one on the gpu lane (model steps, on the CPU)."""
    module_workers.start("small")
    module_workers.start("gpu", TABJOB_ML_DEVICE="cpu")
    return module_workers


def table(rows: int, seed: int) -> pd.DataFrame:
    """A user's table: an id, numeric features, a text category, a yes/no target and a price."""
    rng = np.random.default_rng(seed)
    x0, x1 = rng.normal(size=rows), rng.normal(size=rows)
    plan = rng.choice(["basic", "plus", "pro"], size=rows)
    effect = pd.Series(plan).map({"basic": -1.0, "plus": 0.0, "pro": 1.5}).to_numpy()
    churn = 1 / (1 + np.exp(-(2 * x0 - x1 + effect)))
    return pd.DataFrame(
        {
            "row_id": rng.permutation(rows) + 10_000,
            "x0": x0,
            "x1": x1,
            "plan": plan,
            "churned": np.where(rng.random(rows) < churn, "yes", "no"),
            "price": 20 + 3 * x0 - 2 * x1 + 4 * effect + rng.normal(0, 0.5, rows),
        }
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("fit-report")
    paths = {}
    train, holdout = table(ROWS, 0), table(400, 1)
    for task, drop in (("classification", "price"), ("regression", "churned")):
        paths[f"{task}-train"] = base / f"{task}-train.parquet"
        train.drop(columns=[drop, "row_id"]).to_parquet(paths[f"{task}-train"], index=False)
        paths[f"{task}-eval"] = base / f"{task}-eval.parquet"
        holdout.drop(columns=[drop, "row_id"]).to_parquet(paths[f"{task}-eval"], index=False)
    # What a user predicts: their rows with an id to join on, and no target.
    paths["predict"] = base / "predict.parquet"
    holdout.drop(columns=["churned", "price"])[["x0", "row_id", "plan", "x1"]].to_parquet(paths["predict"], index=False)
    paths["truth"] = base / "truth.parquet"
    holdout.to_parquet(paths["truth"], index=False)
    return paths


def submit(api, **body) -> dict:
    response = api.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def refused(api, status: int, code: str, **body) -> dict:
    response = api.post("/v1/jobs", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["hint"], error
    return error


def held_out_truth(frame: pd.DataFrame, target: str, task: str, params: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows the fit held out for early stopping (the same split: the same function, codes and seed)."""
    y = frame[target].to_numpy()
    codes = y.astype(np.float64) if task == "regression" else np.unique(y, return_inverse=True)[1].astype(np.int32)
    split = validation_split(codes, params, task)
    assert split is not None
    return frame.iloc[split[1]], y[split[1]]


def model_outputs(api, model_id: str, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """The exported model's predictions (and probabilities) of ``rows``, computed here."""
    export = api.get(f"/v1/models/{model_id}/export").json()
    bundle = cloudpickle.loads(httpx.get(export["url"]).content)
    family = families.family(bundle.family)
    X = np.column_stack(
        [
            rows[name].map({c: i for i, c in enumerate(bundle.spec.categories[name])}).astype(float)
            if kind == "categorical"
            else rows[name].astype(float)
            for name, kind in bundle.spec.columns.items()
        ]
    ).astype(family.matrix_dtype)
    if bundle.task == "regression":
        return family.predict(bundle.estimator, X, "cpu"), None
    proba = family.predict_proba(bundle.estimator, X, "cpu")
    return np.asarray(bundle.classes, dtype=object)[proba.argmax(axis=1)], proba


def expected_metrics(task: str, truth: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None) -> dict:
    if task == "regression":
        return {
            "r2": sk.r2_score(truth, predicted),
            "rmse": sk.root_mean_squared_error(truth, predicted),
            "mae": sk.mean_absolute_error(truth, predicted),
        }
    classes = ["no", "yes"]
    return {
        "accuracy": sk.accuracy_score(truth, predicted),
        "log_loss": sk.log_loss(truth, proba, labels=classes),
        "roc_auc": sk.roc_auc_score(truth == "yes", proba[:, 1]),
        "f1": sk.f1_score(truth, predicted, average="macro"),
        "confusion_matrix": sk.confusion_matrix(truth, predicted, labels=classes).tolist(),
    }


def assert_metrics(reported: dict, expected: dict) -> None:
    for key, value in expected.items():
        if key == "confusion_matrix":
            assert reported[key] == value
        else:
            assert reported[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def read_result(api, job_id: str) -> pd.DataFrame:
    url = api.get(f"/v1/jobs/{job_id}/result").json()["url"]
    return pd.read_parquet(io.BytesIO(httpx.get(url).raise_for_status().content))


@pytest.mark.parametrize("family", ["hgb", "xgboost"])
@pytest.mark.parametrize(("task", "target"), [("classification", "churned"), ("regression", "price")])
def test_a_fit_learns_reports_metrics_and_predicts_columns_to_join_back(
    api, pipeline, files, family: str, task: str, target: str
):
    # Given the user's table, with its evaluation rows, and no task named
    train = upload(api, files[f"{task}-train"])
    evaluation = upload(api, files[f"{task}-eval"])
    params = PARAMS[family]

    # When the fit runs (the task inferred: text is classes, fractional numbers a quantity)
    job = submit(api, kind="fit", dataset_id=train, model=family, target=target, params=params, evaluate_on=evaluation)
    assert (job["task"], job["evaluate_on"]) == (task, evaluation)
    assert job["task_reason"] != "asked for" and target in job["task_reason"]
    done = wait_job(api, job["id"], timeout_s=300)

    # Then it reports the task and every metric of it, equal to scikit-learn's on the same held-out rows
    assert done["status"] == "finished", done
    if family == "xgboost":
        assert [s["name"] for s in done["steps"]] == ["prepare", "model"]
    result = done["result"]
    assert (result["task"], result["target"], result["family"]) == (task, target, family)
    frame = pd.read_parquet(files[f"{task}-train"])
    rows, truth = held_out_truth(frame, target, task, params)
    validation = result["validation"]
    assert validation["split"] == "early_stopping" and validation["rows"] == len(rows)
    predicted, proba = model_outputs(api, done["id"], rows)
    assert_metrics(validation, expected_metrics(task, truth, predicted, proba))
    assert validation["score"] == validation["r2" if task == "regression" else "accuracy"]
    assert validation["metric"] == ("r2" if task == "regression" else "accuracy")
    # ... and on the whole evaluation dataset
    holdout = pd.read_parquet(files[f"{task}-eval"])
    predicted, proba = model_outputs(api, done["id"], holdout)
    scored = validation["evaluation"]
    assert (scored["dataset_id"], scored["rows"]) == (evaluation, len(holdout))
    assert_metrics(scored, expected_metrics(task, holdout[target].to_numpy(), predicted, proba))

    # Then the model's page says what it is
    model = api.get(f"/v1/models/{done['id']}").json()
    assert (model["task"], model["target"], model["family"], model["dataset_id"]) == (task, target, family, train)
    assert model["rows"] == ROWS and model["evaluate_on"] == evaluation
    text_type = str(pq.read_schema(files[f"{task}-train"]).field("plan").type)  # string or large_string
    assert [(f["name"], f["kind"], f["type"]) for f in model["features"]] == [
        ("x0", "numeric", "double"), ("x1", "numeric", "double"), ("plan", "categorical", text_type),
    ]  # fmt: skip
    if task == "classification":
        assert model["classes"] == ["no", "yes"] and model["target_range"] is None
    else:
        assert model["classes"] == [] and model["target_range"]["min"] < 20 < model["target_range"]["max"]
    assert model["validation"] == {k: v for k, v in validation.items() if k not in ("note",)} | {"note": None}
    used = model["params_used"]
    if family == "hgb":
        assert used["max_iter"] == 40 and used["learning_rate"] == 0.1  # asked for, and a default
    else:
        assert used["n_estimators"] == 40 and used["tree_method"] == "hist"

    # When the user predicts their rows, keeping their id
    predict = submit(api, kind="predict", dataset_id=upload(api, files["predict"]), model_id=done["id"],
                     passthrough=["row_id"])  # fmt: skip
    assert predict["passthrough"] == ["row_id"] and predict["task"] == task
    assert wait_job(api, predict["id"], timeout_s=300)["status"] == "finished"

    # Then the predictions join back on the id, named after the target, with probabilities summing to 1
    out = read_result(api, predict["id"])
    users = pd.read_parquet(files["truth"])
    if task == "classification":
        assert list(out.columns) == ["row_id", "churned", "proba_no", "proba_yes"]
        assert set(out["churned"]) <= {"yes", "no"}
        assert np.allclose(out["proba_no"] + out["proba_yes"], 1.0)
        assert (out["churned"] == np.where(out["proba_yes"] > out["proba_no"], "yes", "no")).all()
        joined = out.merge(users, on="row_id", suffixes=("", "_true"))
        assert len(joined) == len(users) and (joined["churned"] == joined["churned_true"]).mean() > 0.7
    else:
        assert list(out.columns) == ["row_id", "price"] and out["price"].dtype == np.float64
        joined = out.merge(users, on="row_id", suffixes=("", "_true"))
        assert len(joined) == len(users) and sk.r2_score(joined["price_true"], joined["price"]) > 0.8
    assert list(out["row_id"]) == list(pd.read_parquet(files["predict"])["row_id"])


def test_an_integer_target_with_few_values_is_classes_and_the_task_can_be_named(api, small_worker, tmp_path):
    frame = table(400, 3).drop(columns=["churned"])
    frame["rating"] = (frame["price"] // 5).astype(int).clip(1, 6)
    path = tmp_path / "ratings.parquet"
    frame.drop(columns=["price"]).to_parquet(path, index=False)
    dataset = upload(api, path)

    inferred = submit(api, kind="fit", dataset_id=dataset, target="rating", params={"max_iter": 10})
    assert inferred["task"] == "classification" and "distinct whole number" in inferred["task_reason"]
    named = submit(api, kind="fit", dataset_id=dataset, target="rating", task="regression", params={"max_iter": 10})
    assert (named["task"], named["task_reason"]) == ("regression", "asked for")
    assert named["id"] != inferred["id"]  # not deduplicated onto the classification
    classes = wait_job(api, inferred["id"])["result"]
    assert classes["classes"] == sorted(set(frame["rating"])) and "roc_auc" not in classes["validation"]
    values = wait_job(api, named["id"])["result"]
    assert values["task"] == "regression" and values["classes"] == []


def test_bad_requests_are_refused_with_a_code_and_a_hint(api, small_worker, files, tmp_path):
    train = upload(api, files["classification-train"])
    # A regression of text
    error = refused(api, 422, "dataset.target_not_numeric", kind="fit", dataset_id=train, target="churned",
                    task="regression")  # fmt: skip
    assert "'churned'" in error["message"]
    # An evaluation dataset without the target
    unlabelled = upload(api, files["predict"])
    error = refused(api, 422, "job.evaluate_on_missing_target", kind="fit", dataset_id=train, target="churned",
                    evaluate_on=unlabelled)  # fmt: skip
    assert "'churned'" in error["message"]
    # An evaluation dataset of other columns
    other = tmp_path / "other.parquet"
    pd.DataFrame({"churned": ["yes", "no"], "z": [1.0, 2.0]}).to_parquet(other, index=False)
    refused(api, 422, "dataset.missing_columns", kind="fit", dataset_id=train, target="churned",
            evaluate_on=upload(api, other))  # fmt: skip
    refused(api, 422, "job.unexpected_passthrough", kind="fit", dataset_id=train, target="churned",
            passthrough=["x0"])  # fmt: skip

    model = wait_job(api, submit(api, kind="fit", dataset_id=train, target="churned", params={"max_iter": 5})["id"])
    predict = upload(api, files["predict"])
    # A passthrough column the data lacks
    error = refused(api, 422, "job.passthrough_missing", kind="predict", dataset_id=predict, model_id=model["id"],
                    passthrough=["row_id", "customer"])  # fmt: skip
    assert "'customer'" in error["message"] and "'row_id'" not in error["message"].split("Columns found")[0]
    refused(api, 422, "job.unexpected_evaluate_on", kind="predict", dataset_id=predict, model_id=model["id"],
            evaluate_on=train)  # fmt: skip
    refused(api, 422, "job.unexpected_task", kind="predict", dataset_id=predict, model_id=model["id"],
            task="classification")  # fmt: skip
    refused(api, 422, "job.unexpected_model", kind="fit", dataset_id=train, model_id=model["id"])


def test_the_legacy_routes_still_write_one_column_y(api, small_worker, seed_files):
    # The seed's clients: POST /fit?id=, POST /predict, one column y (no probabilities).
    train, test = upload(api, seed_files["train"]), upload(api, seed_files["test"])
    fit = api.post("/fit", params={"id": train}).json()
    assert wait_job(api, fit["id"])["result"]["task"] == "classification"
    job = api.post("/predict", params={"dataset_id": test, "model_id": fit["id"]}).json()
    assert wait_job(api, job["id"])["status"] == "finished"
    assert list(read_result(api, job["id"]).columns) == ["y"]
