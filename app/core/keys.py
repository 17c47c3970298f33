"""Where each record and counter lives in Valkey: the one place that spells a key.

Everything is under ``tabjob:`` so admins and users read one place. The stack, the tests and
the benchmarks call these helpers instead of writing keys by hand; the Lua scripts in
``app.state.scripts`` build the same names from the prefix (kept in step by a test).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "tabjob"
# Dramatiq's namespace: a lane's queue of slot tokens is ``dramatiq:<lane>``, with its messages
# (pending or in flight) in ``dramatiq:<lane>.msgs`` and delayed ones in ``dramatiq:<lane>.DQ.msgs``
# (app.jobs.broker). Spelled here too for what reads them without Dramatiq (the stack's supervisor).
DRAMATIQ_NAMESPACE = "dramatiq"


@dataclass(frozen=True)
class Keys:
    """Key names under ``prefix``."""

    prefix: str = PREFIX

    def job(self, job_id: str) -> str:
        """The job's record (a hash of JSON-encoded fields)."""
        return f"{self.prefix}:job:{job_id}"

    def events(self, job_id: str) -> str:
        """The job's timeline (a list of JSON events, the newest last)."""
        return f"{self.prefix}:job:{job_id}:events"

    def events_total(self, job_id: str) -> str:
        """How many events the job ever had (the trimmed ones included)."""
        return f"{self.prefix}:job:{job_id}:events_total"

    def dataset(self, dataset_id: str) -> str:
        return f"{self.prefix}:dataset:{dataset_id}"

    def tenants(self) -> str:
        """Every tenant that ever submitted a job (the reaper walks their counters)."""
        return f"{self.prefix}:tenants"

    def estimates(self, kind: str, model: str) -> str:
        """The run times of finished jobs of a kind and model family (a list, newest first)."""
        return f"{self.prefix}:estimates:{kind}:{model}"

    def tenant(self, tenant: str, what: str) -> str:
        """A tenant's ``jobs`` / ``datasets`` (sorted by creation) or ``queued`` / ``running`` sets."""
        return f"{self.prefix}:tenant:{tenant}:{what}"

    def lane(self, lane: str, what: str) -> str:
        """A lane's ``queued`` (sorted by pick order: queue time plus cost handicap), ``since``
        (the same jobs by queue time), ``running`` or ``workers`` (by heartbeat)."""
        return f"{self.prefix}:lane:{lane}:{what}"

    def lane_workers(self, lane: str) -> str:
        """The lane's live workers: a sorted set of worker ids scored by their last heartbeat."""
        return self.lane(lane, "workers")

    def failures(self, tenant: str | None = None) -> str:
        """Recent failures (a capped list of JSON summaries, newest first): everyone's, or a
        tenant's (``app.observability.failures``)."""
        return f"{self.prefix}:failures" if tenant is None else self.tenant(tenant, "failures")

    def claim(self, name: str) -> str:
        """A deduplication or idempotency claim (``dedup:…``, ``idem:…``)."""
        return f"{self.prefix}:{name}"

    def reaper_lock(self) -> str:
        return f"{self.prefix}:reaper"

    def awaiting_upload(self) -> str:
        """Every dataset handed an upload URL, as ``<tenant>/<dataset id>`` scored by the URL's
        expiry: the retention sweep deletes those still without bytes after the grace period."""
        return f"{self.prefix}:datasets:awaiting-upload"

    def outbox(self, what: str) -> str:
        """The webhook outbox (``app.state.outbox``): ``due`` (delivery ids by when each is next
        due), ``entry:<delivery id>`` (a hash) and ``leased:<tenant>`` (the tenant's claims)."""
        return f"{self.prefix}:outbox:{what}"


KEYS = Keys()


def lane_queue(lane: str) -> str:
    """Dramatiq's queue of ``lane``'s slot tokens (``.msgs``, ``.DQ.msgs`` after it)."""
    return f"{DRAMATIQ_NAMESPACE}:{lane}"


def lane_workers_key(lane: str) -> str:
    """The key of ``lane``'s live workers (for the stack and tests that wait for a worker)."""
    return KEYS.lane_workers(lane)
