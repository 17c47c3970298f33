"""Webhooks cannot reach inside: the checked address is the one connected to (DNS rebinding),
embedded IPv4 addresses are judged, ports are 80/443, an attempt has a total deadline, a tenant's
deliveries are capped, the delivery id is signed, the secret is sealed in the job record, URLs
stay out of the logs, and ``tabjob.verify_webhook`` never raises."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from outbox_testing import SECRET, deliver_all, ended_job, notifier, private_state, webhook_events
from webhook_receiver import webhook_receiver

import tabjob
from app.core.errors import UserError
from app.core.logging_setup import setup_logging
from app.core.waiting import wait_until
from app.webhooks import delivery as webhooks
from app.webhooks import targets as webhook_targets
from app.webhooks.delivery import DELIVERY_HEADER, SIGNATURE_HEADER, check_webhook_url, seal_secret, sign


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/hook",  # IPv4-compatible loopback
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of the metadata server 169.254.169.254
        "http://[64:ff9b:1::a00:1]/hook",  # local-use NAT64 of 10.0.0.1
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo whose client is 127.0.0.1
    ],
)
def test_addresses_that_carry_a_private_ipv4_are_refused(url):
    with pytest.raises(UserError) as refused:
        check_webhook_url(url, allow_private=False)
    assert refused.value.code == "webhook.forbidden_target"


def test_only_ports_80_and_443_are_allowed():
    with pytest.raises(UserError) as refused:
        check_webhook_url("http://93.184.216.34:8080/hook", allow_private=False)
    assert refused.value.code == "webhook.forbidden_port"
    assert check_webhook_url("https://93.184.216.34:443/hook", allow_private=False)
    assert check_webhook_url("http://[64:ff9b::5db8:d822]/hook", allow_private=False)  # NAT64 of a public address


def test_the_address_checked_is_the_address_connected_to(monkeypatch, settings):
    # Given a name that answers a public address once, then loopback (DNS rebinding)
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    state = private_state(settings)
    with webhook_receiver() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        monkeypatch.setattr(webhook_targets, "ALLOWED_PORTS", frozenset({80, 443, port}))
        # When a notification goes to that name
        job = ended_job(state, f"http://rebind.example:{port}/hook")
        deliver_all(notifier(state, allow_private=False, max_attempts=1, timeout_s=2))
    # Then the connection went to the public address checked (unreachable here), never to loopback
    assert receiver.received == []
    assert "delivered" not in state.jobs.get(job.id).webhook_outcome


def test_a_pinned_request_keeps_the_host_name_and_carries_a_signed_delivery_id(monkeypatch, settings):
    real = socket.getaddrinfo

    def named(host, port, *args, **kwargs):  # a name for the loopback receiver
        return real("127.0.0.1" if host == "hooks.example" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", named)
    state = private_state(settings)
    with webhook_receiver(answers=[503]) as receiver:
        url = receiver.url.replace("127.0.0.1", "hooks.example")
        ended_job(state, url)
        deliver_all(notifier(state, max_attempts=2))
    (first, _), (headers, body) = receiver.received
    assert {k.lower(): v for k, v in headers.items()}["host"] == url.split("/")[2]
    assert headers[DELIVERY_HEADER] == first[DELIVERY_HEADER]  # the same id on each retry
    assert tabjob.verify_webhook(SECRET, headers[SIGNATURE_HEADER], body, delivery_id=headers[DELIVERY_HEADER])
    assert not tabjob.verify_webhook(SECRET, headers[SIGNATURE_HEADER], body, delivery_id="whd_other")


@pytest.mark.slow  # waits out an attempt's whole deadline against a receiver dripping bytes (6 s)
def test_a_receiver_dripping_bytes_is_cut_at_the_attempts_total_deadline(settings):
    # Given a receiver that answers a header byte every 1.5 s: each read is well within a read timeout
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop, cut = threading.Event(), threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(1.5):
            try:
                conn.sendall(b"X")
            except OSError:  # the deliverer hung up
                cut.set()
                return

    threading.Thread(target=drip, daemon=True).start()
    state = private_state(settings)
    job = ended_job(state, f"http://127.0.0.1:{server.getsockname()[1]}/hook")
    try:
        # When one attempt with a 4 s deadline is made
        notifier(state, max_attempts=1, timeout_s=4).deliver_next()
        # Then it ended at the deadline, hung up on the receiver, and says so on the job
        assert cut.wait(10)
    finally:
        stop.set()
        server.close()
    assert webhook_events(state, job.id) == ["Webhook to 127.0.0.1: no complete answer within 4 s (attempt 1 of 1)."]


def test_one_tenants_deliveries_run_at_most_four_at_once(settings):
    held, seen, lock = threading.Event(), [], threading.Lock()
    in_flight = 0

    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal in_flight
            self.rfile.read(int(self.headers["content-length"]))
            with lock:
                in_flight += 1
                seen.append(in_flight)
            held.wait(10)
            with lock:
                in_flight -= 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state = private_state(settings)
    pool = notifier(state, max_attempts=1, timeout_s=10, threads=8)  # more threads than the cap
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        jobs = [ended_job(state, url) for _ in range(8)]
        pool.start()
        time.sleep(1.0)  # let the first ones arrive (not a timing assertion: the cap is counted)
        held.set()
        wait_until(lambda: not state.outbox.pending(), what="every delivery", timeout_s=60)
    finally:
        pool.drain(15)
        server.shutdown()
        server.server_close()
    assert len(seen) == 8 and max(seen) <= webhooks.TENANT_IN_FLIGHT
    assert all("delivered" in state.jobs.get(job.id).webhook_outcome for job in jobs)


def test_the_secret_is_sealed_in_the_job_record_and_opens_for_the_notifier(settings):
    key = b"k" * 32
    sealed = seal_secret(key, SECRET)
    assert SECRET not in sealed and sealed.startswith(webhooks.SEALED_PREFIX)
    assert webhooks.open_secret(key, sealed) == SECRET
    with pytest.raises(ValueError):
        webhooks.open_secret(b"x" * 32, sealed)
    state = private_state(settings)
    with webhook_receiver() as receiver:
        ended_job(state, receiver.url, sealed)
        deliver_all(notifier(state, sealing_key=key))
    headers, body = receiver.received[0]
    assert tabjob.verify_webhook(SECRET, headers[SIGNATURE_HEADER], body)


def test_a_submitted_webhook_secret_is_not_in_the_broker(base_env, settings_from, new_tenant, seed_files, broker_db):
    from fastapi.testclient import TestClient
    from jobs_testing import upload

    from app.api.main import create_app

    settings = settings_from({**base_env, "TABJOB_WEBHOOKS_ENABLED": "true",
                              "TABJOB_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"})  # fmt: skip
    _, key = new_tenant()
    with TestClient(create_app(settings), headers={"authorization": f"Bearer {key}"}) as api:
        body = {"kind": "fit", "dataset_id": upload(api, seed_files["train"]),
                "webhook": {"url": "http://127.0.0.1:9/hook", "secret": SECRET}}  # fmt: skip
        job = api.post("/v1/jobs", json=body)
        assert job.status_code == 202, job.text
        api.post(f"/v1/jobs/{job.json()['id']}/cancel")
    everything = b"".join(
        str(broker_db.hgetall(k)).encode() for k in broker_db.keys("*") if broker_db.type(k) == b"hash"
    )
    assert SECRET.encode() not in everything


def test_httpx_logs_no_webhook_url(settings):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    lines: list[str] = []
    capture = logging.Handler()
    capture.emit = lambda record: lines.append(f"{record.name} {record.getMessage()}")  # type: ignore[method-assign]
    try:
        setup_logging("INFO", fmt="text", process="test")  # what the API and workers run
        root.addHandler(capture)
        with webhook_receiver() as receiver:
            url = receiver.url + "?token=receivers-own-token"
            state = private_state(settings)
            ended_job(state, url)
            deliver_all(notifier(state))
            assert receiver.received
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert any("webhooks" in line for line in lines)  # the outcome is logged, by host name
    assert not any("receivers-own-token" in line for line in lines), lines


def test_verify_webhook_accepts_only_the_genuine_header():
    body = b'{"type": "job.ended"}'
    header = sign(SECRET, 1_000_000, body, "whd_1")
    assert tabjob.verify_webhook(SECRET, header, body, now=1_000_010, delivery_id="whd_1")
    assert not tabjob.verify_webhook(SECRET, header, body, now=1_000_000 + 301)  # too late: a replay
    assert not tabjob.verify_webhook(SECRET, header.replace("d=whd_1", "d=whd_2"), body, now=1_000_010)
    for odd in ["t=\u0661\u0660\u0660,v1=" + "0" * 64, "t=" + "9" * 400 + ",v1=" + "0" * 64, "t=1,t=2,v1=x", "\udcff"]:
        assert tabjob.verify_webhook(SECRET, odd, body, now=1_000_010) is False


@settings(max_examples=300, deadline=None)
@given(
    secret=st.one_of(st.text(), st.binary(), st.none(), st.integers()),
    signature=st.one_of(st.text(), st.binary(), st.none(), st.integers(), st.floats()),
    body=st.one_of(st.binary(), st.text(), st.none()),
    tolerance=st.one_of(st.floats(allow_nan=True), st.integers(), st.none()),
    now=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.integers(min_value=-(10**30))),
    delivery=st.one_of(st.none(), st.text()),
)
def test_verify_webhook_returns_false_for_every_malformed_input(secret, signature, body, tolerance, now, delivery):
    assert tabjob.verify_webhook(secret, signature, body, tolerance_s=tolerance, now=now, delivery_id=delivery) is False
