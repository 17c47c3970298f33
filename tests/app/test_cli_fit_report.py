"""The user commands of what a fit learns and reports: `tabjob upload x.csv` converts on the
user's side and says the inferred types; `tabjob fit --task --evaluate-on --wait` shows every
metric; `tabjob predict --passthrough` keeps the id column; `tabjob model` shows the task."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from test_cli_user import api_url, user  # noqa: F401  (the real API on loopback, and the CLI runner)


def churn_csv(path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    usage = rng.normal(size=rows)
    plan = rng.choice(["basic", "pro"], rows)
    churned = np.where(usage + (plan == "basic") + rng.normal(0, 0.5, rows) > 0.5, "yes", "no")
    pd.DataFrame({"customer": [f"c{i}" for i in range(rows)], "usage": usage, "plan": plan, "churned": churned}).to_csv(
        path, index=False
    )


def test_csv_upload_fit_with_metrics_and_predict_with_passthrough(user, small_worker, tmp_path):  # noqa: F811
    churn_csv(tmp_path / "train.csv", 300, 0)
    churn_csv(tmp_path / "eval.csv", 120, 1)
    uploaded = user("upload", str(tmp_path / "train.csv"))
    assert uploaded.exit_code == 0, uploaded.stderr
    # said on stderr, beside the progress: stdout stays the dataset
    assert "Read train.csv as CSV (300 rows)" in uploaded.stderr and "usage: double" in uploaded.stderr
    train = json.loads(user("upload", str(tmp_path / "train.csv"), "--json").stdout)
    assert train["csv"]["columns"]["churned"] == "string" and train["state"] == "uploaded"
    evaluation = user("upload", str(tmp_path / "eval.csv"), "-q").stdout.strip()

    # A fit that learns churned (customer is a feature here too: a predict must then send it)
    fit = user("fit", train["id"], "--target", "churned", "--task", "classification", "--evaluate-on", evaluation,
               "-p", "max_iter=20", "--wait")  # fmt: skip
    assert fit.exit_code == 0, fit.stdout + fit.stderr
    assert "2 classes of 'churned'" in fit.stdout
    assert f"evaluation dataset {evaluation} (120 rows): accuracy" in fit.stdout
    assert "log_loss" in fit.stdout and "roc_auc" in fit.stdout and "true / predicted" in fit.stdout
    job_id = json.loads(user("jobs", "--json").stdout)["items"][0]["id"]
    status = json.loads(user("status", job_id, "--json").stdout)
    assert status["task"] == "classification" and status["result"]["validation"]["evaluation"]["rows"] == 120

    predict = user("predict", evaluation, job_id, "--passthrough", "customer", "--wait", "--json")
    assert predict.exit_code == 0, predict.stdout + predict.stderr
    done = json.loads(predict.stdout)
    assert done["passthrough"] == ["customer"]
    assert user("download", done["id"], str(tmp_path / "out.parquet")).exit_code == 0
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["customer", "churned", "proba_no", "proba_yes"]

    missing = user("predict", evaluation, job_id, "--passthrough", "row_id")
    assert missing.exit_code == 2 and "job.passthrough_missing" in missing.stderr and "'row_id'" in missing.stderr

    shown = user("model", job_id)
    assert "model of 'churned' (2 classes)" in shown.stdout and "held-out" not in shown.stdout
