"""A registered xgboost fit (prepare on a CPU lane, model on the gpu lane, device=cpu here) is a
version like any other: scored in the model step's process, compared with an hgb champion that
is scored again there on new evaluation data."""

from __future__ import annotations

import pytest
from registry_testing import quality_sets, registered_fit, upload_named


@pytest.fixture(scope="module")
def pipeline(module_workers):
    module_workers.start("small")
    module_workers.start("gpu", TABJOB_ML_DEVICE="cpu")
    return module_workers


def test_a_two_step_fit_registers_and_faces_the_champion_on_the_same_rows(api, pipeline, tmp_path):
    sets = quality_sets(tmp_path, rows=600)
    upload_named(api, sets["holdout"], "holdout")
    upload_named(api, sets["bad"], "sales")
    first = registered_fit(api, "sales@latest")["result"]["registry"]
    assert (first["version"], first["promoted"]) == (1, True)

    upload_named(api, sets["holdout"], "holdout")  # version 2: the hgb champion has no score on it yet
    upload_named(api, sets["good"], "sales")
    job = registered_fit(api, "sales@latest", model="xgboost", params={"n_estimators": 30}, evaluate_on="holdout@2")
    assert job["status"] == "finished" and [s["lane"] for s in job["steps"]] == ["small", "gpu"], job
    reg = job["result"]["registry"]
    assert reg["version"] == 2 and reg["promoted"] is True and reg["compared_with"]["version"] == 1
    messages = [e["message"] or "" for e in api.get(f"/v1/jobs/{job['id']}/events").json()["items"]]
    assert any("Scoring version 1 on the same evaluation data" in m for m in messages)
    assert api.get("/v1/registry/churn").json()["aliases"] == {"champion": 2}
