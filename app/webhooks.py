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

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from app.errors import UserError
from app.settings import Settings

if TYPE_CHECKING:
    from app.state import State

log = logging.getLogger("tabjob.webhooks")
SIGNATURE_HEADER = "Tabjob-Signature"
MIN_SECRET_CHARS = 16
# Statuses worth another try: the receiver was busy or failing, not refusing the request.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# What a notification tells of a job's result (the model's digest and features stay out).
RESULT_FIELDS = ("target", "rows", "classes", "iterations", "validation_score", "validation_rows", "model_bytes")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Tabjob-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _refuse(message: str, code: str = "webhook.forbidden_target") -> UserError:
    return UserError(
        message,
        code=code,
        hint="Give a public http(s) URL that your receiver answers on (private and loopback addresses are refused).",
        status=422,
    )


def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """``url`` when it may be notified; a UserError (422) naming why not otherwise.

    Every address the host resolves to must be a public (global) one unless ``allow_private``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(f"The webhook URL '{url}' is not an http(s) URL.", "webhook.invalid_url")
    if parts.username or parts.password:
        raise _refuse("The webhook URL must not carry credentials; use the signing secret.", "webhook.invalid_url")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError) as exc:
        raise _refuse(f"The webhook host '{parts.hostname}' does not resolve ({exc}).", "webhook.invalid_url") from exc
    if allow_private:
        return url
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise _refuse(f"The webhook host '{parts.hostname}' resolves to {address}, which is not a public address.")
    return url


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
    )


class Notifier:
    """Delivers job-end notifications on background threads, so ending a job never waits on a receiver.

    Parameters:
        allow_private: let URLs resolve to loopback and private addresses.
        max_attempts: tries per notification (1 = no retry).
        backoff_s: the pause before the second try; it doubles after each failed try.
        timeout_s: the receiver's time to answer one try.
        on_outcome: called as ``on_outcome(job_id, delivered, message)`` after the last try.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        max_attempts: int,
        backoff_s: float,
        timeout_s: float,
        on_outcome: Callable[[str, bool, str], None] | None = None,
    ) -> None:
        self.allow_private, self.max_attempts = allow_private, max_attempts
        self.backoff_s, self.timeout_s = backoff_s, timeout_s
        self.on_outcome = on_outcome
        self._threads: list[threading.Thread] = []

    def notify(self, job: dict[str, Any], url: str, secret: str) -> threading.Thread:
        """Start delivering the notification of ``job``'s end to ``url``; returns the delivering thread."""
        thread = threading.Thread(target=self._deliver, args=(job, url, secret), name=f"webhook-{job['id']}")
        thread.daemon = True
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def drain(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s`` in all) for deliveries in flight: a worker calls it before exiting."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _deliver(self, job: dict[str, Any], url: str, secret: str) -> None:
        body = json.dumps(payload(job), default=str).encode()
        delivered, outcome = False, "not tried"
        for attempt in range(1, self.max_attempts + 1):
            delivered, outcome, retry = self._attempt(url, secret, body)
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

    def _attempt(self, url: str, secret: str, body: bytes) -> tuple[bool, str, bool]:
        """(delivered, what happened, worth retrying) of one POST."""
        try:
            check_webhook_url(url, allow_private=self.allow_private)
        except UserError as exc:
            return False, exc.message, False
        headers = {
            "content-type": "application/json",
            "user-agent": "tabjob-webhook",
            SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        }
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=self.timeout_s, follow_redirects=False)
        except httpx.HTTPError as exc:
            return False, f"no answer ({type(exc).__name__})", True
        if 200 <= response.status_code < 300:
            return True, f"delivered (HTTP {response.status_code})", False
        return False, f"refused with HTTP {response.status_code}", response.status_code in RETRY_STATUSES
