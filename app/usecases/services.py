"""The long-lived clients one API process shares between requests."""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq

from app.core.auth import ApiKeys
from app.core.settings import Settings
from app.core.storage import Store
from app.jobs.broker import build_broker, redis_client
from app.state import State
from app.webhooks.outbox import Notifier, notifier_for


@dataclass
class Services:
    settings: Settings
    state: State
    store: Store
    broker: dramatiq.Broker
    keys: ApiKeys
    # Notifies the webhooks of jobs the API ends (a queued job canceled); None when webhooks are off.
    notifier: Notifier | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        client = redis_client(settings, decode=True)
        async_client = redis_client(settings, decode=True, asynchronous=True)
        state = State(client=client, async_client=async_client, retention_s=settings.job_retention_s)
        return cls(
            settings=settings,
            state=state,
            store=Store.from_settings(settings),
            broker=build_broker(settings),
            keys=ApiKeys(client=client),
            notifier=notifier_for(settings, state),
        )
