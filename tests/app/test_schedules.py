"""Schedules on the real broker and store, with a clock the tests move: exactly one firing per
tick whatever the schedulers, forbid, catchup across an outage, a scheduler dying mid-firing,
failures as notices, and the API (create, list, read with runs, pause, resume, delete)."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime

import pytest
from jobs_testing import put_file, wait_for, wait_job
from registry_testing import quality_sets, upload_named

from app.core.errors import NotFound, UserError
from app.usecases.datasets import create_dataset
from app.usecases.jobs import cancel
from app.usecases.schedules import Scheduler, check_cron, create_schedule, last_tick, next_tick
from app.usecases.services import Services
from app.usecases.submission import JobRequest

# Ticks in 2031: the schedulers of workers other tests start (real time) never find them due.
MONDAY = datetime(2031, 1, 6, 6, 0, tzinfo=UTC).timestamp()


class Clock:
    """A clock the test moves: ``clock()`` is the time now, ``clock.at(t)`` sets it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def at(self, now: float) -> None:
        self.now = now


@pytest.fixture(scope="module")
def svc(settings):
    return Services.from_settings(settings)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    return quality_sets(tmp_path_factory.mktemp("quality"), rows=200)


@pytest.fixture
def tenant(svc, sets):
    name = "t-" + secrets.token_hex(5)
    _, url, *_ = create_dataset(svc, name, "sales")
    put_file(url, sets["good"])
    yield name
    for job in svc.state.jobs.list(name, limit=100, before=None):  # leave no queued job to other tests' workers
        if job.status.active:
            cancel(svc, name, job.id)


def schedule(svc, tenant, *, cron="* * * * *", now=MONDAY - 30, register_as="churn", **policy) -> dict:
    # The large lane has no worker in these tests: a fired job stays queued (active) until canceled.
    request = JobRequest("fit", "sales@latest", params={"max_iter": 5}, lane="large", register_as=register_as)
    policy = {"concurrency": "allow", "catchup": "last", **policy}
    return create_schedule(svc, tenant, cron=cron, timezone="UTC", request=request, webhook=None, by="key:test",
                           now=now, **policy)  # fmt: skip


def schedulers(svc, clock, count=2):
    lease = "lease-" + secrets.token_hex(4)
    return [Scheduler(svc, clock=clock, token=f"s{i}", lease=lease) for i in range(count)]


def test_cron_ticks_follow_the_time_zone_and_its_daylight_saving():
    paris_monday_6 = datetime(2031, 3, 31, 4, 0, tzinfo=UTC).timestamp()  # 06:00 CEST (after the change)
    assert next_tick("0 6 * * 1", "Europe/Paris", datetime(2031, 3, 29, tzinfo=UTC).timestamp()) == paris_monday_6
    assert last_tick("0 6 * * 1", "Europe/Paris", paris_monday_6) == paris_monday_6
    assert next_tick("0 6 * * 1", "UTC", MONDAY) == MONDAY + 7 * 86400
    bad = [
        ("0 6 * *", "UTC", "schedule.invalid_cron"),
        ("61 * * * *", "UTC", "schedule.invalid_cron"),
        ("0 0 30 2 *", "UTC", "schedule.invalid_cron"),
        ("0 6 * * 1", "Mars/Olympus", "schedule.invalid_timezone"),
    ]
    for cron, timezone, code in bad:
        with pytest.raises(UserError) as refused:
            check_cron(cron, timezone)
        assert refused.value.code == code


def test_each_tick_fires_exactly_once_with_two_schedulers_ticking_together(svc, tenant):
    # Given: an every-minute schedule of a plain fit and two schedulers (two replicas) on one clock
    sch = schedule(svc, tenant, register_as=None)
    clock = Clock(MONDAY)
    pair = schedulers(svc, clock)
    # When: both tick at once, many times, over five minutes
    for minute in range(5):
        clock.at(MONDAY + minute * 60 + 1)
        barrier = threading.Barrier(2)

        def tick(s: Scheduler, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            for _ in range(3):
                s.tick()

        threads = [threading.Thread(target=tick, args=(s,)) for s in pair]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # Then: one run and one job per tick (a run is never deduplicated onto an earlier identical fit)
    runs = svc.state.schedules.runs(sch["id"])
    assert [r["scheduled_for"] for r in runs] == [MONDAY + m * 60 for m in range(4, -1, -1)]
    assert all(r["status"] == "submitted" for r in runs)
    assert len({r["job_id"] for r in runs}) == 5
    assert len(svc.state.jobs.list(tenant, limit=50, before=None)) == 5


def test_the_tick_claim_is_a_compare_and_set_even_when_the_lease_fails(svc, tenant):
    # Two schedulers that both read the schedule as due (a lease that expired under a paused holder)
    sch = schedule(svc, tenant)
    expected = svc.state.schedules.raw_next_run_at(sch["id"])
    run = {"scheduled_for": MONDAY, "status": "firing"}
    wins = [svc.state.schedules.claim(sch["id"], expected, MONDAY + 60, run, now=MONDAY, firing=True)
            for _ in range(2)]  # fmt: skip
    assert wins == [True, False]


def test_forbid_skips_a_tick_while_the_previous_run_is_active(svc, tenant):
    sch = schedule(svc, tenant, concurrency="forbid")
    clock = Clock(MONDAY + 1)
    (scheduler,) = schedulers(svc, clock, 1)
    scheduler.tick()
    first = svc.state.schedules.runs(sch["id"])[0]
    assert first["status"] == "submitted"
    clock.at(MONDAY + 61)
    scheduler.tick()  # the first job is still queued: skipped, and recorded so
    skipped = svc.state.schedules.runs(sch["id"])[0]
    assert skipped["status"] == "skipped" and first["job_id"] in skipped["reason"]
    cancel(svc, tenant, first["job_id"])
    clock.at(MONDAY + 121)
    scheduler.tick()
    assert svc.state.schedules.runs(sch["id"])[0]["status"] == "submitted"


@pytest.mark.parametrize(("catchup", "status"), [("none", "missed"), ("last", "submitted")])
def test_after_an_outage_catchup_runs_the_last_missed_tick_or_none_and_never_the_earlier_ones(
    svc, tenant, catchup, status
):
    # Given: an hourly schedule that fired at 06:00, then three hours of outage
    sch = schedule(svc, tenant, cron="0 * * * *", catchup=catchup)
    clock = Clock(MONDAY + 2)
    (scheduler,) = schedulers(svc, clock, 1)
    scheduler.tick()
    # When: the schedulers are back at 09:20 (07:00, 08:00 and 09:00 were missed)
    clock.at(MONDAY + 3 * 3600 + 20 * 60)
    scheduler.tick()
    runs = svc.state.schedules.runs(sch["id"])
    # Then: one run for 09:00 (run or not as catchup says), counting 07:00 and 08:00 as never run
    assert [r["scheduled_for"] for r in runs] == [MONDAY + 3 * 3600, MONDAY]
    assert runs[0]["status"] == status and runs[0]["missed_before"] == 2
    assert (runs[0]["job_id"] is not None) is (catchup == "last")
    assert svc.state.schedules.get(sch["id"])["next_run_at"] == MONDAY + 4 * 3600
    # And: the next tick is on time again
    clock.at(MONDAY + 4 * 3600 + 1)
    scheduler.tick()
    assert svc.state.schedules.runs(sch["id"])[0]["status"] == "submitted"


def test_a_scheduler_that_dies_between_claim_and_submit_is_finished_once(svc, tenant):
    sch = schedule(svc, tenant)
    expected = svc.state.schedules.raw_next_run_at(sch["id"])
    run = {"scheduled_for": MONDAY, "claimed_at": MONDAY, "status": "firing", "job_id": None, "missed_before": 0}
    assert svc.state.schedules.claim(sch["id"], expected, MONDAY + 60, run, now=MONDAY, firing=True)
    # the claiming scheduler died here; another one notices the stalled run 30 s later
    clock = Clock(MONDAY + 31)
    for scheduler in schedulers(svc, clock):
        scheduler.tick()
    (finished,) = svc.state.schedules.runs(sch["id"])
    assert finished["status"] == "submitted" and finished["job_id"]
    assert len(svc.state.jobs.list(tenant, limit=50, before=None)) == 1


def test_a_run_that_cannot_submit_fails_with_a_notice(svc, tenant):
    sch = schedule(svc, tenant)
    for dataset in svc.state.datasets.list(tenant, limit=10, before=None):  # the data the job names is gone
        svc.state.datasets.delete(tenant, dataset.id)
    (scheduler,) = schedulers(svc, Clock(MONDAY + 1), 1)
    scheduler.tick()
    (run,) = svc.state.schedules.runs(sch["id"])
    assert run["status"] == "failed" and run["error"]["code"] == "dataset.no_ready_version"
    (notice,) = svc.state.notices.since(tenant)
    assert notice["type"] == "schedule.failed" and notice["schedule_id"] == sch["id"]


def test_the_api_creates_lists_reads_pauses_resumes_and_deletes(api, sets):
    upload_named(api, sets["good"], "sales")
    body = {"cron": "0 6 * * 1", "timezone": "Europe/Paris",
            "job": {"kind": "fit", "dataset_id": "sales@latest", "register_as": "churn"}}  # fmt: skip
    created = api.post("/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    sch = created.json()
    assert sch["id"].startswith("sch_") and sch["concurrency"] == "forbid" and sch["catchup"] == "last"
    assert datetime.fromisoformat(sch["next_run_at"]).astimezone(UTC).hour in (4, 5)  # 06:00 in Paris
    assert [s["id"] for s in api.get("/v1/schedules").json()["items"]] == [sch["id"]]
    assert api.get(f"/v1/schedules/{sch['id']}").json()["runs"] == []
    paused = api.post(f"/v1/schedules/{sch['id']}/pause").json()
    assert paused["paused"] is True and paused["next_run_at"] is None
    resumed = api.post(f"/v1/schedules/{sch['id']}/resume").json()
    assert resumed["paused"] is False and resumed["next_run_at"] == sch["next_run_at"]
    assert api.delete(f"/v1/schedules/{sch['id']}").status_code == 204
    assert api.get(f"/v1/schedules/{sch['id']}").status_code == 404
    nothing = {"kind": "fit", "dataset_id": "nothing@latest"}
    for bad, code in ((dict(body, cron="every monday"), "schedule.invalid_cron"),
                      (dict(body, job=nothing), "dataset.name_not_found")):  # fmt: skip
        refused = api.post("/v1/schedules", json=bad)
        assert refused.json()["error"]["code"] == code, refused.text


def test_a_paused_schedule_never_fires_and_resumes_without_catching_up(svc, tenant):
    sch = schedule(svc, tenant)
    svc.state.schedules.pause(sch["id"])
    (scheduler,) = schedulers(svc, Clock(MONDAY + 3601), 1)
    scheduler.tick()
    assert svc.state.schedules.runs(sch["id"]) == []
    from app.usecases.schedules import resume

    resumed = resume(svc, tenant, sch["id"], now=MONDAY + 3601)
    assert resumed["next_run_at"] == MONDAY + 3660
    with pytest.raises(NotFound):
        resume(svc, "someone-else", sch["id"])


@pytest.mark.slow
def test_an_every_minute_schedule_fires_twice_in_real_time_from_the_workers_loop(api, small_worker, sets, svc):
    # Given: a worker (its scheduler loop) and a second scheduler beside it: two replicas, one lease
    stop = threading.Event()
    threading.Thread(target=Scheduler(svc).run_forever, args=(stop,), daemon=True).start()
    upload_named(api, sets["good"], "sales")
    job = {"kind": "fit", "dataset_id": "sales@latest", "register_as": "churn", "params": {"max_iter": 5}}
    sch = api.post("/v1/schedules", json={"cron": "* * * * *", "job": job, "concurrency": "allow"}).json()
    try:
        # When: two minutes pass on the wall clock
        def two_runs() -> list | None:
            runs = api.get(f"/v1/schedules/{sch['id']}").json()["runs"]
            return runs if len(runs) >= 2 and all(r["job_id"] for r in runs) else None

        runs = wait_for(two_runs, timeout_s=200, interval_s=1)
    finally:
        stop.set()
        api.delete(f"/v1/schedules/{sch['id']}")
    # Then: one run per tick, a minute apart, each an ordinary job that ran
    ticks = [datetime.fromisoformat(r["scheduled_for"]).timestamp() for r in runs[:2]]
    assert ticks[0] - ticks[1] == 60 and len(runs) == len({r["scheduled_for"] for r in runs})
    assert {wait_job(api, r["job_id"])["status"] for r in runs[:2]} == {"finished"}
    assert [v["version"] for v in api.get("/v1/registry/churn").json()["versions"]][:2] == [1, 2]
