"""Job-end notifications: a signed POST to the URL a job named, retried with back-off. Off by default.

A job may name ``webhook: {url, secret}``; when it ends (finished, failed or canceled) its
notification goes to the outbox in Valkey with the end, and a delivery thread of any API or
worker process (``app.webhooks.outbox``) POSTs a JSON body to the URL, signed with the job's secret:

    Tabjob-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>

Receivers check it with ``tabjob.verify_webhook`` (the client package) or any HMAC library.
The URL must be http(s) and resolve only to public addresses: loopback, private, link-local and
other special ranges are refused (at submission and again before every attempt, since DNS may
change), unless ``webhook_allow_private_targets`` is set (tests, a laptop). Redirects are not
followed. Delivery is at most ``webhook_max_attempts`` tries; the last outcome is a job event.
This module signs and makes one attempt; the outbox module claims, retries and records.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx

from app.core.errors import UserError
from app.webhooks.sealing import SEALED_PREFIX, open_secret, seal_secret, sealing_key
from app.webhooks.targets import check_webhook_url, pinned_request, resolve_target

__all__ = ["SEALED_PREFIX", "attempt", "check_webhook_url", "open_secret", "seal_secret", "sealing_key", "sign"]

SIGNATURE_HEADER = "Tabjob-Signature"
MIN_SECRET_CHARS = 16
# The whole of one attempt, connection to last byte: a receiver dripping bytes cannot hold a
# delivery longer (GitHub gives its webhooks 10 s).
ATTEMPT_DEADLINE_S = 10.0
# Deliveries in flight per tenant, across every process: more wait their turn, so one tenant's
# slow receivers cannot hold every delivery thread.
TENANT_IN_FLIGHT = 4
DELIVERY_HEADER = "Tabjob-Delivery"
# Statuses worth another try: the receiver was busy or failing, not refusing the request.
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


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: delivered, what happened (for the job's events), worth retrying."""

    delivered: bool
    outcome: str
    retry: bool


def attempt(url: str, secret: str, body: bytes, delivery_id: str, *, allow_private: bool, timeout_s: float) -> Attempt:
    """POST ``body`` to ``url`` once, signed with ``secret``: to the address that was checked (Host
    and SNI kept), within ``timeout_s`` (at most ``ATTEMPT_DEADLINE_S``) from connection to last byte."""
    deadline_s = min(timeout_s, ATTEMPT_DEADLINE_S)
    try:
        address = resolve_target(url, allow_private=allow_private)[0]
    except UserError as exc:
        return Attempt(False, exc.message, False)
    target, host, extensions = pinned_request(url, address)
    headers = {
        **host,
        "content-type": "application/json",
        "user-agent": "tabjob-webhook",
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: sign(secret, int(time.time()), body, delivery_id),
    }
    try:
        status = asyncio.run(_post(target, body, headers, extensions, deadline_s))
    except TimeoutError:
        return Attempt(False, f"no complete answer within {deadline_s:g} s", True)
    except httpx.HTTPError as exc:
        return Attempt(False, f"no answer ({type(exc).__name__})", True)
    if 200 <= status < 300:
        return Attempt(True, f"delivered (HTTP {status})", False)
    return Attempt(False, f"refused with HTTP {status}", status in RETRY_STATUSES)


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context (the default CA bundle, the environment ignored) for every attempt of the
    process: making one costs ~60 ms of CPU, more than the rest of an attempt."""
    return httpx.create_ssl_context(trust_env=False)


async def _post(url: str, body: bytes, headers: dict[str, str], extensions: dict[str, Any], deadline_s: float) -> int:
    """The receiver's status, within ``deadline_s`` for the whole exchange (not per read)."""
    async with (
        asyncio.timeout(deadline_s),
        httpx.AsyncClient(timeout=deadline_s, follow_redirects=False, trust_env=False, verify=_tls()) as client,
    ):
        response = await client.post(url, content=body, headers=headers, extensions=extensions)
        return response.status_code
