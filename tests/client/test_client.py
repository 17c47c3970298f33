"""tabjob.Client (client/, the light package) against the real API on the real broker and store."""

from __future__ import annotations

import inspect
import json

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tabjob


@pytest.fixture
def client(api):
    """tabjob.Client speaking to the in-process app as a fresh tenant; presigned URLs go to the real store."""
    with tabjob.Client(http=api) as c:
        yield c


def test_upload_a_path_waits_for_the_check_and_returns_a_typed_dataset(client, seed_files):
    dataset = client.upload(seed_files["train"])
    assert isinstance(dataset, tabjob.Dataset)
    assert dataset.state == "uploaded" and dataset.name == "train.parquet"
    assert dataset.rows == 3000 and dataset.size_bytes == seed_files["train"].stat().st_size
    assert "y" in [c.name for c in dataset.columns] and all(isinstance(c, tabjob.Column) for c in dataset.columns)
    assert dataset.created_at.tzinfo is not None
    assert client.dataset(dataset.id) == dataset
    assert [d.id for d in client.datasets()] == [dataset.id]


def test_upload_a_dataframe_a_table_or_bytes(client):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]}, index=[10, 11, 12, 13])
    from_frame = client.upload(frame, name="frame")
    assert from_frame.name == "frame" and from_frame.rows == 4
    assert [c.name for c in from_frame.columns] == ["a", "y"]  # the index is not a column
    from_table = client.upload(pa.Table.from_pandas(frame, preserve_index=False))
    assert from_table.rows == 4 and from_table.name is None
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"b": [1, 2], "y": [1, 0]}), sink)
    assert client.upload(sink.getvalue().to_pybytes()).rows == 2
    with pytest.raises(TypeError, match=r"pandas\.DataFrame"):
        client.upload({"a": [1]})


def test_an_upload_the_server_refuses_raises_invalid_dataset_with_the_problem(client, tmp_path):
    bogus = tmp_path / "data.txt"  # not Parquet, and not named .csv (a .csv is converted first)
    bogus.write_text("a,b,y\n1,2,0\n")
    with pytest.raises(tabjob.InvalidDataset) as refused:
        client.upload(bogus)
    assert refused.value.code == "dataset.not_parquet" and refused.value.hint
    assert refused.value.dataset.state == "invalid"
    kept = client.upload(bogus, raise_on_invalid=False)
    assert kept.state == "invalid" and kept.problem.code == "dataset.not_parquet"


def test_a_missing_file_or_a_folder_is_refused_before_anything_is_created(client, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet"):
        client.upload(tmp_path / "nope.parquet")
    with pytest.raises(IsADirectoryError, match="folder"):
        client.upload(tmp_path)
    assert len(client.datasets()) == 0


def test_fit_wait_predict_download_into_a_folder_and_read(client, small_worker, seed_files, tmp_path):
    train = client.upload(seed_files["train"])
    fit = client.fit(train.id, params={"max_iter": 20})
    assert isinstance(fit, tabjob.Job) and fit.kind == "fit" and fit.status in ("queued", "started", "finished")
    seen: list[tabjob.JobEvent] = []
    model = client.wait(fit.id, poll_s=0.1, on_update=lambda job, events: seen.extend(events))
    assert model.status == "finished" and model.ended and model.result["classes"] == [0, 1]
    assert seen[0].type == "queued" and seen[-1].type == "finished"
    assert [e.seq for e in seen] == sorted({e.seq for e in seen})  # each event once, in order

    test = client.upload(seed_files["test"])
    pred = client.wait(client.predict(test.id, model.id).id, poll_s=0.1)
    saved = client.download(pred.id, tmp_path)
    assert saved == tmp_path / f"{pred.id}.parquet"
    assert pq.read_table(saved).num_rows == 1000 and not list(tmp_path.glob("*.part"))
    named = client.download(pred.id, tmp_path / "preds.parquet")
    assert pq.read_table(named).equals(pq.read_table(saved))
    assert client.read_result(pred.id).column_names == ["y", "proba_0", "proba_1"]  # the target's name, classes

    assert [j.id for j in client.jobs(kind="fit")] == [model.id]
    first = client.jobs(limit=1)
    assert [j.id for j in first] == [pred.id] and first.next_cursor
    assert [j.id for j in client.jobs(limit=1, cursor=first.next_cursor)] == [model.id]


def test_wait_raises_job_canceled_and_returns_it_when_asked_not_to_raise(client, seed_files):
    train = client.upload(seed_files["train"])
    job = client.fit(train.id, lane="large")  # no gpu worker in this test: it stays queued
    assert job.queue is not None and job.queue.position >= 1 and job.queue.reason
    with pytest.raises(tabjob.WaitTimeout) as timed_out:
        client.wait(job.id, timeout_s=0.2, poll_s=0.05)
    assert timed_out.value.job.status == "queued" and timed_out.value.retryable

    canceled = client.cancel(job.id)
    assert canceled.status == "canceled"  # the state after the cancel, not before
    with pytest.raises(tabjob.JobCanceled) as ended:
        client.wait(job.id)
    assert ended.value.job.status == "canceled" and job.id in str(ended.value)
    assert client.wait(job.id, raise_on_failure=False).status == "canceled"


def test_wait_raises_job_failed_with_the_jobs_error(client, api, workers, seed_files):
    created = client.create_dataset("swap")
    httpx.put(created.upload_url, content=seed_files["train"].read_bytes()).raise_for_status()
    job = client.fit(created.id, lane="large")
    # Other bytes replace the dataset before a worker takes the job: the worker refuses it.
    httpx.put(created.upload_url, content=seed_files["train_without_y"].read_bytes()).raise_for_status()
    workers.start("large")
    with pytest.raises(tabjob.JobFailed) as failed:
        client.wait(job.id, poll_s=0.1, timeout_s=120)
    assert failed.value.job.error.code == "dataset.changed"
    assert "dataset.changed" in str(failed.value)
    assert client.wait(job.id, raise_on_failure=False).status == "failed"


def test_api_errors_carry_status_code_hint_and_retryable(client, free_tcp_port):
    with pytest.raises(tabjob.ApiError) as missing:
        client.job("job_none")
    assert (missing.value.status, missing.value.code, missing.value.retryable) == (404, "job.not_found", False)
    with pytest.raises(tabjob.ApiError) as ended:
        client.fit("ds_none")
    assert ended.value.code == "dataset.not_found" and ended.value.to_dict()["status"] == 404
    with tabjob.Client(f"http://127.0.0.1:{free_tcp_port}", timeout_s=2) as nowhere:
        assert not nowhere.ready()
        with pytest.raises(tabjob.ApiError) as unreachable:
            nowhere.jobs()
    assert unreachable.value.status == 0 and unreachable.value.code == "client.unreachable"
    assert unreachable.value.retryable and "TABJOB_URL" in unreachable.value.hint


def test_every_public_method_and_result_type_has_a_docstring():
    public = [tabjob.Client, *(m for n, m in inspect.getmembers(tabjob.Client) if not n.startswith("_"))]
    undocumented = [getattr(m, "__name__", m) for m in public if callable(m) and not inspect.getdoc(m)]
    assert undocumented == []
    for name in tabjob.__all__:
        value = getattr(tabjob, name)
        assert not inspect.isclass(value) or value.__doc__, name


def test_models_listed_exported_with_their_schema_and_deleted(client, small_worker, seed_files, tmp_path):
    train = client.upload(seed_files["train"])
    fit = client.wait(client.fit(train.id, params={"max_iter": 20, "early_stopping": True}).id, poll_s=0.1)
    model = client.model(fit.id)
    assert isinstance(model, tabjob.Model) and model.target == "y" and model.classes == [0, 1]
    assert model.validation.split == "early_stopping" and model.validation.score > 0.5 and model.validation.rows == 300
    assert model.size_bytes > 0 and model.duration_s > 0 and model.features[0]["name"] == "col_0"
    assert [m.id for m in client.models()] == [model.id]

    saved = client.export_model(model.id, tmp_path)
    assert saved == tmp_path / f"{model.id}.pkl" and saved.stat().st_size == model.size_bytes
    schema = json.loads(saved.with_name(saved.name + ".schema.json").read_text())
    assert schema["target"] == "y" and [f["name"] for f in schema["features"]] == [f["name"] for f in model.features]

    client.delete_model(model.id)
    with pytest.raises(tabjob.ApiError) as gone:
        client.model(model.id)
    assert (gone.value.status, gone.value.code) == (410, "model.deleted")
    client.delete_dataset(train.id)
    with pytest.raises(tabjob.ApiError) as missing:
        client.dataset(train.id)
    assert missing.value.code == "dataset.not_found"


def test_a_fit_names_its_target(client, small_worker, seed_files, tmp_path):
    frame = pd.read_parquet(seed_files["train"]).rename(columns={"y": "label"})
    job = client.wait(client.fit(client.upload(frame).id, target="label", params={"max_iter": 5}).id, poll_s=0.1)
    assert job.result["target"] == "label" and client.model(job.id).target == "label"
