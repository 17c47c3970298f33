"""Notifications of the registry and the schedules: alias moves and schedule failures.

Each is a notice in the tenant's feed (``GET /v1/notices``) and, where a webhook is configured
(the fit's ``webhook`` for a move it made, the schedule's ``webhook`` for its runs' moves and
failures), a POST signed as job-end webhooks are (``Tabjob-Signature``, ``app.webhooks.delivery.sign``),
with ``type`` ``registry.alias_moved`` or ``schedule.failed``.
"""

from __future__ import annotations

import json
from typing import Any

from app.core.settings import Settings
from app.state import State
from app.webhooks.delivery import SEALED_PREFIX, seal_secret, sealing_key

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
    """Put the notice for each webhook in the outbox (app/state/outbox.py): a delivery thread of
    any process POSTs it with the job webhooks' rules (deadline, retries, delivery id); one not
    delivered is itself a notice (``webhook.failed``), never a loop of them."""
    if not settings.webhooks_enabled:
        return
    body, key = json.dumps(notice, default=str), sealing_key(settings)
    for url, secret in webhooks:  # sealed in the outbox, as in job records
        sealed = secret if secret.startswith(SEALED_PREFIX) else seal_secret(key, secret)
        state.outbox.put(tenant, url, sealed, body, retention_s=state.jobs.retention_s)
