"""Safety nets around running jobs: no credentials in job errors, no stale job process answering
the next job, no model loaded unless it is the one trained, no dataset swapped after its checks."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from jobs_testing import put_file, upload, wait_job

from app.api.main import create_app
from app.jobs.child import describe_transport_error
from app.jobs.runner import JobRunner
from ml.model import ModelTampered, fit, predict


def test_store_errors_in_job_messages_never_carry_the_presigned_url():
    url = "http://store:8333/b/tenants/t/models/job_x.pkl?X-Amz-Credential=AK%2F&X-Amz-Signature=abc123"
    request = httpx.Request("PUT", url)
    error = httpx.HTTPStatusError("boom", request=request, response=httpx.Response(503, request=request))
    text = describe_transport_error(error)
    assert "503" in text and "PUT" in text
    assert "X-Amz" not in text and "store:8333" not in text and "job_x" not in text
    assert "X-Amz" not in describe_transport_error(httpx.ConnectError("failed", request=request))


def test_a_model_is_only_unpickled_if_it_is_the_one_trained(tmp_path):
    frame = pd.DataFrame({"a": np.arange(200.0), "y": np.arange(200) % 2})
    frame.to_parquet(tmp_path / "d.parquet")
    summary = fit(str(tmp_path / "d.parquet"), str(tmp_path / "m.pkl"), params={"max_iter": 3})
    predict(
        str(tmp_path / "d.parquet"),
        str(tmp_path / "m.pkl"),
        str(tmp_path / "r.parquet"),
        model_sha256=summary["model_sha256"],
    )
    (tmp_path / "m.pkl").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ModelTampered):
        predict(
            str(tmp_path / "d.parquet"),
            str(tmp_path / "m.pkl"),
            str(tmp_path / "r.parquet"),
            model_sha256=summary["model_sha256"],
        )


@pytest.mark.slow  # starts its own server processes
def test_a_job_process_left_mid_job_never_answers_the_next_job(tmp_path):
    rng = np.random.default_rng(0)
    big = pd.DataFrame(rng.normal(size=(20_000, 5)), columns=list("abcde"))
    big["y"] = (big.a > 0).astype(int)
    big.to_parquet(tmp_path / "big.parquet")
    small = pd.DataFrame({"z": np.arange(90.0), "y": np.arange(90) % 3})
    small.to_parquet(tmp_path / "small.parquet")
    runner = JobRunner(threads=1)

    def failing_progress(phase, fraction, message):
        raise ConnectionError("Valkey went away")  # as a failing update_job would

    try:
        kwargs = {
            "data_url": str(tmp_path / "big.parquet"),
            "model_url": str(tmp_path / "a.pkl"),
            "params": {"max_iter": 200},
        }
        with pytest.raises(ConnectionError):
            runner.run(
                "fit",
                kwargs,
                time_limit_s=60,
                should_cancel=lambda: False,
                cancel_poll_s=0.2,
                on_progress=failing_progress,
            )
        # The next job gets its own answer, not the abandoned one's.
        kwargs = {
            "data_url": str(tmp_path / "small.parquet"),
            "model_url": str(tmp_path / "b.pkl"),
            "params": {"max_iter": 2},
        }
        summary = runner.run(
            "fit", kwargs, time_limit_s=60, should_cancel=lambda: False, cancel_poll_s=0.2, on_progress=lambda *a: None
        )
        assert summary["rows"] == 90 and summary["classes"] == [0, 1, 2]
        assert list(summary["features"]["columns"]) == ["z"]
    finally:
        runner.kill()


def test_duplicate_column_names_are_refused_not_a_500(api, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table([pa.array([1.0, 2.0, 3.0]), pa.array([1.0, 2.0, 3.0]), pa.array([0, 1, 0])], names=["a", "a", "y"])
    pq.write_table(table, tmp_path / "dup.parquet")
    refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": upload(api, tmp_path / "dup.parquet")})
    assert refused.status_code == 422
    assert (
        refused.json()["error"]["code"] == "dataset.duplicate_columns" and "'a'" in refused.json()["error"]["message"]
    )


def test_a_big_dataset_cannot_be_forced_onto_the_small_lane(base_env, new_tenant, seed_files, settings_from):
    _, key = new_tenant()
    settings = settings_from({**base_env, "TABJOB_LANE_LARGE_MIN_ROWS": "1000"})
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        dataset = upload(api, seed_files["train"])
        refused = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "small"})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "job.lane_too_small"
        auto = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "large"}).json()
        api.post(f"/v1/jobs/{auto['id']}/cancel")


def test_a_dataset_replaced_after_submission_is_refused_by_the_worker(api, workers, seed_files):
    created = api.post("/v1/datasets", json={"name": "swap"}).json()
    put_file(created["upload_url"], seed_files["train"])
    job = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": created["id"], "lane": "large"}).json()
    # The upload URL is still valid: other bytes go to the same dataset before a worker runs.
    put_file(created["upload_url"], seed_files["train_without_y"])
    workers.start("large")
    ended = wait_job(api, job["id"])
    assert ended["status"] == "failed" and ended["error"]["code"] == "dataset.changed"
