"""Duration estimates from the history of finished jobs (issue 26): none before a job of its kind
finished, then a duration and an interval no wider than 4x its low end, scaled by work, from the
job's own lane when it has samples; shown at submission."""

from __future__ import annotations

import math
import secrets

import pytest
from jobs_testing import upload, wait_job

from app.core.domain import Job, JobStatus
from app.jobs.broker import redis_client
from app.state import Keys
from app.usecases import estimates


def job(
    rows: int, *, lane: str = "small", max_iter: int = 100, took_s: float | None = None, cols: int = 10,
    ended_at: float | None = None, load: dict[str, float] | None = None,
) -> Job:  # fmt: skip
    ended = {}
    if took_s:
        end = ended_at or 1000.0 + took_s
        ended = {"status": JobStatus.FINISHED, "started_at": end - took_s, "ended_at": end}
    return Job(
        id="job_" + secrets.token_hex(10), tenant="t", kind="fit", lane=lane,
        status=ended.pop("status", JobStatus.QUEUED), cost_cells=rows * cols, dataset_rows=rows,
        params={"max_iter": max_iter}, result={"load": load} if load else None, **ended,
    )  # fmt: skip


@pytest.fixture
def store(settings):
    return redis_client(settings, decode=True), Keys(prefix="est-" + secrets.token_hex(4))


def test_no_estimate_before_a_job_of_its_kind_finished(store):
    r, keys = store
    assert estimates.estimate(r, keys, job(1000)) is None
    estimates.record(r, keys, job(1000, took_s=2.0))
    assert estimates.estimate(r, keys, job(1000))["duration_s"] == pytest.approx(2.0)


def test_the_estimate_scales_with_work_and_its_interval_stays_within_4x_low(store):
    r, keys = store
    for rows, took in ((1000, 1.0), (2000, 2.1), (4000, 3.9), (8000, 8.2), (16000, 15.5)):
        estimates.record(r, keys, job(rows, took_s=took))
    guess = estimates.estimate(r, keys, job(32000))
    assert 25 < guess["duration_s"] < 40
    assert guess["low_s"] <= guess["duration_s"] <= guess["high_s"]
    assert guess["high_s"] - guess["low_s"] <= 4 * guess["low_s"]
    assert guess["basis"].startswith("the 5 nearest") and "finished hgb fit jobs on the small lane" in guess["basis"]
    # Twice the iterations, twice the work.
    assert estimates.estimate(r, keys, job(16000, max_iter=200))["duration_s"] == pytest.approx(
        guess["duration_s"], rel=0.05
    )


def test_with_enough_history_a_regression_learns_how_rows_and_iterations_each_cost(store):
    r, keys = store

    # Run time grows as sqrt(cells) x iterations^0.8 here: not proportional to their product.
    def took(rows: int, max_iter: int) -> float:
        return 0.001 * (rows * 10) ** 0.5 * max_iter**0.8

    for rows in (1000, 4000, 16000):
        for max_iter in (20, 100):
            estimates.record(r, keys, job(rows, max_iter=max_iter, took_s=took(rows, max_iter)))
    guess = estimates.estimate(r, keys, job(64000, max_iter=50))
    assert guess["duration_s"] == pytest.approx(took(64000, 50), rel=0.01)
    assert guess["basis"].startswith("least squares") and "over 6 finished" in guess["basis"]
    assert guess["high_s"] / guess["duration_s"] == pytest.approx(math.exp(estimates.MIN_HALF_SPAN), rel=0.01)


def test_small_jobs_that_are_mostly_a_fixed_cost_are_estimated_with_it(store):
    r, keys = store

    # A toy fit's run time is mostly the job's fixed cost (download, bounds, upload), plus its work:
    # a power law would bend that into one slope and miss both ends.
    def took(rows: int, max_iter: int) -> float:
        return 0.08 + 2e-7 * rows * 10 * max_iter

    for rows, max_iter in ((300, 20), (1000, 100), (3000, 50), (10000, 20), (300, 100), (10000, 100), (3000, 20)):
        wobble = 1.0 + 0.03 * math.sin(rows + max_iter)  # a few percent of noise, as on a real machine
        estimates.record(r, keys, job(rows, max_iter=max_iter, took_s=took(rows, max_iter) * wobble))
    for rows, max_iter in ((500, 50), (30000, 100), (1000, 20)):
        guess = estimates.estimate(r, keys, job(rows, max_iter=max_iter))
        assert guess["low_s"] <= took(rows, max_iter) <= guess["high_s"], (rows, max_iter, guess)
        assert guess["duration_s"] == pytest.approx(took(rows, max_iter), rel=0.1)
        assert "overhead" in guess["basis"]


def test_the_jobs_own_lane_is_preferred(store):
    r, keys = store
    estimates.record(r, keys, job(1000, lane="small", took_s=1.0))
    estimates.record(r, keys, job(1000, lane="large", took_s=10.0))
    assert estimates.estimate(r, keys, job(1000, lane="large"))["duration_s"] == pytest.approx(10.0)
    assert "all lanes" in estimates.estimate(r, keys, job(1000, lane="gpu"))["basis"]


def test_runs_measured_under_load_teach_the_unloaded_time_and_the_load_of_the_moment_stretches_it(store):
    r, keys = store
    # A history run three at a time on two cores: each toy waited a third of its run for a CPU,
    # and some for cores (the full bench's throughput section before its held-out fits)
    for rows in (1000, 2000, 4000, 8000, 16000, 1000, 4000):
        unloaded = 0.1 + rows * 1e-5
        estimates.record(r, keys, job(rows, took_s=unloaded * 1.5 + 0.2, load={"runqueue_wait_s": unloaded * 0.5,
                                                                               "cores_wait_s": 0.2}))  # fmt: skip
    # Then a job on an idle machine (those ended long ago) is estimated at its unloaded time
    guess = estimates.estimate(r, keys, job(3000))
    assert guess["duration_s"] == pytest.approx(0.13, rel=0.05) and "current load" not in guess["basis"]
    # And while jobs ending now run twice as long as unloaded, the estimate says so and doubles
    now = 50_000.0
    for rows in (1000, 8000):
        unloaded = 0.1 + rows * 1e-5
        estimates.record(r, keys, job(rows, took_s=unloaded * 2, ended_at=now - 30, load={"runqueue_wait_s": unloaded}))
    loaded = estimates.estimate(r, keys, job(3000), now=now)
    assert loaded["duration_s"] == pytest.approx(2 * guess["duration_s"], rel=0.05)
    assert "x2.00 for the current load" in loaded["basis"]
    later = estimates.estimate(r, keys, job(3000), now=now + estimates.RECENT_S + 1)
    assert later["duration_s"] == pytest.approx(guess["duration_s"], rel=0.05)
    # Jobs that ended just now after waiting for cores (a burst) but ran unhindered once they had
    # them say nothing of how fast the next runs: no stretch
    after_burst = now + 10 * estimates.RECENT_S
    for rows in (1000, 8000, 16000):
        unloaded = 0.1 + rows * 1e-5
        waited = {"cores_wait_s": 5.0}
        estimates.record(r, keys, job(rows, took_s=unloaded + 5.0, ended_at=after_burst - 5, load=waited))
    assert "current load" not in estimates.estimate(r, keys, job(3000), now=after_burst)["basis"]


def test_the_load_of_the_moment_is_what_the_latest_jobs_ran_under(store):
    r, keys = store
    now = 80_000.0
    # 200 toy fits three at a time on two cores ended within the minute, each 1.5x its unloaded
    # time; then fits one at a time on the idle machine, the latest ones
    for i in range(200):
        estimates.record(r, keys, job(1000, took_s=0.15, ended_at=now - 40 + i * 0.1, load={"runqueue_wait_s": 0.05}))
    idle = estimates.estimate(r, keys, job(1000), now=now)
    assert "x1.50 for the current load" in idle["basis"]
    for i in range(estimates.RECENT_JOBS):
        estimates.record(r, keys, job(1000, took_s=0.1, ended_at=now - 5 + i))
    assert "current load" not in estimates.estimate(r, keys, job(1000), now=now)["basis"]


def test_a_fit_shows_its_estimate_at_submission_once_one_like_it_finished(api, small_worker, seed_files):
    dataset = upload(api, seed_files["train"])
    params = {"max_iter": 5, "random_state": 11}
    first = api.post("/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "lane": "small", "params": params})
    finished = wait_job(api, first.json()["id"])
    assert finished["status"] == "finished"
    # The worker kept the load it ran under for the estimates, and the owner does not see it
    load = api.app.state.services.state.jobs.get(finished["id"]).result["load"]
    assert load["cores_wait_s"] >= 0 and load["runqueue_wait_s"] >= 0, load
    assert "load" not in finished["result"]
    second = api.post(
        "/v1/jobs",
        json={"kind": "fit", "dataset_id": dataset, "lane": "small", "params": {**params, "random_state": 12}},
    ).json()
    estimate = second["estimate"]
    assert estimate is not None and estimate["low_s"] <= estimate["duration_s"] <= estimate["high_s"]
    assert "small lane" in estimate["basis"]
    assert api.get(f"/v1/jobs/{second['id']}").json()["estimate"] == estimate
    wait_job(api, second["id"])
    # A predict's result is shown whole, less the load the worker kept
    predict = api.post("/v1/jobs", json={"kind": "predict", "dataset_id": dataset, "model_id": finished["id"]})
    predicted = wait_job(api, predict.json()["id"])
    assert predicted["status"] == "finished" and predicted["result"] and "load" not in predicted["result"]
    assert api.app.state.services.state.jobs.get(predicted["id"]).result["load"]["runqueue_wait_s"] >= 0
