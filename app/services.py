"""The long-lived clients one API process shares between requests."""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq

from app.auth import ApiKeys
from app.jobs import actors
from app.jobs.broker import build_broker, redis_client
from app.settings import Settings
from app.state import StateStore
from app.storage import Store


@dataclass
class Services:
    settings: Settings
    state: StateStore
    store: Store
    broker: dramatiq.Broker
    keys: ApiKeys

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        client = redis_client(settings, decode=True)
        async_client = redis_client(settings, decode=True, asynchronous=True)
        broker = build_broker(settings)
        actors.declare(broker)
        return cls(
            settings=settings,
            state=StateStore(client=client, async_client=async_client, retention_s=settings.job_retention_s),
            store=Store.from_settings(settings),
            broker=broker,
            keys=ApiKeys(client=client),
        )
