"""Queue depth, jobs in flight and workers per lane, read from Valkey when Prometheus scrapes.

Gauges set by the process that changes them would be wrong as soon as another process (another
API replica, a worker) changes the same thing; Valkey holds the truth, so a custom collector
reads it at scrape time: Dramatiq's ``dramatiq:<lane>.msgs`` hash (pending and in-flight
messages: what KEDA scales on), its delay and dead-letter queues, and tabjob's lane sets (queued
jobs, running jobs, worker heartbeats). Only the API exports these; several API replicas export
the same values, so queries take ``max by (lane)``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.core.keys import lane_queue
from app.state import KEYS, WORKER_ALIVE_S, Keys

log = logging.getLogger("tabjob.metrics")


def lane_snapshot(r: redis.Redis, lane: str, *, keys: Keys = KEYS) -> dict[str, Any]:
    """One lane's load in two round trips: message counts, queued and running jobs, the oldest
    queued job's age in seconds, the live workers and which of them run a job."""
    now = time.time()
    queue = lane_queue(lane)  # Dramatiq's keys for the lane's queue
    pipe = r.pipeline(transaction=False)
    pipe.llen(queue)
    pipe.hlen(f"{queue}.msgs")
    pipe.hlen(f"{queue}.DQ.msgs")
    pipe.zcard(f"{queue}.XQ")
    pipe.zcard(keys.lane(lane, "queued"))
    pipe.zrange(keys.lane(lane, "since"), 0, 0, withscores=True)  # by queue time, not pick order
    pipe.smembers(keys.lane(lane, "running"))
    pipe.zrangebyscore(keys.lane_workers(lane), now - WORKER_ALIVE_S, "+inf", withscores=True)
    pending, messages, delayed, dead, queued, oldest, running, workers = pipe.execute()
    running_ids = sorted(running)
    pipe = r.pipeline(transaction=False)
    for job_id in running_ids:
        pipe.hget(keys.job(job_id), "worker")
    runs_on = {job_id: json.loads(w) for job_id, w in zip(running_ids, pipe.execute(), strict=True) if w}
    alive = {worker: seen for worker, seen in workers}
    busy = {w for w in runs_on.values() if w in alive}
    return {
        "lane": lane,
        "pending_messages": pending,
        "messages": messages,
        "delayed_messages": delayed,
        "dead_messages": dead,
        "queued": queued,
        "running": len(running_ids),
        "oldest_queued_age_s": max(0.0, now - oldest[0][1]) if oldest else 0.0,
        "workers": alive,
        "busy_workers": busy,
        "runs_on": runs_on,
    }


class QueueCollector(Collector):
    """A prometheus-client collector of every lane's load.

    Parameters:
      client: a redis client with ``decode_responses=True`` on the broker's Valkey.
      lanes: the lanes to report.
    """

    def __init__(self, *, client: redis.Redis, lanes: Iterable[str], keys: Keys = KEYS) -> None:
        self.r = client
        self.lanes = tuple(lanes)
        self.keys = keys

    def describe(self) -> list[Any]:
        return []  # nothing at registration time: collect() talks to Valkey

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("tabjob_broker_up", "1 when the API could read the queues from Valkey, else 0.")
        try:
            snapshots = [lane_snapshot(self.r, lane, keys=self.keys) for lane in self.lanes]
        except redis.RedisError as exc:
            log.warning("could not read the queues for /metrics: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _families(snapshots)


def _families(snapshots: list[dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    simple = {
        "tabjob_queue_messages": ("messages", "Messages of the lane's Dramatiq queue, pending and in flight."),
        "tabjob_queue_pending_messages": ("pending_messages", "Messages waiting for a worker to fetch them."),
        "tabjob_queue_delayed_messages": ("delayed_messages", "Messages waiting out a retry back-off or a delay."),
        "tabjob_queue_dead_messages": ("dead_messages", "Messages of failed jobs in the dead-letter queue."),
        "tabjob_jobs_queued": ("queued", "Jobs queued on the lane (submitted, not yet started)."),
        "tabjob_jobs_running": ("running", "Jobs running on the lane (in flight)."),
        "tabjob_oldest_queued_job_age_seconds": (
            "oldest_queued_age_s",
            "How long the lane's oldest queued job has waited; 0 when none waits.",
        ),
    }
    for name, (field, text) in simple.items():
        family = GaugeMetricFamily(name, text, labels=["lane"])
        for snap in snapshots:
            family.add_metric([snap["lane"]], snap[field])
        yield family
    workers = GaugeMetricFamily(
        "tabjob_workers",
        "Live workers of the lane (heartbeat in the last 30 s), busy or idle.",
        labels=["lane", "state"],
    )
    for snap in snapshots:
        busy = len(snap["busy_workers"])
        workers.add_metric([snap["lane"], "busy"], busy)
        workers.add_metric([snap["lane"], "idle"], len(snap["workers"]) - busy)
    yield workers
