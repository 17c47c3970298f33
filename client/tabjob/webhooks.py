"""Checking a tabjob webhook: was this request signed by the service with your secret, recently?

    from tabjob import verify_webhook

    if not verify_webhook(secret, request.headers["Tabjob-Signature"], request.body,
                          delivery_id=request.headers.get("Tabjob-Delivery")):
        return 401

The header is ``t=<unix seconds>,d=<delivery id>,v1=<hex HMAC-SHA256 of "<t>.<d>.<raw body>">``
(``t=..,v1=`` over ``"<t>.<raw body>"`` from services older than delivery ids); check the raw
bytes as received, before parsing the JSON. The delivery id is the same on every retry of one
notification: drop ids you have already handled.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time

SIGNATURE_HEADER = "Tabjob-Signature"
DELIVERY_HEADER = "Tabjob-Delivery"
# What a well-formed header may hold: anything else is refused before any parsing or arithmetic.
MAX_HEADER_CHARS = 512
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_DELIVERY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def verify_webhook(
    secret: str,
    signature: str,
    body: bytes,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
    delivery_id: str | None = None,
) -> bool:
    """True when ``signature`` (the ``Tabjob-Signature`` header) signs ``body`` with ``secret``,
    at a time within ``tolerance_s`` of ``now``, and (when given) for ``delivery_id``. False for
    every malformed input, whatever its type: this function never raises.

    Parameters:
        secret: the ``webhook.secret`` the job was submitted with.
        signature: the header's value.
        body: the request's raw body.
        tolerance_s: how old (or early) the signed time may be, in seconds: older requests are
            refused, so a captured request cannot be replayed later.
        now: the current Unix time (default: the clock).
        delivery_id: the ``Tabjob-Delivery`` header; it must be the id the signature covers.
    """
    try:
        return _verify(secret, signature, body, tolerance_s, now, delivery_id)
    except Exception:  # whatever a caller or an attacker passes, the answer is "not verified"
        return False


def _verify(
    secret: object, signature: object, body: object, tolerance_s: object, now: object, delivery_id: object
) -> bool:
    if not (isinstance(secret, str) and secret and isinstance(signature, str) and isinstance(body, bytes | bytearray)):
        return False
    if len(signature) > MAX_HEADER_CHARS or not signature.isascii():
        return False
    fields: dict[str, str] = {}
    for part in signature.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name in fields:
            return False
        fields[name] = value
    stamp, given, signed_id = fields.get("t", ""), fields.get("v1", ""), fields.get("d")
    if not _TIMESTAMP.fullmatch(stamp) or not _DIGEST.fullmatch(given):
        return False
    if signed_id is not None and not _DELIVERY.fullmatch(signed_id):
        return False
    if delivery_id is not None and delivery_id != signed_id:
        return False
    clock = time.time() if now is None else now
    if not isinstance(clock, int | float) or not isinstance(tolerance_s, int | float):
        return False
    if not (math.isfinite(clock) and math.isfinite(tolerance_s)) or abs(clock - int(stamp)) > tolerance_s:
        return False
    signed = f"{stamp}.{signed_id}.".encode() if signed_id is not None else f"{stamp}.".encode()
    expected = hmac.new(secret.encode(), signed + bytes(body), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)
