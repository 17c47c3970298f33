"""Registered fits on a real worker: versions, promotion decided in the job against the alias's
version on the same evaluation data, predict by alias, rollback and the alias's history."""

from __future__ import annotations

import pytest
from jobs_testing import wait_job
from registry_testing import quality_sets, registered_fit, upload_named

from app.core.keys import KEYS


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    return quality_sets(tmp_path_factory.mktemp("quality"))


def test_versions_promotion_predict_by_alias_rollback_and_history(api, small_worker, sets, broker_db):
    # Given: an evaluation set and three training sets, fair, good and bad, under one name
    upload_named(api, sets["holdout"], "holdout")
    upload_named(api, sets["fair"], "sales")

    # When: the first registered fit finishes, it is version 1 and takes the free alias
    first = registered_fit(api, "sales@latest")
    assert first["status"] == "finished", first
    reg1 = first["result"]["registry"]
    assert reg1["name"] == "churn" and reg1["version"] == 1 and reg1["promoted"] is True
    assert reg1["compared_with"] is None and "free alias" in reg1["reason"]
    assert first["dataset_ref"] == "sales@latest" and first["registration"]["evaluate_on_ref"] == "holdout@latest"
    assert broker_db.ttl(KEYS.job(first["id"])) == -1  # a version's record outlives the job retention

    # Then: a better fit (clean labels) wins, compared with version 1 on the same rows
    upload_named(api, sets["good"], "sales")
    second = registered_fit(api, "sales@latest")
    reg2 = second["result"]["registry"]
    assert reg2["version"] == 2 and reg2["promoted"] is True, reg2
    assert reg2["compared_with"] == {"version": 1, "accuracy": reg1["metrics"]["accuracy"]}
    assert reg2["metrics"]["accuracy"] > reg1["metrics"]["accuracy"]

    # And: a worse fit (random labels) is version 3 but does not move the alias, and says why
    upload_named(api, sets["bad"], "sales")
    third = registered_fit(api, "sales@latest")
    reg3 = third["result"]["registry"]
    assert reg3["version"] == 3 and reg3["promoted"] is False and "worse" in reg3["reason"]
    assert reg3["compared_with"]["version"] == 2

    shown = api.get("/v1/registry/churn").json()
    assert [v["version"] for v in shown["versions"]] == [1, 2, 3] and shown["aliases"] == {"champion": 2}
    assert [v["model_id"] for v in shown["versions"]] == [first["id"], second["id"], third["id"]]
    assert api.get("/v1/registry").json()["items"] == [{"name": "churn", "latest_version": 3,
                                                         "aliases": {"champion": 2}}]  # fmt: skip

    # When: a predict names the model by alias, it runs the champion and records both
    unlabelled = upload_named(api, sets["unlabelled"], "scoring")
    by_alias = {"kind": "predict", "dataset_id": unlabelled["id"], "model_id": "churn@champion"}
    predict = api.post("/v1/jobs", json=by_alias)
    assert predict.status_code == 202, predict.text
    assert predict.json()["model_id"] == second["id"] and predict.json()["model_ref"] == "churn@champion"
    assert wait_job(api, predict.json()["id"])["status"] == "finished"

    # And: a rollback by hand moves the alias back, and the history tells every move
    moved = api.put("/v1/registry/churn/aliases/champion", json={"version": 1, "reason": "v2 misbehaves"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 1 and moved.json()["from"] == 2
    after = api.post("/v1/jobs", json=by_alias)
    assert after.json()["model_id"] == first["id"]
    by_number = api.post("/v1/jobs", json={"kind": "predict", "dataset_id": "scoring@1", "model_id": "churn@3"})
    assert by_number.json()["model_id"] == third["id"] and by_number.json()["dataset_id"] == unlabelled["id"]

    history = api.get("/v1/registry/churn/aliases/champion/history").json()
    assert history["current"] == 1
    assert [(h["version"], h["from"]) for h in history["items"]] == [(1, None), (2, 1), (1, 2)]
    assert history["items"][1]["compared"]["old"] == reg1["metrics"]["accuracy"]
    assert history["items"][1]["by"].startswith("key:") and history["items"][1]["job_id"] == second["id"]
    assert history["items"][2]["reason"] == "v2 misbehaves" and history["items"][2]["by"].startswith("key:")

    notices = api.get("/v1/notices").json()["items"]
    assert [n["type"] for n in notices] == ["registry.alias_moved"] * 3


def test_equal_versions_new_evaluation_data_and_fits_finishing_together(api, small_worker, sets):
    # Given: a champion trained on clean labels, scored on the first hold-out version
    upload_named(api, sets["holdout"], "holdout")
    upload_named(api, sets["good"], "sales")
    first = registered_fit(api, "sales@1")["result"]["registry"]
    assert first["version"] == 1 and first["promoted"] is True

    # When: the same data trains again (same parameters, same seed): an equal version
    again = registered_fit(api, "sales@1")
    reg = again["result"]["registry"]
    # Then: it is a new version (a registered fit is never deduplicated) that does not take the alias
    assert reg["version"] == 2 and reg["promoted"] is False and "equal" in reg["reason"]
    assert reg["metrics"] == first["metrics"]

    # When: the evaluation data gets a new version, the champion is scored again on it in the job
    upload_named(api, sets["holdout"].with_name("holdout.parquet"), "holdout")
    third = registered_fit(api, "sales@1", evaluate_on="holdout@2")
    kinds = [e["message"] for e in api.get(f"/v1/jobs/{third['id']}/events").json()["items"] if e["message"]]
    assert any("Scoring version 1 on the same evaluation data" in m for m in kinds), kinds
    assert third["result"]["registry"]["compared_with"]["version"] == 1

    # And: registered fits submitted together each get their own version, none lost
    bodies = [{"kind": "fit", "dataset_id": "sales@1", "register_as": "burst", "params": {"max_iter": 3 + i}}
              for i in range(3)]  # fmt: skip
    ids = [api.post("/v1/jobs", json=b).json()["id"] for b in bodies]
    versions = sorted(wait_job(api, i)["result"]["registry"]["version"] for i in ids)
    assert versions == [1, 2, 3]
    assert [v["version"] for v in api.get("/v1/registry/burst").json()["versions"]] == [1, 2, 3]
