"""Job logs kept in the object store (issue 26, item 3): a job's lines from its worker and its job
process are written under its tenant's prefix as it runs, survive its worker, are capped, and are
served by ``GET /v1/jobs/{id}/logs`` (a page, or followed as NDJSON until the job ends)."""

from __future__ import annotations

import json
import signal
import threading

import httpx
from jobs_testing import upload, wait_for, wait_job

from app.core.storage import manifest_key
from app.job_logs.chunks import list_chunks, logs_prefix

FAST_FLUSH = {"TABJOB_JOB_LOG_FLUSH_S": "0.3"}


def _fit(api, seed_files, lane: str = "small", **params) -> dict:
    dataset = upload(api, seed_files["train"])
    body = {"kind": "fit", "dataset_id": dataset, "params": {"max_iter": 5, **params}, "lane": lane}
    response = api.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def _lines(api, job_id: str, **params) -> dict:
    response = api.get(f"/v1/jobs/{job_id}/logs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_fits_log_has_the_worker_and_job_process_lines_after_it_ended(api, small_worker, seed_files):
    # Given a fit that ran to its end on a real worker
    job = _fit(api, seed_files)
    assert wait_job(api, job["id"])["status"] == "finished"

    # When its log is read (the attempt's last chunk is written right after the end)
    page = wait_for(lambda: (p := _lines(api, job["id"]))["complete"] and p, 30)

    # Then it has the worker's lines (the start, the end) and the job process's (its phases)
    items = page["items"]
    messages = [i["message"] for i in items]
    assert any("job started" in m for m in messages), messages
    assert {i["source"] for i in items} == {"worker", "job"}
    assert any(i["source"] == "job" and "training" in i["message"] for i in items), messages
    assert {i["attempt"] for i in items} == {1}
    assert all(i["time"] and i["level"] and i["step"] == "fit" for i in items)
    # A cursor gives only what follows: the second half of the log from the middle line's cursor.
    middle = len(items) // 2
    after = _lines(api, job["id"], since=items[middle]["cursor"])
    assert [i["message"] for i in after["items"]] == messages[middle + 1 :]
    assert _lines(api, job["id"], since=page["next_since"])["items"] == []
    assert [i["message"] for i in _lines(api, job["id"], limit=2)["items"]] == messages[:2]
    # The chunks are under the tenant's prefix, beside the job's manifest.
    store = api.app.state.services.store
    tenant = api.app.state.services.state.jobs.get(job["id"]).tenant
    assert store.stat(manifest_key(tenant, job["id"])) is not None
    assert list_chunks(store, tenant, job["id"])[-1].key.startswith(logs_prefix(tenant, job["id"]))


def test_another_tenant_gets_404_and_a_bad_cursor_422(api, small_worker, seed_files, settings, new_tenant):
    job = _fit(api, seed_files)
    wait_job(api, job["id"])
    _, other_key = new_tenant()
    for follow in ("false", "true"):
        answer = api.get(
            f"/v1/jobs/{job['id']}/logs", params={"follow": follow}, headers={"authorization": f"Bearer {other_key}"}
        )
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "job.not_found"
    bad = api.get(f"/v1/jobs/{job['id']}/logs", params={"since": "../../x"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "request.bad_cursor"
    # An id that is not one never reaches a key of the store (the manifest's included).
    for odd in ("job_..%2F..%2Fx", "job_" + "0" * 20 + ".json", "..%2Fdatasets"):
        assert api.get(f"/v1/jobs/{odd}/logs").status_code == 404


def test_follow_streams_a_running_jobs_lines_and_ends_with_the_job(
    live_api, workers, seed_files, new_tenant, tmp_path, api
):
    # Given a job held running by its job process on a real worker
    workers.start("large", TABJOB_TEST_HOLD_JOBS=str(tmp_path), **FAST_FLUSH)
    _, key = new_tenant()
    client = httpx.Client(base_url=live_api, headers={"authorization": f"Bearer {key}"}, timeout=60)
    api.headers["authorization"] = f"Bearer {key}"
    job = _fit(api, seed_files, lane="large")
    wait_for(lambda: list(tmp_path.glob("*.running")), 120)

    # When a reader follows its log over a real HTTP connection
    received: list[dict] = []
    ended = threading.Event()

    def read() -> None:
        with client.stream("GET", f"/v1/jobs/{job['id']}/logs", params={"follow": "true"}) as response:
            assert response.headers["content-type"].startswith("application/x-ndjson")
            received.extend(json.loads(line) for line in response.iter_lines() if line.strip())
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Then lines come while the job still runs (the worker's start line, flushed within a second) ...
    wait_for(lambda: any("job started" in line["message"] for line in received), 30)
    assert api.get(f"/v1/jobs/{job['id']}").json()["status"] == "started" and not ended.is_set()
    # ... and the stream ends by itself once the job has ended, with its last lines.
    (tmp_path / "release").touch()
    assert wait_job(api, job["id"], timeout_s=120)["status"] == "finished"
    wait_for(ended.is_set, 60)
    assert any(line["source"] == "job" for line in received)
    assert any("finished" in line["message"] for line in received), [line["message"] for line in received]
    client.close()


def test_a_killed_workers_lines_stay_readable_and_the_retry_adds_its_own(api, workers, seed_files, tmp_path):
    # Given a job running on a worker that writes its log every 0.3 s
    first = workers.start("large", TABJOB_TEST_HOLD_JOBS=str(tmp_path), **FAST_FLUSH)
    job = _fit(api, seed_files, lane="large")
    wait_for(lambda: list(tmp_path.glob("*.running")), 120)
    wait_for(lambda: _lines(api, job["id"])["items"], 30)

    # When the worker is killed without warning (its pod deleted)
    first.send_signal(signal.SIGKILL)
    first.wait()

    # Then what it wrote is still there, and no longer growing nor complete
    before = _lines(api, job["id"])
    assert before["items"] and {i["attempt"] for i in before["items"]} == {1}
    assert not before["complete"]
    # And the retry on another worker adds its own attempt's lines after them
    (tmp_path / "release").touch()
    workers.start("large", **FAST_FLUSH)
    assert wait_job(api, job["id"], timeout_s=180)["attempts"] == 2
    after = wait_for(lambda: (p := _lines(api, job["id"]))["complete"] and p, 30)
    attempts = [i["attempt"] for i in after["items"]]
    assert attempts[: len(before["items"])] == [1] * len(before["items"]) and attempts[-1] == 2
    assert sorted(attempts) == attempts


def test_a_jobs_log_is_capped_with_a_truncated_line(api, workers, seed_files):
    # Given a worker keeping at most 2 KiB of log per job, and a job that prints 300 lines
    workers.start(
        "large", TABJOB_JOB_LOG_MAX_BYTES="2048", TABJOB_JOB_LOG_LINES_PER_S="10000", TABJOB_TEST_PRINT_LINES="300",
        **FAST_FLUSH,
    )  # fmt: skip
    job = _fit(api, seed_files, lane="large")
    assert wait_job(api, job["id"], timeout_s=120)["status"] == "finished"
    page = wait_for(lambda: (p := _lines(api, job["id"]))["complete"] and p, 30)

    # Then the store holds no more than the cap (the notices included) ...
    services = api.app.state.services
    tenant = services.state.jobs.get(job["id"]).tenant
    assert sum(c.size for c in list_chunks(services.store, tenant, job["id"])) <= 2048
    # ... the first printed lines are there, read from the job process's stdout ...
    printed = [i for i in page["items"] if i["message"].startswith("test line")]
    assert printed and printed[0]["message"].startswith("test line 0 ") and printed[0]["source"] == "job"
    assert printed[0]["logger"] == "tabjob.job.stdout" and len(printed) < 300
    # ... and a line says the log was cut, and at the end how much was dropped.
    truncated = [i for i in page["items"] if i["truncated"]]
    assert len(truncated) == 2 and "TABJOB_JOB_LOG_MAX_BYTES" in truncated[0]["message"]
    assert "were dropped" in truncated[-1]["message"] and truncated[-1] == page["items"][-1]


def test_a_job_process_printing_in_a_loop_is_rate_limited(api, workers, seed_files):
    # Given a job process allowed 20 lines a second, and a job that prints 300 at once
    workers.start("large", TABJOB_JOB_LOG_LINES_PER_S="20", TABJOB_TEST_PRINT_LINES="300", **FAST_FLUSH)
    job = _fit(api, seed_files, lane="large")
    assert wait_job(api, job["id"], timeout_s=120)["status"] == "finished"
    page = wait_for(lambda: (p := _lines(api, job["id"]))["complete"] and p, 30)

    # Then only a burst of them is kept, one line says how many were dropped, and the job's own
    # lines after it still come through
    messages = [i["message"] for i in page["items"]]
    printed = [m for m in messages if m.startswith("test line")]
    assert 0 < len(printed) < 300
    assert any("dropped: more than 20 lines a second" in m for m in messages), messages
    assert any("job finished" in m for m in messages)
