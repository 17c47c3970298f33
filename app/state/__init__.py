"""Job and dataset records, their events, and the counters behind limits and queue positions,
kept in Valkey. One module per concern:

- ``app.core.keys``: where everything lives (the one place that spells a key; in core, so the
  embedded stack's supervisor names a key without loading a client);
- ``jobs``: job records and their atomic transitions (status and counters in one script);
- ``events``: each job's timeline;
- ``datasets``: dataset records;
- ``claims``: deduplication and idempotency claims;
- ``lanes``: live workers, load, and why a queued job waits;
- ``reaper``: repairs the counters a crashed worker leaves;
- ``dataset_versions``, ``registry``, ``schedules``, ``notices``: named datasets, the model
  registry, schedules and their notices;
- ``outbox``: webhook notifications waiting for delivery;
- ``connection``: one read path for the blocking and the asyncio client.
"""

from __future__ import annotations

import redis
import redis.asyncio

from app.core.keys import KEYS, Keys, lane_workers_key
from app.state.claims import Claims
from app.state.connection import Conn
from app.state.dataset_versions import DatasetVersions
from app.state.datasets import Datasets
from app.state.events import MAX_EVENTS, Events
from app.state.jobs import Jobs, TenantBusy
from app.state.lanes import WORKER_ALIVE_S, Lanes, Waiting
from app.state.notices import Notices
from app.state.outbox import Outbox
from app.state.reaper import Reaped, Reaper
from app.state.registry import Registry
from app.state.schedules import Schedules


class State:
    """Everything the service keeps in Valkey, by concern: ``state.jobs``, ``state.events``...

    Parameters:
      client: a redis client with ``decode_responses=True``.
      retention_s: how long ended jobs and their events are kept, in seconds.
      async_client: an asyncio client on the same server, for routes that await their reads.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        retention_s: int,
        keys: Keys = KEYS,
        async_client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.conn = Conn(client, async_client)
        self.keys = keys
        self.jobs = Jobs(self.conn, keys, retention_s=retention_s)
        self.events = Events(self.conn, keys)
        self.datasets = Datasets(self.conn, keys)
        self.claims = Claims(self.conn, keys)
        self.lanes = Lanes(self.conn, keys)
        self.reaper = Reaper(self.conn, keys, self.events)
        # Models over time (app/usecases/registry.py, app/usecases/schedules.py).
        self.dataset_versions = DatasetVersions(self.conn, keys)
        self.registry = Registry(self.conn, keys)
        self.schedules = Schedules(self.conn, keys)
        self.notices = Notices(self.conn, keys)
        # Webhook notifications waiting for delivery (app/webhooks/outbox.py).
        self.outbox = Outbox(self.conn, keys)

    def ping(self) -> None:
        """Raise InfraError unless the broker answers."""
        self.conn.ping()


__all__ = [
    "KEYS",
    "MAX_EVENTS",
    "WORKER_ALIVE_S",
    "Keys",
    "Reaped",
    "State",
    "TenantBusy",
    "Waiting",
    "lane_workers_key",
]
