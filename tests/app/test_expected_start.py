"""The expected start of waiting jobs (issue 26, item 4): from the jobs ahead on the lane and the
running ones, each taking its duration estimate, on the lane's live workers; with no worker on the
lane, the reason instead. On a broker database of this module's own (its estimates are seeded, and
the session's shared small-lane worker must not take its jobs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from jobs_testing import upload, wait_for, wait_job
from rich.console import Console

import tabjob
from app.state import Keys
from app.usecases.expected_start import LaneLoad, expected_start
from tabjob.cli.show import job_summary
from tests.conftest import Workers, make_settings, tenant_maker

FIT = {"kind": "fit", "params": {"max_iter": 5}, "lane": "large"}
LONG_S = 600.0


@pytest.fixture(scope="module")
def own_env(base_env: dict[str, str], settings: Any) -> dict[str, str]:
    """The session's servers (``settings`` has made the bucket) with a broker database of its own."""
    env = {**base_env, "TABJOB_REDIS_URL": base_env["TABJOB_REDIS_URL"].rsplit("/", 1)[0] + "/4"}
    client = redis.Redis.from_url(env["TABJOB_REDIS_URL"], password=env["TABJOB_REDIS_PASSWORD"])
    client.flushdb()  # this module's database: nothing of an earlier run waits or counts
    client.close()
    return env


@pytest.fixture
def own_api(own_env: dict[str, str]) -> Iterator[TestClient]:
    from app.api.main import create_app

    settings = make_settings(own_env)
    _, token = tenant_maker(settings)()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {token}"}) as client:
        yield client


def _at(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def test_with_no_worker_on_the_lane_the_reason_is_said(own_api, seed_files):
    dataset = upload(own_api, seed_files["train"])
    submitted = own_api.post("/v1/jobs", json={**FIT, "dataset_id": dataset})
    assert submitted.status_code == 202, submitted.text
    job = own_api.get(f"/v1/jobs/{submitted.json()['id']}").json()
    expected = job["expected_start"]
    assert job["status"] == "queued" and submitted.json()["expected_start"]["workers"] == 0
    assert expected["at"] is None and expected["in_s"] is None and expected["workers"] == 0
    assert "No worker is running on the large lane" in expected["reason"]
    shown = _plain(job_summary(tabjob.Job.from_api(job)))
    assert "expected start: unknown: No worker is running on the large lane" in shown
    own_api.post(f"/v1/jobs/{job['id']}/cancel")


@pytest.mark.slow  # starts a worker of its own (on this module's database)
def test_jobs_queued_behind_a_busy_worker_start_when_the_jobs_ahead_should_end(own_api, own_env, seed_files, tmp_path):
    # Given estimates of long fits, and one worker on the lane held busy with a first fit
    settings = make_settings(own_env)
    r = redis.Redis.from_url(settings.redis_url, password=settings.redis_password.get_secret_value())
    sample = {"work": 3000 * 21 * 5, "cells": 3000 * 21, "iterations": 5, "lane": "large", "duration_s": LONG_S}
    r.lpush(Keys().estimates("fit", "hgb"), json.dumps(sample))
    workers = Workers(own_env)
    try:
        workers.start("large", TABJOB_TEST_HOLD_JOBS=str(tmp_path))
        dataset = upload(own_api, seed_files["train"])
        first = own_api.post("/v1/jobs", json={**FIT, "dataset_id": dataset}).json()
        wait_for(lambda: list(tmp_path.glob("*.running")), 120)
        running = own_api.get(f"/v1/jobs/{first['id']}").json()
        assert running["status"] == "started" and running["expected_start"] is None

        # When two more fits queue behind it (other parameters: an identical fit is deduplicated)
        second = own_api.post("/v1/jobs", json={**FIT, "dataset_id": dataset, "params": {"max_iter": 6}}).json()
        third = own_api.post("/v1/jobs", json={**FIT, "dataset_id": dataset, "params": {"max_iter": 7}}).json()
        b = own_api.get(f"/v1/jobs/{second['id']}").json()
        c = own_api.get(f"/v1/jobs/{third['id']}").json()

        # Then the second should start when the first should end (its start plus its estimate) ...
        first_end = _at(running["started_at"]) + running["estimate"]["duration_s"]
        expected = b["expected_start"]
        assert expected["workers"] == 1 and expected["jobs_ahead"] == 0 and expected["unestimated"] == 0
        assert _at(expected["at"]) > _at(b["created_at"])
        assert _at(expected["at"]) == pytest.approx(first_end, abs=1.0)
        assert 0 < expected["in_s"] <= running["estimate"]["duration_s"]  # the first has run a while
        assert _at(expected["low"]) == pytest.approx(_at(running["started_at"]) + running["estimate"]["low_s"], abs=1)
        assert _at(expected["high"]) == pytest.approx(_at(running["started_at"]) + running["estimate"]["high_s"], abs=1)
        # ... and the third after the second's own estimate on top
        assert c["expected_start"]["jobs_ahead"] == 1
        assert _at(c["expected_start"]["at"]) == pytest.approx(first_end + b["estimate"]["duration_s"], abs=1.0)
        # The CLI's status says it, as the client reads it.
        shown = _plain(job_summary(tabjob.Client(http=own_api).job(second["id"])))
        assert "expected start " in shown and "between" in shown
    finally:
        for job_id in [j["id"] for j in (locals().get("second"), locals().get("third")) if j]:
            own_api.post(f"/v1/jobs/{job_id}/cancel")
        (tmp_path / "release").touch()
        if "first" in locals():
            wait_job(own_api, first["id"], timeout_s=120)
        workers.stop_all()
        r.delete(Keys().estimates("fit", "hgb"))


def _plain(markup: str) -> str:
    console = Console(width=200, no_color=True, highlight=False)
    with console.capture() as captured:
        console.print(markup)
    return captured.get()


def _job(lane: str = "small") -> Any:
    from app.core.domain import Job

    return Job(id="job_" + "a" * 20, kind="fit", tenant="t", lane=lane, status="queued", dataset_id="ds_x",
               created_at=0.0)  # fmt: skip


def _e(duration: float) -> dict[str, float]:
    return {"duration_s": duration, "low_s": duration / 2, "high_s": duration * 2}


def test_the_jobs_ahead_go_to_whichever_worker_frees_first():
    # Two workers: one ends in 10 s, one in 100 s; three jobs ahead of 30 s each.
    load = LaneLoad(workers=2, running=[(90.0, _e(100.0)), (0.0, _e(100.0))], ahead=[_e(30.0)] * 3)
    shown = expected_start(_job(), load, now=1000.0)
    # 10 -> 40 -> 70 on the first worker; the second frees at 100: the job starts at 100.
    assert shown["in_s"] == pytest.approx(100.0) and shown["jobs_ahead"] == 3 and shown["reason"] is None
    assert _at(shown["at"].isoformat()) == pytest.approx(1100.0)


def test_an_idle_worker_starts_it_now_and_unknown_jobs_are_counted():
    load = LaneLoad(workers=3, running=[(5.0, None)], ahead=[None, _e(20.0)])
    shown = expected_start(_job(), load, now=50.0)
    assert shown["in_s"] == 0.0 and shown["unestimated"] == 2 and "no estimate yet" in shown["basis"]
    overdue = LaneLoad(workers=1, running=[(500.0, _e(100.0))], ahead=[])
    assert expected_start(_job(), overdue, now=50.0)["in_s"] == 0.0  # past its estimate: due any moment
    held = expected_start(_job(), overdue, now=50.0, tenant_at_limit=True)
    assert "your account already runs its most jobs at once" in held["basis"]
