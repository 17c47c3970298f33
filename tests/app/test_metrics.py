"""Prometheus metrics move with real jobs on the real broker: a worker's /metrics (its health
port) counts the jobs it finished, failed and canceled, with their durations, queue waits and
dataset sizes; the API's /metrics counts jobs canceled while queued, request latency by route
template, and reads every lane's queue from Valkey. Workers log JSON lines carrying the job's
id, tenant, lane and step, and ``tabjob logs JOB`` shows them."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from jobs_testing import upload, wait_job
from observability_testing import samples, scrape, start_worker, stop, value
from typer.testing import CliRunner

from app.api.main import create_app
from app.core.auth import ApiKeys
from app.core.waiting import wait_until
from app.jobs.broker import redis_client

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow
LANE = "large"  # no shared test worker consumes it, so this module's worker sees every job


@pytest.fixture(scope="module")
def observed(settings, base_env, seed_files, tmp_path_factory) -> Any:
    """A worker on the large lane runs a fit that finishes, one that fails (time limit) and one
    canceled while running; a job queued behind it is canceled while queued."""
    tenant = "t-" + secrets.token_hex(5)
    token, _ = ApiKeys(client=redis_client(settings, decode=True)).create(tenant, "metrics test")
    data_dir = tmp_path_factory.mktemp("stack")
    log_path = data_dir / "logs" / f"worker-{LANE}.log"
    worker, port = start_worker(base_env, LANE, log_path, TABJOB_TIME_LIMIT_LARGE_S="4")
    try:
        with TestClient(create_app(settings), headers={"authorization": f"Bearer {token}"}) as api:
            api_before = api.get("/metrics").text
            worker_before = scrape(port)
            train = upload(api, seed_files["train"])
            # The jobs meant to outlast the time limit train on more rows: on the seed's file,
            # 10,000 rounds of 255 leaves took 3.3 s on a 2-vCPU VM with compiled bytecode, under
            # the 4 s limit, and finished. Here one round costs milliseconds, so they cannot.
            rng = np.random.default_rng(7)
            big = pd.DataFrame(rng.normal(size=(20_000, 10)), columns=[f"c{i}" for i in range(10)])
            big["y"] = (big["c0"] + rng.normal(size=len(big)) > 0).astype(int)
            big.to_parquet(data_dir / "big.parquet", index=False)
            long_data = upload(api, data_dir / "big.parquet")

            def submit(lane: str, dataset: str = train, **params: Any) -> str:
                body = {"kind": "fit", "dataset_id": dataset, "lane": lane, "params": params}
                response = api.post("/v1/jobs", json=body)
                assert response.status_code == 202, response.text
                return response.json()["id"]

            finished = wait_job(api, submit(LANE, max_iter=10))
            slow = {"max_iter": 10_000, "early_stopping": False, "max_leaf_nodes": 255}
            failed = wait_job(api, submit(LANE, long_data, **slow, random_state=1))
            running = submit(LANE, long_data, **slow, random_state=2)
            wait_until(lambda: api.get(f"/v1/jobs/{running}").json()["status"] == "started", what="start", timeout_s=60)
            while_running = api.get("/v1/overview").json()
            # The start is logged right after the record says started; wait for that line.
            log_while_running = wait_until(
                lambda: _text_once_it_names(log_path, running), what="the start's log line", timeout_s=30
            )
            # Behind the running job on the lane's one worker: it waits (hgb never goes to the gpu lane).
            queued = submit(LANE, max_iter=11)
            api.post(f"/v1/jobs/{queued}/cancel")
            api.post(f"/v1/jobs/{running}/cancel")
            canceled = wait_job(api, running)
            yield {
                "jobs": {"finished": finished, "failed": failed, "canceled": canceled},
                "queued_canceled": api.get(f"/v1/jobs/{queued}").json(),
                "worker_before": worker_before,
                "worker_after": scrape(port),
                "api_before": api_before,
                "api_after": api.get("/metrics").text,
                "overview": api.get("/v1/overview").json(),
                "while_running": (running, while_running),
                "log_while_running": log_while_running,
                "tenant": tenant,
                "data_dir": data_dir,
                "log_path": log_path,
            }
    finally:
        stop(worker)


def _text_once_it_names(path: Path, job_id: str) -> str | None:
    text = path.read_text()
    return text if f'"job_id": "{job_id}"' in text else None


def test_the_three_jobs_ended_as_planned(observed):
    jobs = observed["jobs"]
    assert [jobs[s]["status"] for s in ("finished", "failed", "canceled")] == ["finished", "failed", "canceled"]
    assert jobs["failed"]["error"]["code"] == "job.timeout"
    assert observed["queued_canceled"]["status"] == "canceled"


def test_worker_counts_jobs_by_final_status_and_failures_by_code(observed):
    before, after = observed["worker_before"], observed["worker_after"]
    labels = {"kind": "fit", "lane": LANE, "model": "hgb"}
    for status in ("finished", "failed", "canceled"):
        assert value(before, "tabjob_jobs_total", status=status, **labels) == 0
        assert value(after, "tabjob_jobs_total", status=status, **labels) == 1, status
    assert value(after, "tabjob_job_failures_total", lane=LANE, kind="fit", code="job.timeout") == 1
    assert value(after, "tabjob_job_failures_total") == 1


def test_worker_histograms_cover_each_job(observed):
    after = observed["worker_after"]
    assert value(after, "tabjob_job_duration_seconds_count", lane=LANE) == 3
    # The failed job ran until its 4 s limit: its duration is at least that.
    assert value(after, "tabjob_job_duration_seconds_bucket", lane=LANE, status="failed", le="2.5") == 0
    assert value(after, "tabjob_job_duration_seconds_bucket", lane=LANE, status="failed", le="+Inf") == 1
    assert value(after, "tabjob_job_queue_wait_seconds_count", lane=LANE) == 3
    assert value(after, "tabjob_job_dataset_bytes_count", lane=LANE, kind="fit") == 3
    size = observed["jobs"]["finished"]["result"]["rows"]  # the training set: 3000 rows, some kB
    assert size == 3000
    assert 3 * 10_000 < value(after, "tabjob_job_dataset_bytes_sum", lane=LANE) < 3 * 10_000_000
    assert value(after, "tabjob_worker_busy", lane=LANE) == 0


def test_api_counts_jobs_canceled_while_queued(observed):
    labels = {"kind": "fit", "lane": LANE, "status": "canceled"}
    grew = value(observed["api_after"], "tabjob_jobs_total", **labels) - value(
        observed["api_before"], "tabjob_jobs_total", **labels
    )
    assert grew == 1


def test_api_request_latency_is_labelled_by_route_template_never_by_id(observed):
    after = observed["api_after"]
    route = "/v1/jobs/{job_id}"
    assert value(after, "tabjob_http_request_duration_seconds_count", method="GET", route=route, status="200") >= 1
    assert value(after, "tabjob_http_request_duration_seconds_count", method="POST", route="/v1/jobs") >= 4
    for _, labels, _ in samples(after):
        assert not any(re.search(r"(job|ds)_[0-9a-f]{20}", v) for v in labels.values()), labels


def test_api_reads_queue_depth_and_workers_from_valkey(api, broker_db):
    # Given a message on the gpu lane's queue and a live worker heartbeat there
    broker_db.hset("dramatiq:gpu.msgs", "m-metrics-test", "{}")
    try:
        text = api.get("/metrics").text
        assert value(text, "tabjob_broker_up") == 1
        assert value(text, "tabjob_queue_messages", lane="gpu") >= 1
        for lane in ("small", "large", "gpu"):
            for name in ("tabjob_jobs_queued", "tabjob_jobs_running", "tabjob_oldest_queued_job_age_seconds"):
                assert any(n == name and ls == {"lane": lane} for n, ls, _ in samples(text)), (name, lane)
            assert {ls["state"] for n, ls, _ in samples(text) if n == "tabjob_workers" and ls["lane"] == lane} == {
                "busy",
                "idle",
            }
    finally:
        broker_db.hdel("dramatiq:gpu.msgs", "m-metrics-test")


def test_failures_reach_the_overview_grouped_by_code(observed):
    groups = {g["code"]: g for g in observed["overview"]["failures"]}
    group = groups["job.timeout"]
    assert observed["jobs"]["failed"]["id"] in group["job_ids"]
    assert group["hint"] and group["lanes"] == [LANE]


def test_the_overview_shows_the_running_job_and_the_worker_running_it(observed):
    job_id, view = observed["while_running"]
    running = {job["id"]: job for job in view["running"]}
    assert running[job_id]["lane"] == LANE and running[job_id]["phase"]
    worker = running[job_id]["worker"]
    assert {"id": worker, "lane": LANE, "busy": True, "job_id": job_id}.items() <= next(
        w for w in view["workers"] if w["id"] == worker
    ).items()
    lane = next(lane for lane in view["lanes"] if lane["lane"] == LANE)
    assert lane["running"] >= 1 and lane["busy_workers"] >= 1


def test_worker_logs_are_json_lines_with_the_job_context(observed):
    job = observed["jobs"]["finished"]
    lines = [json.loads(line) for line in observed["log_path"].read_text().splitlines() if line.startswith("{")]
    about = [line for line in lines if line.get("job_id") == job["id"]]
    assert len(about) >= 2, lines[-20:]  # started, finished
    for line in about:
        assert line["tenant"] == observed["tenant"] and line["lane"] == LANE and line["step"] == "fit"
        assert line["process"] == f"worker-{LANE}" and line["ts"].endswith("Z")
    assert any("finished" in line["msg"] for line in about)


def test_a_job_start_is_logged_when_it_starts_not_when_it_ends(observed):
    job_id, _ = observed["while_running"]
    lines = [json.loads(line) for line in observed["log_while_running"].splitlines() if line.startswith("{")]
    mine = [line["msg"] for line in lines if line.get("job_id") == job_id]
    assert any(msg.startswith("job started (attempt 1)") for msg in mine), mine
    assert not any("canceled" in msg for msg in mine)


def test_tabjob_logs_prints_one_jobs_lines(observed):
    from tabjob.cli.main import app

    job = observed["jobs"]["failed"]
    result = CliRunner().invoke(app, ["logs", job["id"], "--data-dir", str(observed["data_dir"]), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines and all(line["job_id"] == job["id"] for line in lines)
    assert any("job.timeout" in line["msg"] for line in lines)
    other = CliRunner().invoke(app, ["logs", "job_" + "0" * 20, "--data-dir", str(observed["data_dir"])])
    assert other.exit_code == 1


def test_processes_sharing_a_port_merge_their_metrics_in_multiprocess_mode(tmp_path: Path):
    # Given two processes (as uvicorn --workers 2 forks) recording into one multiprocess directory
    script = textwrap.dedent(
        """
        import os, sys
        from app.core.domain import Job, JobStatus
        from app.observability import exposition, metrics
        for _ in range(2):
            if os.fork() == 0:
                metrics.HTTP_DURATION.labels("GET", "/v1/jobs/{job_id}", "200").observe(0.01)
                error = {"code": "dataset.missing_target", "message": "m", "hint": None, "retryable": False}
                metrics.record_ended(Job(id="job_1", tenant="t", kind="fit", lane="small",
                                         status=JobStatus.FAILED, error=error))
                os._exit(0)
            os.wait()
        sys.stdout.write(exposition.render()[0].decode())
        """
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    # Then a scrape of either answers for both
    assert value(out, "tabjob_http_request_duration_seconds_count", route="/v1/jobs/{job_id}") == 2
    assert value(out, "tabjob_jobs_total", status="failed", lane="small") == 2
    assert value(out, "tabjob_job_failures_total", code="dataset.missing_target") == 2
