"""The dashboard's Models section in a real browser: a tenant's model with what it learned and its
metrics on the held-out rows and on its evaluation dataset."""

from __future__ import annotations

import secrets

import httpx
import pandas as pd
from jobs_testing import upload, wait_job
from test_dashboard import dump_dom  # Chromium's DOM of a page (live_api, the api process: conftest)

from app.core.auth import ApiKeys
from app.jobs.broker import redis_client


def test_the_page_shows_a_models_metrics(live_api, small_worker, settings, seed_files, tmp_path):
    keys = ApiKeys(client=redis_client(settings, decode=True))
    token = keys.create("t-" + secrets.token_hex(5), "dashboard models test")[0]
    with httpx.Client(base_url=live_api, headers={"authorization": f"Bearer {token}"}) as client:
        labelled = tmp_path / "labelled.parquet"
        pd.concat([pd.read_parquet(seed_files["test"]), pd.read_parquet(seed_files["truth"])], axis=1).to_parquet(
            labelled, index=False
        )
        train, test = upload(client, seed_files["train"]), upload(client, labelled)
        body = {"kind": "fit", "dataset_id": train, "evaluate_on": test,
                "params": {"max_iter": 20, "early_stopping": True}}  # fmt: skip
        model = wait_job(client, client.post("/v1/jobs", json=body).json()["id"])
        assert model["status"] == "finished", model
        scores = model["result"]["validation"]

    dom = dump_dom(f"{live_api}/dashboard#key={token}", tmp_path)

    assert f'data-model-id="{model["id"]}"' in dom, dom[-3000:]
    assert f"accuracy {scores['accuracy']:.4f}, log_loss {scores['log_loss']:.4f}" in dom
    evaluation = scores["evaluation"]
    assert f"roc_auc {evaluation['roc_auc']:.4f}, f1 {evaluation['f1']:.4f} ({test}, {evaluation['rows']} rows)" in dom
    assert "2 classes" in dom
