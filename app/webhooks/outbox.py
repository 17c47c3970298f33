"""Delivery of the webhook outbox (``app.state.outbox``): a fixed pool of threads per process.

Every API and worker process with webhooks on runs ``DELIVERY_THREADS`` delivery threads, however
many notifications wait: each claims one due entry at a time under a lease, makes one attempt
(``app.webhooks.delivery.attempt``: the checked address, a total deadline), then settles it: delivered or
given up (the entry goes, the outcome is a ``webhook`` event on the job), or due again after an
exponential back-off. A process that dies holding a claim leaves the entry to be claimed by
another once the lease (the attempt's deadline plus ``LEASE_MARGIN_S``) runs out; the delivery id
(``Tabjob-Delivery``) stays the same on every attempt, so a receiver drops duplicates.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from app.core.settings import Settings
from app.state import State
from app.state.outbox import Claimed
from app.webhooks.delivery import (
    ATTEMPT_DEADLINE_S,
    SEALED_PREFIX,
    TENANT_IN_FLIGHT,
    Attempt,
    attempt,
    open_secret,
    payload,
    seal_secret,
    sealing_key,
)

log = logging.getLogger("tabjob.webhooks")
# Delivery threads per process: notifications beyond them wait in the outbox, not in threads.
DELIVERY_THREADS = 4
# A claim lasts the attempt's deadline plus this margin (the outcome's writes, a slow broker).
LEASE_MARGIN_S = 20.0
# How often an idle delivery thread looks for due entries another process left (a local end
# wakes the threads at once).
POLL_S = 1.0


def notifier_for(settings: Settings, state: State) -> Notifier | None:
    """The process's delivery pool (not yet started), None when webhooks are off."""
    if not settings.webhooks_enabled:
        return None
    return Notifier(
        state=state,
        allow_private=settings.webhook_allow_private_targets,
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
        sealing_key=sealing_key(settings),
    )


@contextmanager
def delivering(notifier: Notifier | None, drain_s: float) -> Iterator[None]:
    """The delivery threads run for the block (an API process's life); then attempts in flight
    get ``drain_s`` to end. Nothing when webhooks are off (``notifier`` None)."""
    if notifier is not None:
        notifier.start()
    try:
        yield
    finally:
        if notifier is not None:
            notifier.drain(drain_s)


class Notifier:
    """Delivers the outbox's notifications on ``threads`` background threads.

    Parameters:
        state: the Valkey state holding the outbox, the jobs and their events.
        allow_private: let URLs resolve to loopback and private addresses, on any port.
        max_attempts: tries per notification (1 = no retry), counting those of dead processes.
        backoff_s: the pause before the second try; it doubles after each failed try.
        timeout_s: the receiver's time to answer one try, in all (at most ``ATTEMPT_DEADLINE_S``).
        sealing_key: opens secrets sealed in job records; plain secrets pass as they are.
        lease_s: how long a claim holds an entry (default: the deadline plus ``LEASE_MARGIN_S``).
    """

    def __init__(
        self,
        *,
        state: State,
        allow_private: bool,
        max_attempts: int,
        backoff_s: float,
        timeout_s: float,
        sealing_key: bytes | None = None,
        threads: int = DELIVERY_THREADS,
        lease_s: float | None = None,
        poll_s: float = POLL_S,
        tenant_cap: int = TENANT_IN_FLIGHT,
    ) -> None:
        self.state, self.allow_private, self.max_attempts = state, allow_private, max_attempts
        self.backoff_s, self.timeout_s = backoff_s, min(timeout_s, ATTEMPT_DEADLINE_S)
        self.sealing_key, self.threads, self.poll_s, self.tenant_cap = sealing_key, threads, poll_s, tenant_cap
        self.lease_s = self.timeout_s + LEASE_MARGIN_S if lease_s is None else lease_s
        if self.lease_s <= self.timeout_s:
            raise ValueError("a claim's lease must outlast the attempt's deadline")
        self._wake, self._stop = threading.Event(), threading.Event()
        self._stop.set()  # not started
        self._lock = threading.Lock()
        self._pool: list[threading.Thread] = []

    def start(self) -> None:
        """Start the delivery threads (once)."""
        with self._lock:
            if not self._stop.is_set():
                return
            # Each start has its own stop event: a thread of an earlier start still finishing an
            # attempt after ``drain`` ends with it, never joining the new pool.
            self._stop, self._pool = threading.Event(), []
            for i in range(self.threads):
                name = f"webhook-delivery-{i}"
                thread = threading.Thread(target=self._loop, args=(self._stop,), name=name, daemon=True)
                thread.start()
                self._pool.append(thread)

    def wake(self) -> None:
        """Tell the threads a notification is due now (a job this process ended)."""
        self.start()
        self._wake.set()

    def put(self, tenant: str, url: str, secret: str, body: dict[str, Any]) -> str:
        """Add a notification that is not a job's end (a registry or schedule notice) and wake
        the threads; returns its delivery id."""
        text = json.dumps(body, default=str)
        if self.sealing_key is not None and not secret.startswith(SEALED_PREFIX):
            secret = seal_secret(self.sealing_key, secret)  # never plain in the broker
        delivery_id = self.state.outbox.put(tenant, url, secret, text, retention_s=self.state.jobs.retention_s)
        self.wake()
        return delivery_id

    def drain(self, timeout_s: float) -> None:
        """Stop claiming and wait (at most ``timeout_s`` in all) for attempts in flight: a process
        calls it before exiting. What is still due stays in the outbox for the other processes."""
        with self._lock:
            self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._pool:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self.deliver_next():
                    continue
            except Exception:  # the broker may be down: try again later, never let the thread die
                log.warning("webhook delivery: the outbox could not be read", exc_info=True)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def deliver_next(self) -> bool:
        """Claim one due notification and make one attempt at it; False when none was due."""
        claimed = self.state.outbox.claim(lease_s=self.lease_s, tenant_cap=self.tenant_cap)
        if claimed is None:
            return False
        target = self._target(claimed)
        if isinstance(target, str):  # nothing to send: give up at once
            self._settle(claimed, "", Attempt(False, target, False))
            return True
        url, secret, body = target
        if claimed.attempts > self.max_attempts:  # the last tries' processes died holding it
            self._settle(claimed, url, Attempt(False, "no answer before its delivering process stopped", False))
            return True
        self._settle(claimed, url, attempt(url, secret, body, claimed.delivery_id,
                                           allow_private=self.allow_private, timeout_s=self.timeout_s))  # fmt: skip
        return True

    def _target(self, claimed: Claimed) -> tuple[str, str, bytes] | str:
        """(URL, secret in plain, body) of the notification, or why it cannot be sent."""
        if claimed.job_id is not None:
            job = self.state.jobs.get(claimed.job_id)
            if job is None or not job.webhook_url or not job.webhook_secret:
                return "the job's record is gone"
            url, secret = job.webhook_url, job.webhook_secret
            body = json.dumps(payload(job.to_fields()), default=str).encode()
        else:
            url, secret, body = claimed.url or "", claimed.secret or "", (claimed.body or "").encode()
        if self.sealing_key is not None and secret.startswith(SEALED_PREFIX):
            try:
                secret = open_secret(self.sealing_key, secret)
            except ValueError:  # sealed under another key (rotated): nothing to sign with
                return "its secret does not open with this service's key"
        return url, secret, body

    def _settle(self, claimed: Claimed, url: str, result: Attempt) -> None:
        """Settle the claim after ``result`` and record it (only while the claim is still ours)."""
        where = f"Webhook to {urlsplit(url).hostname or url}: {result.outcome}"
        message = f"{where} (attempt {claimed.attempts} of {self.max_attempts})."
        final = result.delivered or not result.retry or claimed.attempts >= self.max_attempts
        if final:
            if self.state.outbox.done(claimed):
                log.info("delivery %s: %s", claimed.delivery_id, message)
                self._record(claimed, message, final=True, delivered=result.delivered)
            return
        wait_s = self.backoff_s * 2 ** (claimed.attempts - 1)
        if self.state.outbox.retry_at(claimed, time.time() + wait_s):
            self._record(claimed, f"{message[:-1]}; next try in {wait_s:g} s.", final=False, delivered=False)

    def _record(self, claimed: Claimed, message: str, *, final: bool, delivered: bool) -> None:
        """The outcome on the job (``webhook_outcome``, and a ``webhook`` event when final), or a
        ``webhook.failed`` notice for a notice that was not delivered."""
        try:
            if claimed.job_id is not None and self.state.conn.r.exists(self.state.keys.job(claimed.job_id)):
                self.state.jobs.update(claimed.job_id, webhook_outcome=message)
                if final:
                    self.state.events.add(claimed.job_id, "webhook", message)
            elif final and not delivered:
                kind = json.loads(claimed.body or "{}").get("type", "notice")
                text = f"The {kind} webhook was not delivered: {message}"
                self.state.notices.add(claimed.tenant, "webhook.failed", text)
        except Exception:  # recording the outcome must never kill the thread loudly
            log.warning("delivery %s: could not record its outcome", claimed.delivery_id, exc_info=True)
