"""The parts of job logs without a worker, on the real store: an attempt's chunks and their cap,
reading from a cursor, the job process's rate limit, and the retention sweep of log chunks."""

from __future__ import annotations

import logging
import secrets
import sys
import time

import pytest

from app.core.errors import UserError
from app.core.storage import Store, manifest_key
from app.job_logs.chunks import Cursor, chunk_key, is_log_chunk, list_chunks, read_lines
from app.job_logs.job_side import Forwarder
from app.job_logs.writer import AttemptLog
from app.state import State
from app.tenancy.retention import DAY_S, sweep


@pytest.fixture
def store(settings) -> Store:
    return Store.from_settings(settings)


def _line(n: int) -> dict:
    return {"ts": "2026-12-07T06:00:00.000Z", "level": "info", "msg": f"line {n}", "source": "worker", "step": "fit"}


def test_attempts_and_steps_continue_one_numbering_and_a_cursor_resumes_anywhere(store):
    tenant, job = "t-" + secrets.token_hex(4), "job_" + secrets.token_hex(10)
    first = AttemptLog(store, tenant=tenant, job_id=job, attempt=1, step="prepare", max_bytes=1 << 20)
    for n in range(3):
        first.add(_line(n))
    first.flush()
    first.add(_line(3))
    first.flush(last=True)
    # A second step restarts its attempts at 1 (two-step jobs): its chunks still come after.
    second = AttemptLog(store, tenant=tenant, job_id=job, attempt=1, step="model", max_bytes=1 << 20)
    second.add(_line(4))
    second.flush(last=True)

    chunks = list_chunks(store, tenant, job)
    assert [(c.seq, c.attempt, c.last) for c in chunks] == [(0, 1, False), (1, 1, True), (2, 1, True)]
    # A reader from a cursor lists only the chunks from the cursor's on (the store's start-after).
    assert [c.seq for c in list_chunks(store, tenant, job, from_seq=1)] == [1, 2]
    whole = read_lines(store, tenant, job, None, 100)
    assert [line["msg"] for line in whole.lines] == [f"line {n}" for n in range(5)]
    for n, line in enumerate(whole.lines):
        rest = read_lines(store, tenant, job, Cursor.parse(line["cursor"]), 100).lines
        assert [r["msg"] for r in rest] == [f"line {m}" for m in range(n + 1, 5)]
    assert read_lines(store, tenant, job, whole.next_since, 100).lines == []
    paged = read_lines(store, tenant, job, None, 2)
    assert [line["msg"] for line in paged.lines] == ["line 0", "line 1"]
    assert read_lines(store, tenant, job, paged.next_since, 100).lines[0]["msg"] == "line 2"


def test_the_cap_counts_earlier_attempts_and_says_what_it_dropped(store):
    tenant, job = "t-" + secrets.token_hex(4), "job_" + secrets.token_hex(10)
    first = AttemptLog(store, tenant=tenant, job_id=job, attempt=1, step="fit", max_bytes=4096)
    for n in range(10):
        first.add(_line(n))
    first.flush(last=True)
    kept_first = sum(c.size for c in list_chunks(store, tenant, job))
    # The retry starts from what the first attempt left, so the job's whole log stays under the cap.
    retry = AttemptLog(store, tenant=tenant, job_id=job, attempt=2, step="fit", max_bytes=4096)
    assert retry.used_bytes == kept_first
    for n in range(1000):
        retry.add(_line(n))
    retry.flush()
    retry.flush(last=True)
    assert sum(c.size for c in list_chunks(store, tenant, job)) <= 4096
    lines = read_lines(store, tenant, job, None, 10_000).lines
    notices = [line for line in lines if line.get("truncated")]
    assert len(notices) == 2 and all(n["attempt"] == 2 for n in notices)
    assert "line(s)" in notices[-1]["msg"] and lines[-1] is notices[-1]


def test_a_cursor_that_is_not_one_is_refused():
    for text in ("", "1", "a.b", "../x", "1.2.3", "1" * 13 + ".0"):
        with pytest.raises(UserError):
            Cursor.parse(text)
    assert str(Cursor.parse("12.3")) == "12.3"


def test_the_job_process_sends_a_burst_then_one_line_saying_how_many_it_dropped():
    sent: list = []
    forwarder = Forwarder(sent.append, lines_per_s=5)
    logger = logging.getLogger("tabjob.test.flood")
    logger.addHandler(forwarder)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("outside a job: never sent")
        with forwarder.job():
            for n in range(200):
                logger.info("flood %d", n)
        assert sent and len(sent) < 20
        assert sent[0] == ("log", {**sent[0][1], "msg": "flood 0"})
        assert "dropped: more than 5 lines a second" in sent[-1][1]["msg"]
        assert sent[-1][1]["level"] == logging.WARNING
    finally:
        logger.removeHandler(forwarder)


def test_what_a_job_prints_becomes_lines_of_its_log():
    sent: list = []
    stdout = sys.stdout
    forwarder = Forwarder(sent.append, lines_per_s=1000)
    root = logging.getLogger()
    root.addHandler(forwarder)
    logging.getLogger("tabjob.job").setLevel(logging.INFO)  # the job process's root is at INFO
    try:
        with forwarder.job():
            print("first\nsecond", end="")
            assert sys.stdout is not stdout
            print(" half", file=sys.stderr)
        assert sys.stdout is stdout  # given back when the job ends
    finally:
        root.removeHandler(forwarder)
        logging.getLogger("tabjob.job").setLevel(logging.NOTSET)
    got = [(f["logger"], f["msg"]) for _, f in sent if f["logger"].startswith("tabjob.job.std")]
    assert got == [("tabjob.job.stdout", "first"), ("tabjob.job.stderr", " half"), ("tabjob.job.stdout", "second")]


def test_the_retention_sweep_deletes_old_log_chunks_and_keeps_the_manifest(settings, store, broker_db):
    tenant, job = "t-" + secrets.token_hex(4), "job_" + secrets.token_hex(10)
    log = AttemptLog(store, tenant=tenant, job_id=job, attempt=1, step="fit", max_bytes=1 << 20)
    log.add(_line(0))
    log.flush(last=True)
    store.put_json(manifest_key(tenant, job), {"job": {}})
    key = chunk_key(tenant, job, 1, 0, last=True)
    assert is_log_chunk(key) and not is_log_chunk(manifest_key(tenant, job))

    state = State(client=broker_db, retention_s=60)
    swept = sweep(state, store, older_than_s=DAY_S, now=time.time() + 2 * DAY_S, prefix=f"tenants/{tenant}/")
    assert swept.log_chunks == 1
    assert list_chunks(store, tenant, job) == []
    assert store.stat(manifest_key(tenant, job)) is not None
