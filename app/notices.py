"""Notifications of the registry and the schedules: alias moves and schedule failures.

Each is a notice in the tenant's feed (``GET /v1/notices``) and, where a webhook is configured
(the fit's ``webhook`` for a move it made, the schedule's ``webhook`` for its runs' moves and
failures), a POST signed as job-end webhooks are (``Tabjob-Signature``, ``app.webhooks.sign``),
with ``type`` ``registry.alias_moved`` or ``schedule.failed``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import httpx

from app.errors import UserError
from app.settings import Settings
from app.state import State
from app.webhooks import SIGNATURE_HEADER, check_webhook_url, sign

log = logging.getLogger("tabjob.notices")
Webhook = tuple[str, str]  # (url, secret)


def alias_moved(
    state: State, settings: Settings, tenant: str, name: str, alias: str, entry: dict[str, Any],
    webhooks: list[Webhook] | None = None,
) -> None:  # fmt: skip
    """Tell that ``alias`` of ``name`` moved (``entry``: the history entry of the move)."""
    text = f"{name}@{alias} moved to version {entry['version']} (from {entry.get('from')}): {entry.get('reason')}"
    notice = state.notices.add(tenant, "registry.alias_moved", text, name=name, alias=alias, move=entry)
    _post(state, settings, tenant, notice, webhooks or [])


def schedule_failed(
    state: State, settings: Settings, tenant: str, schedule_id: str, run: dict[str, Any], webhook: Webhook | None
) -> None:
    """Tell that a schedule's run could not submit its job (``run``: the run as recorded)."""
    text = f"Schedule {schedule_id} could not submit its job for {run['scheduled_for']}: {run.get('reason')}"
    notice = state.notices.add(tenant, "schedule.failed", text, schedule_id=schedule_id, run=run)
    _post(state, settings, tenant, notice, [webhook] if webhook else [])


def _post(state: State, settings: Settings, tenant: str, notice: dict[str, Any], webhooks: list[Webhook]) -> None:
    if not settings.webhooks_enabled:
        return
    for url, secret in webhooks:
        threading.Thread(
            target=_deliver, args=(state, settings, tenant, notice, url, secret), daemon=True, name="notice-webhook"
        ).start()


def _deliver(state: State, settings: Settings, tenant: str, notice: dict[str, Any], url: str, secret: str) -> None:
    """POST ``notice`` to ``url`` with the job webhooks' retry rules; a failed delivery is itself
    a notice (``webhook.failed``), never a loop of them."""
    body = json.dumps(notice, default=str).encode()
    outcome = "not tried"
    for attempt in range(1, settings.webhook_max_attempts + 1):
        try:
            check_webhook_url(url, allow_private=settings.webhook_allow_private_targets)
            headers = {"content-type": "application/json", "user-agent": "tabjob-webhook",
                       SIGNATURE_HEADER: sign(secret, int(time.time()), body)}  # fmt: skip
            response = httpx.post(url, content=body, headers=headers, timeout=settings.webhook_timeout_s)
            if 200 <= response.status_code < 300:
                return
            outcome = f"refused with HTTP {response.status_code}"
        except UserError as exc:
            outcome = exc.message
            break
        except httpx.HTTPError as exc:
            outcome = f"no answer ({type(exc).__name__})"
        if attempt < settings.webhook_max_attempts:
            time.sleep(settings.webhook_backoff_s * 2 ** (attempt - 1))
    log.info("notice webhook to %s failed: %s", url, outcome)
    try:
        state.notices.add(tenant, "webhook.failed", f"The {notice['type']} webhook was not delivered: {outcome}.")
    except Exception:  # the broker may be down: the log line says it
        log.warning("could not record the failed notice webhook", exc_info=True)
