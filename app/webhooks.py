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
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from app.errors import UserError
from app.settings import Settings

if TYPE_CHECKING:
    from app.state import State

log = logging.getLogger("tabjob.webhooks")
SIGNATURE_HEADER = "Tabjob-Signature"
MIN_SECRET_CHARS = 16
# Statuses worth another try: the receiver was busy or failing, not refusing the request.
# Webhooks reach web servers: other ports would let the service probe anything that listens.
ALLOWED_PORTS = frozenset({80, 443})
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


def _refuse(message: str, code: str = "webhook.forbidden_target") -> UserError:
    return UserError(
        message,
        code=code,
        hint="Give a public http(s) URL that your receiver answers on (private and loopback addresses are refused).",
        status=422,
    )


def check_target(url: str, *, allow_private: bool) -> str:
    """``url`` when it may be notified; a UserError (422) naming why not otherwise (see ``resolve_target``)."""
    resolve_target(url, allow_private=allow_private)
    return url


def embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped ``::ffff:a.b.c.d``, compatible ``::a.b.c.d``,
    6to4 ``2002::/16``, Teredo, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``), or None: a
    gateway on the way may turn it into a connection to that IPv4 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    packed = address.packed
    if address in _NAT64 or address in _NAT64_LOCAL or packed[:12] == bytes(12):
        return ipaddress.IPv4Address(packed[12:])  # the RFC 6052 /96 form; ::a.b.c.d (deprecated) too
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None and not _public(inner):
        return False
    if isinstance(address, ipaddress.IPv6Address) and (address in _NAT64 or address in _NAT64_LOCAL):
        return True  # judged by the IPv4 address it carries (above); the prefix itself is "reserved"
    return address.is_global and not address.is_multicast


def resolve_target(url: str, *, allow_private: bool) -> list[str]:
    """The addresses ``url``'s host resolves to, each checked; a UserError (422) naming why not.

    Every address must be public (global), also the IPv4 address inside a mapped, 6to4, Teredo
    or NAT64 one, and the port 80 or 443, unless ``allow_private`` (tests, a laptop). The caller
    connects to one of these addresses (never resolving again), so a name that answers a public
    address for the check and a private one for the connection (DNS rebinding) cannot get in.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(f"The webhook URL '{url}' is not an http(s) URL.", "webhook.invalid_url")
    if parts.username or parts.password:
        raise _refuse("The webhook URL must not carry credentials; use the signing secret.", "webhook.invalid_url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise _refuse(f"The webhook URL '{url}' has an invalid port.", "webhook.invalid_url") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _refuse(f"The webhook host '{parts.hostname}' does not resolve ({exc}).", "webhook.invalid_url") from exc
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not allow_private:
        for text in addresses:
            if not _public(ipaddress.ip_address(text)):
                raise _refuse(f"The webhook host '{parts.hostname}' resolves to {text}, which is not a public address.")
        if port not in ALLOWED_PORTS:
            raise _refuse(f"The webhook URL's port {port} is not allowed; use 443 or 80.", "webhook.forbidden_port")
    return addresses


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL to connect to ``address`` (already checked) instead of resolving ``url``'s host
    again, with the ``Host`` header and TLS server name (SNI, and the name the certificate must
    match) of the original host."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    extensions: dict[str, Any] = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"host": parts.netloc}, extensions


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


# Webhook secrets in job records are sealed (encrypt-then-MAC: an HMAC-SHA256 keystream and an
# HMAC-SHA256 tag, standard library only), so a read of Valkey or of a record does not give them.
SEALED_PREFIX = "sealed:v1:"


def sealing_key(settings: Settings) -> bytes:
    """The key that seals webhook secrets: ``webhook_sealing_key``, else derived from the S3
    secret key (which every API and worker process holds, and job processes do not)."""
    configured = settings.webhook_sealing_key
    material = configured.get_secret_value() if configured is not None else settings.s3_secret_key.get_secret_value()
    return hashlib.sha256(b"tabjob webhook sealing\0" + material.encode()).digest()


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (
        hmac.new(key, b"enc" + nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(length // 32 + 1)
    )
    return b"".join(blocks)[:length]


def seal_secret(key: bytes, secret: str) -> str:
    """``secret`` sealed for a job record."""
    nonce, plain = secrets.token_bytes(16), secret.encode()
    cipher = bytes(a ^ b for a, b in zip(plain, _keystream(key, nonce, len(plain)), strict=True))
    tag = hmac.new(key, b"mac" + nonce + cipher, hashlib.sha256).digest()[:16]
    return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + cipher + tag).decode()


def open_secret(key: bytes, sealed: str) -> str:
    """The secret ``seal_secret`` sealed; ValueError when it was not sealed with ``key`` or was changed."""
    raw = base64.urlsafe_b64decode(sealed.removeprefix(SEALED_PREFIX).encode())
    nonce, cipher, tag = raw[:16], raw[16:-16], raw[-16:]
    if not hmac.compare_digest(tag, hmac.new(key, b"mac" + nonce + cipher, hashlib.sha256).digest()[:16]):
        raise ValueError("the sealed webhook secret does not open with this key")
    return bytes(a ^ b for a, b in zip(cipher, _keystream(key, nonce, len(cipher)), strict=True)).decode()
