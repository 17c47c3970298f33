"""The webhook outbox in tests: a state under a private key prefix (no other process's delivery
threads take its entries), jobs that end with a webhook, and a delivery pool run by hand."""

from __future__ import annotations

import secrets
import time

from app.core.domain import Job, JobStatus, new_id
from app.core.settings import Settings
from app.core.waiting import wait_until
from app.jobs.broker import redis_client
from app.state import Keys, State
from app.webhooks.outbox import Notifier

SECRET = "s3cret-s3cret-s3cret"
RESULT = {"rows": 10, "classes": [0, 1], "features": {"x": 1}}


def private_state(settings: Settings) -> State:
    return State(client=redis_client(settings, decode=True), retention_s=3600, keys=Keys(f"o{secrets.token_hex(4)}"))


def ended_job(state: State, url: str, secret: str = SECRET, *, tenant: str = "t1", end: bool = True) -> Job:
    """A fit that named a webhook, ended (finished) with the atomic end: its notification is due
    (``end=False``: still queued)."""
    job = Job(
        id=new_id("job"), tenant=tenant, kind="fit", lane="large", status=JobStatus.QUEUED,
        created_at=time.time(), dataset_id="ds_1", webhook_url=url, webhook_secret=secret,
    )  # fmt: skip
    state.jobs.admit(tenant, job.id, 1000)
    state.jobs.create(job)
    if end:
        assert state.jobs.end(job, JobStatus.FINISHED, result=RESULT)
    return job


def notifier(state: State, **overrides: object) -> Notifier:
    options: dict = {"allow_private": True, "max_attempts": 3, "backoff_s": 0.01, "timeout_s": 5} | overrides
    return Notifier(state=state, **options)


def deliver_all(pool: Notifier, timeout_s: float = 60) -> None:
    """Run the deliveries by hand (no threads) until the outbox is empty."""

    def emptied() -> bool:
        pool.deliver_next()
        return not pool.state.outbox.pending()

    wait_until(emptied, what="the outbox to empty", timeout_s=timeout_s, interval_s=0.01)


def make_due(state: State) -> None:
    """Make every waiting entry due now (skips a back-off instead of sleeping through it)."""
    for delivery_id in state.outbox.pending():
        state.conn.r.zadd(state.keys.outbox("due"), {delivery_id: time.time() - 1})


def webhook_events(state: State, job_id: str) -> list[str]:
    return [e["message"] for e in state.events.since(job_id) if e["type"] == "webhook"]
