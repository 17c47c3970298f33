"""Checking a tabjob webhook: was this request signed by the service with your secret, recently?

    from tabjob import verify_webhook

    if not verify_webhook(secret, request.headers["Tabjob-Signature"], request.body):
        return 401

The header is ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``; check the raw bytes
as received, before parsing the JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Tabjob-Signature"


def verify_webhook(
    secret: str, signature: str, body: bytes, *, tolerance_s: float = 300.0, now: float | None = None
) -> bool:
    """True when ``signature`` (the ``Tabjob-Signature`` header) signs ``body`` with ``secret``.

    Parameters:
        secret: the ``webhook.secret`` the job was submitted with.
        signature: the header's value.
        body: the request's raw body.
        tolerance_s: how old (or early) the signed time may be, in seconds: older requests are
            refused, so a captured request cannot be replayed later.
        now: the current Unix time (default: the clock).
    """
    try:
        fields = dict(part.split("=", 1) for part in signature.split(","))
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)
