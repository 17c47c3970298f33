"""The durable webhook outbox: a job's end and its notification are one step in Valkey; a
notification outlives the process that ended its job and was delivering it (another delivers it
once the lease runs out); delivery threads are a fixed pool, not one per notification."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from jobs_testing import upload
from outbox_testing import SECRET, ended_job, notifier, private_state, webhook_events

from app.core.domain import JobStatus
from app.core.waiting import wait_until
from app.webhooks.delivery import DELIVERY_HEADER, TENANT_IN_FLIGHT
from app.webhooks.outbox import DELIVERY_THREADS

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def holding_receiver(hold_first: int) -> Iterator[tuple[str, list[dict[str, str]], threading.Event]]:
    """A receiver that holds its first ``hold_first`` requests until the event is set (then 200)."""
    received: list[dict[str, str]] = []
    release, lock = threading.Event(), threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            with lock:
                received.append(dict(self.headers.items()))
                held = len(received) <= hold_first
            if held:
                release.wait(30)
            try:
                self.send_response(200)
                self.end_headers()
            except OSError:  # the sender is gone (killed, or cut at its deadline)
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received, release
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_jobs_end_puts_its_notification_in_the_outbox_in_the_same_step(settings):
    state = private_state(settings)
    job = ended_job(state, "http://127.0.0.1:9/hook")  # the end alone: no notifier anywhere
    entry = state.conn.r.hgetall(state.keys.outbox(f"entry:whd_{job.id}"))
    assert entry == {"job": job.id, "tenant": "t1", "attempts": "0"}
    assert state.outbox.pending() == [f"whd_{job.id}"]
    # An end refused (the job had ended) adds nothing; a job without a webhook adds nothing
    assert not state.jobs.end(job, JobStatus.FAILED)
    silent = ended_job(state, "http://127.0.0.1:9/hook", end=False)
    state.jobs.update(silent.id, webhook_url=None, webhook_secret=None)
    assert state.jobs.end(silent, JobStatus.CANCELED)
    assert state.outbox.pending() == [f"whd_{job.id}"]


CHILD = """
import os, redis
from app.core.domain import JobStatus
from app.state import Keys, State
from app.webhooks.outbox import Notifier
client = redis.Redis.from_url(os.environ["T_URL"], password=os.environ["T_PASSWORD"], decode_responses=True)
state = State(client=client, retention_s=3600, keys=Keys(os.environ["T_PREFIX"]))
job = state.jobs.get(os.environ["T_JOB"])
assert state.jobs.end(job, JobStatus.FINISHED, result={"rows": 10})
Notifier(state=state, allow_private=True, max_attempts=3, backoff_s=0.01, timeout_s=3, lease_s=8).deliver_next()
"""


@pytest.mark.slow  # starts and SIGKILLs a process of its own, then waits out its lease (9 s)
def test_a_notification_outlives_the_process_that_ended_its_job_while_it_delivered(settings):
    state = private_state(settings)
    with holding_receiver(hold_first=1) as (url, received, _):
        # Given a process that ends a job and is killed while it delivers the notification
        job = ended_job(state, url, end=False)
        env = {**os.environ, "T_URL": settings.redis_url, "T_PREFIX": state.keys.prefix, "T_JOB": job.id,
               "T_PASSWORD": settings.redis_password.get_secret_value()}  # fmt: skip
        child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, cwd=ROOT)
        try:
            wait_until(lambda: received, what="the first attempt", timeout_s=60)
        finally:
            child.kill()
            child.wait()
        assert state.jobs.get(job.id).status == JobStatus.FINISHED
        # When another process's deliverer looks: the dead process's lease still holds it
        pool = notifier(state)
        assert not pool.deliver_next()
        # Then once the lease runs out, it delivers it, under the same delivery id
        wait_until(pool.deliver_next, what="the lease to run out and the delivery", timeout_s=60)
    assert len(received) == 2 and received[0][DELIVERY_HEADER] == received[1][DELIVERY_HEADER] == f"whd_{job.id}"
    assert webhook_events(state, job.id) == ["Webhook to 127.0.0.1: delivered (HTTP 200) (attempt 2 of 3)."]
    assert state.outbox.pending() == []


def test_canceling_many_jobs_does_not_start_a_thread_per_notification(base_env, settings_from, new_tenant, seed_files):
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    env = {"TABJOB_WEBHOOKS_ENABLED": "true", "TABJOB_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    keys = [new_tenant()[1] for _ in range(3)]
    with (
        holding_receiver(hold_first=1000) as (url, received, release),
        TestClient(create_app(settings_from({**base_env, **env}))) as api,
    ):
        # Given three tenants with four queued jobs each, every job naming a receiver that holds its requests
        jobs = []
        for key in keys:
            api.headers["authorization"] = f"Bearer {key}"
            dataset = upload(api, seed_files["train"])
            for i in range(4):  # four distinct fits (the same one twice is the same job)
                hook = {"url": url, "secret": SECRET}
                body = {
                    "kind": "fit",
                    "dataset_id": dataset,
                    "lane": "large",
                    "webhook": hook,
                    "params": {"max_iter": 10 + i},
                }
                jobs.append(({"authorization": f"Bearer {key}"}, api.post("/v1/jobs", json=body).json()["id"]))
        # When the API cancels all twelve
        for auth, job_id in jobs:
            assert api.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 202
        wait_until(lambda: len(received) >= DELIVERY_THREADS, what="the first deliveries", timeout_s=60)
        # Then the deliveries in flight are the pool's few threads, not one per notification
        delivering = [t.name for t in threading.enumerate() if t.name.startswith("webhook")]
        assert len(delivering) <= DELIVERY_THREADS < len(jobs) and len(received) == DELIVERY_THREADS
        release.set()
        wait_until(lambda: len(received) == len(jobs), what="every notification", timeout_s=120)
        for auth, job_id in jobs:
            path = f"/v1/jobs/{job_id}"
            shown = wait_until(lambda p=path, a=auth: api.get(p, headers=a).json()["webhook"]["outcome"],
                               what="the outcome on the job", timeout_s=60)  # fmt: skip
            assert "delivered (HTTP 200)" in shown
    assert len({headers[DELIVERY_HEADER] for headers in received}) == len(jobs) > TENANT_IN_FLIGHT
