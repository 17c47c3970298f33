"""Job-end notifications: a signed POST to the URL a job named, retried with back-off. Off by default.

A job may name ``webhook: {url, secret}``; when it ends (finished, failed or canceled) the
process that ended it POSTs a JSON body to the URL, signed with the job's secret:

    Tabjob-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>

Receivers check it with ``tabjob.verify_webhook`` (the client package) or any HMAC library.
The URL must be http(s) and resolve only to public addresses: loopback, private, link-local and
other special ranges are refused (at submission and again before every attempt, since DNS may
change), unless ``webhook_allow_private_targets`` is set (tests, a laptop). Redirects are not
followed. Delivery is at most ``webhook_max_attempts`` tries; each outcome is a job event.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from app.errors import UserError
from app.settings import Settings
from app.webhook_secrets import SEALED_PREFIX, open_secret, seal_secret, sealing_key
from app.webhook_targets import check_webhook_url, pinned_request, resolve_target

if TYPE_CHECKING:
    from app.state import State

__all__ = ["Notifier", "check_webhook_url", "open_secret", "seal_secret", "sealing_key", "sign"]

log = logging.getLogger("tabjob.webhooks")
SIGNATURE_HEADER = "Tabjob-Signature"
MIN_SECRET_CHARS = 16
# Statuses worth another try: the receiver was busy or failing, not refusing the request.
# The whole of one attempt, connection to last byte: a receiver dripping bytes cannot hold a
# delivery longer (GitHub gives its webhooks 10 s).
ATTEMPT_DEADLINE_S = 10.0
# Deliveries in flight per tenant: more wait their turn, so one tenant's slow receivers cannot
# hold every delivery thread.
TENANT_IN_FLIGHT = 4
DELIVERY_HEADER = "Tabjob-Delivery"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# What a notification tells of a job's result (the model's digest and features stay out).
RESULT_FIELDS = ("target", "rows", "classes", "iterations", "validation_score", "validation_rows", "model_bytes")


def sign(secret: str, timestamp: int, body: bytes, delivery_id: str | None = None) -> str:
    """The ``Tabjob-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds).

    With ``delivery_id`` (the ``Tabjob-Delivery`` header, the same on every retry of one
    notification) the header reads ``t=<t>,d=<id>,v1=<HMAC of "<t>.<id>.<body>">``, so a receiver
    that drops ids it has seen also knows the id is the one the service signed."""
    if delivery_id is None:
        digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={digest}"
    digest = hmac.new(secret.encode(), f"{timestamp}.{delivery_id}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},d={delivery_id},v1={digest}"


def payload(job: dict[str, Any]) -> dict[str, Any]:
    """What a receiver is told: the job's id, kind, end and outcome (never the webhook secret)."""
    fields = ("id", "kind", "status", "lane", "dataset_id", "model_id", "attempts", "created_at", "started_at")
    body = {name: job.get(name) for name in fields}
    body.update(ended_at=job.get("ended_at"), error=job.get("error"))
    result = job.get("result") or {}
    body["result"] = {k: result[k] for k in RESULT_FIELDS if k in result} or None
    return {"type": "job.ended", "job": body}


def notifier_for(settings: Settings, state: State) -> Notifier | None:
    """The process's notifier (None when webhooks are off); it records each outcome on the job:
    the ``webhook_outcome`` field and a ``webhook`` event."""
    if not settings.webhooks_enabled:
        return None

    def record(job_id: str, delivered: bool, message: str) -> None:
        state.jobs.update(job_id, webhook_outcome=message)
        state.events.add(job_id, "webhook", message)

    return Notifier(
        allow_private=settings.webhook_allow_private_targets,
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
        on_outcome=record,
        sealing_key=sealing_key(settings),
    )


class Delivery:
    """One notification on its way: ``join`` waits for its last attempt."""

    def __init__(self, job: dict[str, Any], url: str, secret: str) -> None:
        self.job, self.url, self.secret = job, url, secret
        self.id = "whd_" + secrets.token_hex(12)
        self.done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        self.done.wait(timeout)

    def is_alive(self) -> bool:
        return not self.done.is_set()


class Notifier:
    """Delivers job-end notifications on background threads, so ending a job never waits on a receiver.

    At most ``TENANT_IN_FLIGHT`` deliveries of one tenant run at once (the others wait in order);
    each attempt connects to the address that was checked and ends within ``ATTEMPT_DEADLINE_S``
    (or ``timeout_s`` if shorter), whatever the receiver does.

    Parameters:
        allow_private: let URLs resolve to loopback and private addresses, on any port.
        max_attempts: tries per notification (1 = no retry).
        backoff_s: the pause before the second try; it doubles after each failed try.
        timeout_s: the receiver's time to answer one try, in all.
        on_outcome: called as ``on_outcome(job_id, delivered, message)`` after the last try.
        sealing_key: opens secrets sealed in job records (``seal_secret``); plain secrets pass as they are.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        max_attempts: int,
        backoff_s: float,
        timeout_s: float,
        on_outcome: Callable[[str, bool, str], None] | None = None,
        sealing_key: bytes | None = None,
    ) -> None:
        self.allow_private, self.max_attempts = allow_private, max_attempts
        self.backoff_s, self.timeout_s = backoff_s, min(timeout_s, ATTEMPT_DEADLINE_S)
        self.on_outcome = on_outcome
        self.sealing_key = sealing_key
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._waiting: dict[str, deque[Delivery]] = {}
        self._deliveries: list[Delivery] = []

    def notify(self, job: dict[str, Any], url: str, secret: str) -> Delivery:
        """Start (or queue behind the tenant's others) delivering the notification of ``job``'s end."""
        if self.sealing_key is not None and secret.startswith(SEALED_PREFIX):
            try:
                secret = open_secret(self.sealing_key, secret)
            except ValueError:  # sealed under another key (rotated): nothing to sign with
                log.warning("job %s: its webhook secret does not open with this key; not notified", job.get("id"))
                delivery = Delivery(job, url, "")
                delivery.done.set()
                return delivery
        delivery = Delivery(job, url, secret)
        tenant = str(job.get("tenant") or "")
        with self._lock:
            self._deliveries = [d for d in self._deliveries if d.is_alive()] + [delivery]
            if self._in_flight.get(tenant, 0) >= TENANT_IN_FLIGHT:
                self._waiting.setdefault(tenant, deque()).append(delivery)
                return delivery
            self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1
        self._start(tenant, delivery)
        return delivery

    def _start(self, tenant: str, delivery: Delivery) -> None:
        thread = threading.Thread(target=self._run, args=(tenant, delivery), name=f"webhook-{delivery.job['id']}")
        thread.daemon = True
        thread.start()

    def _run(self, tenant: str, delivery: Delivery) -> None:
        while True:
            try:
                self._deliver(delivery)
            finally:
                delivery.done.set()
            with self._lock:  # this thread takes the tenant's next waiting delivery, if any
                waiting = self._waiting.get(tenant)
                if not waiting:
                    self._in_flight[tenant] -= 1
                    self._waiting.pop(tenant, None)
                    return
                delivery = waiting.popleft()

    def drain(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s`` in all) for deliveries in flight: a worker calls it before exiting."""
        deadline = time.monotonic() + timeout_s
        for delivery in list(self._deliveries):
            delivery.join(max(0.0, deadline - time.monotonic()))

    def _deliver(self, delivery: Delivery) -> None:
        job, url = delivery.job, delivery.url
        body = json.dumps(payload(job), default=str).encode()
        delivered, outcome = False, "not tried"
        for attempt in range(1, self.max_attempts + 1):
            delivered, outcome, retry = self._attempt(url, delivery.secret, body, delivery.id)
            if delivered or not retry:
                break
            if attempt < self.max_attempts:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        message = f"Webhook to {urlsplit(url).hostname}: {outcome} (attempt {attempt} of {self.max_attempts})."
        log.info("job %s: %s", job["id"], message)
        if self.on_outcome:
            try:
                self.on_outcome(job["id"], delivered, message)
            except Exception:  # recording the outcome must never kill the thread loudly
                log.exception("job %s: could not record the webhook outcome", job["id"])

    def _attempt(self, url: str, secret: str, body: bytes, delivery_id: str) -> tuple[bool, str, bool]:
        """(delivered, what happened, worth retrying) of one POST."""
        try:
            address = resolve_target(url, allow_private=self.allow_private)[0]
        except UserError as exc:
            return False, exc.message, False
        target, host, extensions = pinned_request(url, address)
        headers = {
            **host,
            "content-type": "application/json",
            "user-agent": "tabjob-webhook",
            DELIVERY_HEADER: delivery_id,
            SIGNATURE_HEADER: sign(secret, int(time.time()), body, delivery_id),
        }
        try:
            status = asyncio.run(self._post(target, body, headers, extensions))
        except TimeoutError:
            return False, f"no complete answer within {self.timeout_s:g} s", True
        except httpx.HTTPError as exc:
            return False, f"no answer ({type(exc).__name__})", True
        if 200 <= status < 300:
            return True, f"delivered (HTTP {status})", False
        return False, f"refused with HTTP {status}", status in RETRY_STATUSES

    async def _post(self, url: str, body: bytes, headers: dict[str, str], extensions: dict[str, Any]) -> int:
        """The receiver's status, within ``timeout_s`` for the whole exchange (not per read)."""
        async with (
            asyncio.timeout(self.timeout_s),
            httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False, trust_env=False) as client,
        ):
            response = await client.post(url, content=body, headers=headers, extensions=extensions)
            return response.status_code
