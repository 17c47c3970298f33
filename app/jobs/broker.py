"""The Dramatiq broker on Valkey, tuned so an idle worker starts new work at once.

Dramatiq's Redis consumer sleeps with exponential back-off (up to its idle timeout) between
empty polls, and also while its one prefetch slot is busy, so both a new job on an idle system
and the next job after a finished one could wait up to that timeout. Here every enqueue also
pushes a wake-up token that idle consumers block on (BLPOP), and an ack wakes the consumer of a
busy worker directly. Heartbeats still flow: every wake-up or idle timeout fetches again.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
import redis
import redis.asyncio
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import Middleware, Retries

from app.core.domain import LANES
from app.core.errors import InfraError
from app.core.keys import DRAMATIQ_NAMESPACE
from app.core.settings import Settings
from app.core.waiting import wait_until
from app.state.broker_auth import connection_options

NAMESPACE = DRAMATIQ_NAMESPACE
# Extra wake-up tokens only cost an empty fetch; keep a few so bursts wake several workers.
MAX_WAKE_TOKENS = 16
IDLE_TIMEOUT_MS = 1000
# How often a worker retries an enqueue while the broker is unreachable.
OUTAGE_RETRY_INTERVAL_S = 0.5
# The one actor (app.jobs.actors): run a job by id.
ACTOR_NAME = "run_job"


def wake_key(queue_name: str) -> str:
    return f"{NAMESPACE}:wake:{queue_name}"


class WakingConsumer(_RedisConsumer):
    """A Redis consumer that blocks on wake-up tokens instead of sleeping between polls."""

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self._slot_free = threading.Event()
        self._wake_key = wake_key(queue_name)

    def ack(self, message: dramatiq.MessageProxy) -> None:
        try:
            super().ack(message)
        finally:
            self._slot_free.set()

    def nack(self, message: dramatiq.MessageProxy) -> None:
        try:
            super().nack(message)
        finally:
            self._slot_free.set()

    def __next__(self) -> dramatiq.MessageProxy | None:
        try:
            if not self.message_cache:
                if self.outstanding_message_count >= self.prefetch:
                    # Busy: wait for our own ack rather than polling.
                    self._slot_free.wait(self.timeout / 1000)
                    self._slot_free.clear()
                    return None
                self.message_cache = self.broker.do_fetch(
                    self.queue_name, self.prefetch - self.outstanding_message_count
                )
                if not self.message_cache:
                    self.broker.client.blpop([self._wake_key], timeout=self.timeout / 1000)
                    return None
            data = self.message_cache.pop(0)
            message = dramatiq.Message.decode(data)
            self.queued_message_ids.add(message.message_id)
            return dramatiq.MessageProxy(message)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None


class TabjobBroker(RedisBroker):
    """RedisBroker with wake-up tokens on enqueue and the waking consumer.

    Parameters:
      outage_wait_s: how long ``enqueue`` keeps trying while the broker cannot be reached, in
        seconds (0: fail at once). Workers wait: the retry of a job that failed because the
        broker went away is enqueued once it is back, instead of being dropped while Dramatiq
        acks the failed attempt. The API does not: a client gets a 503 and retries.
    """

    def __init__(self, *args: Any, outage_wait_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage_wait_s = outage_wait_s

    @property
    def consumer_class(self) -> type[WakingConsumer]:
        return WakingConsumer

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        if self.outage_wait_s <= 0:
            return self._enqueue_once(message, delay)
        return wait_until(
            lambda: self._enqueue_once(message, delay),
            what=f"the broker to take message {message.message_id}",
            timeout_s=self.outage_wait_s,
            interval_s=OUTAGE_RETRY_INTERVAL_S,
            ignore=(redis.ConnectionError, redis.TimeoutError),
        )

    def _enqueue_once(self, message: dramatiq.Message, delay: int | None) -> dramatiq.Message:
        message = super().enqueue(message, delay=delay)
        if delay is None:
            key = wake_key(message.queue_name)
            pipe = self.client.pipeline(transaction=False)
            pipe.rpush(key, 1)
            pipe.ltrim(key, 0, MAX_WAKE_TOKENS - 1)
            pipe.expire(key, 3600)
            pipe.execute()
        return message


def redis_client(settings: Settings, *, decode: bool, asynchronous: bool = False) -> Any:
    """A client for the broker's Valkey, logged in and checking the server as the settings say
    (app.state.broker_auth); an asyncio one for routes that await their reads."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    login_and_tls = connection_options(
        settings.redis_url,
        auth=settings.redis_auth,
        password=password,
        ca_file=settings.redis_ca_file,
        check_hostname=settings.redis_tls_check_hostname,
    )
    factory = redis.asyncio.Redis if asynchronous else redis.Redis
    return factory.from_url(
        settings.redis_url,
        **login_and_tls,
        decode_responses=decode,
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=30,
        retry_on_timeout=True,
    )


def is_platform_error(retries: int, exc: BaseException, *, max_retries: int) -> bool:
    """Retry only what the platform caused (never bad data), a bounded number of times."""
    return isinstance(exc, InfraError | redis.RedisError) and retries < max_retries


def build_broker(
    settings: Settings, *, extra_middleware: list[Middleware] | None = None, outage_wait_s: float = 0.0
) -> TabjobBroker:
    """The broker with our middleware; every lane's queue declared. ``outage_wait_s``: see
    TabjobBroker (workers pass settings.broker_outage_wait_s)."""
    retries = Retries(
        max_retries=settings.max_retries,
        min_backoff=int(settings.retry_min_backoff_s * 1000),
        max_backoff=int(settings.retry_max_backoff_s * 1000),
        retry_when=lambda n, exc: is_platform_error(n, exc, max_retries=settings.max_retries),
    )
    broker = TabjobBroker(
        client=redis_client(settings, decode=False),
        namespace=NAMESPACE,
        # Dramatiq runs after_* hooks in reverse order: middleware listed before Retries sees
        # its decision (message.failed) when a job raised.
        middleware=[*(extra_middleware or []), retries],
        heartbeat_timeout=int(settings.broker_heartbeat_timeout_s * 1000),
        maintenance_chance=settings.broker_maintenance_chance,
        outage_wait_s=outage_wait_s,
    )
    for lane in LANES:
        broker.declare_queue(lane)  # declares its delay queue (where retries wait) too
    return broker


def enqueue(broker: dramatiq.Broker, job_id: str, lane: str) -> None:
    """Send ``job_id`` to ``lane``'s queue, for the actor (declared only in workers)."""
    message = dramatiq.Message(queue_name=lane, actor_name=ACTOR_NAME, args=(job_id,), kwargs={}, options={})
    broker.enqueue(message)
