"""Job-end notifications: signatures a receiver can check, retries, and no calls to private addresses."""

from __future__ import annotations

import json

import pytest
from jobs_testing import upload, wait_job
from outbox_testing import SECRET, deliver_all, ended_job, make_due, notifier, private_state, webhook_events
from webhook_receiver import webhook_receiver

import tabjob
from app.core.errors import UserError
from app.core.waiting import wait_until
from app.webhooks.delivery import DELIVERY_HEADER, SIGNATURE_HEADER, check_webhook_url, sign


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]/hook", "http://10.1.2.3/hook",
        "http://192.168.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://0.0.0.0/hook",
    ],
)  # fmt: skip
def test_loopback_private_and_metadata_addresses_are_refused(url):
    with pytest.raises(UserError) as refused:
        check_webhook_url(url, allow_private=False)
    assert refused.value.code == "webhook.forbidden_target" and refused.value.status == 422


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http:///x", "http://user:pw@93.184.216.34/x"])
def test_urls_that_are_not_plain_http_are_refused(url):
    with pytest.raises(UserError) as refused:
        check_webhook_url(url, allow_private=True)
    assert refused.value.code == "webhook.invalid_url"


def test_public_addresses_pass_and_private_ones_pass_only_when_allowed():
    assert check_webhook_url("https://93.184.216.34/hook", allow_private=False)
    assert check_webhook_url("http://127.0.0.1:9/hook", allow_private=True)


def test_the_signature_verifies_with_the_client_and_not_with_another_secret_or_later():
    body = b'{"type": "job.ended"}'
    header = sign(SECRET, 1_000_000, body)
    assert tabjob.verify_webhook(SECRET, header, body, now=1_000_010)
    assert not tabjob.verify_webhook("another-secret-here", header, body, now=1_000_010)
    assert not tabjob.verify_webhook(SECRET, header, body + b" ", now=1_000_010)
    assert not tabjob.verify_webhook(SECRET, header, body, now=1_000_000 + 301)  # a replay, too late
    assert not tabjob.verify_webhook(SECRET, "garbage", body)


def test_a_notification_is_signed_and_retried_with_back_off_until_the_receiver_answers(settings):
    # Given a job that ended naming a receiver that fails twice, then answers 200
    state = private_state(settings)
    pool = notifier(state, max_attempts=4, backoff_s=30)
    with webhook_receiver(answers=[503, 500]) as receiver:
        job = ended_job(state, receiver.url)
        # When the first try fails, the notification waits out the back-off (not due again yet)
        assert pool.deliver_next() and not pool.deliver_next()
        assert state.jobs.get(job.id).webhook_outcome.endswith("(attempt 1 of 4); next try in 30 s.")
        make_due(state)  # instead of sleeping through the back-off
        assert pool.deliver_next() and not pool.deliver_next()
        # Then the pause doubled, and the third try is delivered
        assert state.jobs.get(job.id).webhook_outcome.endswith("(attempt 2 of 4); next try in 60 s.")
        make_due(state)
        assert pool.deliver_next()
    assert len(receiver.received) == 3 and state.outbox.pending() == []
    headers, body = receiver.received[-1]
    assert tabjob.verify_webhook(SECRET, headers[SIGNATURE_HEADER], body)
    assert {h[DELIVERY_HEADER] for h, _ in receiver.received} == {f"whd_{job.id}"}  # one id on each retry
    sent = json.loads(body)
    assert sent["type"] == "job.ended" and sent["job"]["id"] == job.id and sent["job"]["status"] == "finished"
    assert "features" not in sent["job"]["result"] and SECRET not in body.decode()
    outcome = "Webhook to 127.0.0.1: delivered (HTTP 200) (attempt 3 of 4)."
    assert state.jobs.get(job.id).webhook_outcome == outcome and webhook_events(state, job.id) == [outcome]


def test_a_refusal_is_not_retried_and_tries_are_bounded(settings):
    state = private_state(settings)
    pool = notifier(state, max_attempts=2)
    with webhook_receiver(answers=[400]) as receiver:
        refused = ended_job(state, receiver.url)
        deliver_all(pool)
    assert len(receiver.received) == 1 and "HTTP 400" in state.jobs.get(refused.id).webhook_outcome
    with webhook_receiver(answers=[503, 503, 503]) as receiver:
        failing = ended_job(state, receiver.url)
        deliver_all(pool)
    assert len(receiver.received) == 2
    assert webhook_events(state, failing.id) == ["Webhook to 127.0.0.1: refused with HTTP 503 (attempt 2 of 2)."]


def test_a_private_target_is_not_called_when_private_targets_are_not_allowed(settings):
    state = private_state(settings)
    with webhook_receiver() as receiver:
        job = ended_job(state, receiver.url)
        deliver_all(notifier(state, allow_private=False))
    assert receiver.received == [] and "not a public address" in state.jobs.get(job.id).webhook_outcome


HOOK_ENV = {
    "TABJOB_WEBHOOKS_ENABLED": "true",
    "TABJOB_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "TABJOB_WEBHOOK_BACKOFF_S": "0.05",
}


@pytest.fixture
def hooked_api(base_env, new_tenant, settings_from):
    """The API with webhooks on and loopback targets allowed (the test receiver listens there)."""
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    _, key = new_tenant()
    settings = settings_from({**base_env, **HOOK_ENV})
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as client:
        yield client


def fit_with_hook(api, dataset_id: str, url: str, **extra):
    body = {"kind": "fit", "dataset_id": dataset_id, "webhook": {"url": url, "secret": SECRET}, **extra}
    return api.post("/v1/jobs", json=body)


def test_webhooks_are_refused_while_off_and_private_targets_unless_allowed(api, base_env, settings_from, seed_files):
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    dataset = upload(api, seed_files["train"])
    off = fit_with_hook(api, dataset, "https://93.184.216.34/hook")
    assert off.status_code == 422 and off.json()["error"]["code"] == "webhook.disabled"
    strict = settings_from({**base_env, "TABJOB_WEBHOOKS_ENABLED": "true"})
    with TestClient(create_app(strict), headers=dict(api.headers)) as guarded:
        private = fit_with_hook(guarded, dataset, "http://127.0.0.1:9/hook")
        assert private.status_code == 422 and private.json()["error"]["code"] == "webhook.forbidden_target"
        short = guarded.post(
            "/v1/jobs", json={"kind": "fit", "dataset_id": dataset, "webhook": {"url": "https://a.b", "secret": "x"}}
        )
        assert short.status_code == 422 and "secret" in short.json()["error"]["message"]


def test_a_job_canceled_while_queued_notifies_its_webhook_from_the_api(hooked_api, seed_files):
    dataset = upload(hooked_api, seed_files["train"])
    with webhook_receiver() as receiver:
        job = fit_with_hook(hooked_api, dataset, receiver.url, lane="large").json()
        assert job["webhook"] == {"url": receiver.url, "outcome": None} and SECRET not in json.dumps(job)
        hooked_api.post(f"/v1/jobs/{job['id']}/cancel")
        wait_until(lambda: receiver.received, what="the notification", timeout_s=30)
    headers, body = receiver.received[0]
    assert tabjob.verify_webhook(SECRET, headers[SIGNATURE_HEADER], body)
    assert json.loads(body)["job"]["status"] == "canceled"
    shown = wait_until(
        lambda: (j := hooked_api.get(f"/v1/jobs/{job['id']}").json())["webhook"]["outcome"] and j,
        what="the outcome on the job", timeout_s=30,
    )  # fmt: skip
    assert "delivered" in shown["webhook"]["outcome"]
    events = hooked_api.get(f"/v1/jobs/{job['id']}/events").json()["items"]
    assert events[-1]["type"] == "webhook"


def test_a_finished_job_notifies_its_webhook_from_the_worker(hooked_api, workers, seed_files):
    dataset = upload(hooked_api, seed_files["train"])
    workers.start("large", **HOOK_ENV)
    with webhook_receiver(answers=[503]) as receiver:
        job = fit_with_hook(hooked_api, dataset, receiver.url, lane="large", params={"max_iter": 10}).json()
        assert wait_job(hooked_api, job["id"])["status"] == "finished"
        wait_until(lambda: len(receiver.received) == 2, what="the retried notification", timeout_s=60)
    sent = json.loads(receiver.received[-1][1])
    assert sent["job"]["status"] == "finished" and sent["job"]["result"]["classes"] == [0, 1]
    assert tabjob.verify_webhook(SECRET, receiver.received[-1][0][SIGNATURE_HEADER], receiver.received[-1][1])
