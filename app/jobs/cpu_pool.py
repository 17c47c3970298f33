"""The core pool: a job takes the cores free when it starts (up to what its size can use) and gives
them back when it ends.

A static split (each of N workers gets cores / N threads) leaves cores idle while a lone job runs:
on a 2-core machine with 5 workers a lone fit ran on one thread, 1.85x slower than in-process. A
pool is work-conserving instead: a lone job takes every core, a burst shares them, and the
threads of the running jobs together never exceed the cores.

Two pools, one contract (``acquire`` / ``renew`` / ``release`` of a lease):

- ``LocalCorePool``: the process's own cores (a pod's cgroup quota, ``app.core.cpu``); the consumers
  of one worker process share it.
- ``SharedCorePool``: one pool in Valkey for every worker process of one machine (``tabjob
  stack``). Each grant is a lease that expires unless renewed, so the cores of a worker killed
  mid-job come back on their own; grants are made by one Lua script, so two workers can never
  take the same core.

The workers reserved for small work (``TABJOB_WORKER_SMALL_WORK_CONSUMERS``) take a core from the
pool when one is free and otherwise run their single-threaded job at once anyway: a toy never
waits behind big fits, at the cost of at most one extra thread per reserved worker for the
second or so a small job lasts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import redis

log = logging.getLogger("tabjob.cores")
# A lease not renewed for this long is free again (its worker died): a few renewals' worth.
LEASE_TTL_S = 15.0
RENEW_EVERY_S = 3.0
# How often a job waiting for a core asks again: in a burst every fit but the first waits for
# the cores of the one before, and the cores idle half a poll on average at each hand-over (one
# Lua call on Valkey per poll; 100 a second for each job waiting is nothing to it).
WAIT_POLL_S = 0.01
# How often a job waiting for a core checks whether it was canceled.
WAIT_CANCEL_CHECK_S = 0.5
# How long a job waits for all the cores it wants before it takes what is free. Started on the
# one core a finishing job had freed, a fit ran on one thread to its end, and the next one did the
# same, so a burst of 8 fits of 75,000 x 50 on 2 cores ran two one-thread fits at a time (2.7 to
# 3.0 s each, where one on both cores took 1.3 s: 1.27x a plain loop). Waiting a moment for the
# other job's core is cheaper; a job that holds cores for long (a one-core job of many rounds)
# delays it by this much at most.
FULL_WIDTH_WAIT_S = 2.0

# KEYS[1]: the pool's hash (lease id -> "<cores>:<expiry ms>"). ARGV: lease id, cores wanted,
# cores in the pool, lease ttl ms, fewest cores worth taking. Drops expired leases, then grants
# min(wanted, free) cores, or none (0, nothing held) when fewer than the fewest are free. The
# server's clock decides expiry: every worker sees the same one.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local used = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local n, exp = string.match(entries[i + 1], '(%d+):(%d+)')
  if tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], entries[i])
  elseif entries[i] ~= ARGV[1] then
    used = used + tonumber(n)
  end
end
local grant = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - used)
if grant < math.max(1, tonumber(ARGV[5] or 1)) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], grant .. ':' .. (now + tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) * 4)
return grant
"""
# KEYS[1]: the pool's hash. ARGV: lease id, lease ttl ms. Extends a lease still held; 0 if gone.
RENEW = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = string.match(held, '(%d+):')
redis.call('HSET', KEYS[1], ARGV[1], n .. ':' .. (now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
return tonumber(n)
"""


class CorePool(Protocol):
    """Cores handed out as leases. ``total`` is the pool's size."""

    total: int

    def acquire(self, lease_id: str, want: int, at_least: int = 1) -> int:
        """Take up to ``want`` free cores for ``lease_id``; the number taken (0: fewer than
        ``at_least`` free, none taken)."""
        ...

    def renew(self, lease_id: str) -> None:
        """Keep ``lease_id``'s cores (shared pools expire leases that are not renewed)."""
        ...

    def release(self, lease_id: str) -> None:
        """Give ``lease_id``'s cores back."""
        ...

    def held(self) -> int:
        """Cores held by live leases now."""
        ...


class LocalCorePool:
    """The cores of this process (a pod's quota), shared by its consumers.

    Parameters:
      total: cores in the pool (``Settings.threads_for_worker()``: the cgroup quota or affinity).
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self._lock = threading.Lock()
        self._leases: dict[str, int] = {}

    def acquire(self, lease_id: str, want: int, at_least: int = 1) -> int:
        with self._lock:
            used = sum(n for lease, n in self._leases.items() if lease != lease_id)
            grant = min(want, self.total - used)
            if grant < max(1, at_least):
                self._leases.pop(lease_id, None)
                return 0
            self._leases[lease_id] = grant
            return grant

    def renew(self, lease_id: str) -> None:
        return

    def release(self, lease_id: str) -> None:
        with self._lock:
            self._leases.pop(lease_id, None)

    def held(self) -> int:
        with self._lock:
            return sum(self._leases.values())


class SharedCorePool:
    """One machine's cores, held in Valkey for every worker process on it (``tabjob stack``).

    Parameters:
      client: a redis client of the stack's Valkey.
      key: the pool's hash (``Keys.cores(name)``).
      total: cores in the pool (the machine's: affinity mask, cgroup quota).
      lease_ttl_s: a lease not renewed for this long is free again.
    """

    def __init__(self, client: redis.Redis, *, key: str, total: int, lease_ttl_s: float = LEASE_TTL_S) -> None:
        self.total, self.key = total, key
        self._client = client
        self._ttl_ms = int(lease_ttl_s * 1000)
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)

    def acquire(self, lease_id: str, want: int, at_least: int = 1) -> int:
        args = [lease_id, want, self.total, self._ttl_ms, at_least]
        granted = int(self._acquire(keys=[self.key], args=args))
        if granted == 0 and self._free_leases_of_dead_processes():
            granted = int(self._acquire(keys=[self.key], args=args))
        return granted

    def _free_leases_of_dead_processes(self) -> bool:
        """Free at once the leases of this machine's worker processes that died (SIGKILL, the OOM
        killer), instead of after their TTL: every holder of a machine's pool is a process of this
        host's stack, and a lease id starts with its worker id, which ends with the worker's pid
        (``app.jobs.consumers.new_worker_id``). Without it, the restarted worker of a killed fit
        waited out the dead one's lease (up to ``LEASE_TTL_S``) before resuming the fit."""
        freed = False
        for lease_id in self._client.hkeys(self.key):
            pid = _holder_pid(str(lease_id))
            if pid is not None and not _alive(pid):
                freed = bool(self._client.hdel(self.key, lease_id)) or freed
        return freed

    def renew(self, lease_id: str) -> None:
        if not int(self._renew(keys=[self.key], args=[lease_id, self._ttl_ms])):
            log.warning("the core lease %s had expired (the broker was out of reach for a while)", lease_id)

    def release(self, lease_id: str) -> None:
        self._client.hdel(self.key, lease_id)

    def held(self) -> int:
        now_ms = time.time() * 1000
        held = 0
        for value in self._client.hgetall(self.key).values():
            cores, expiry = str(value).split(":")
            held += int(cores) if int(expiry) > now_ms else 0
        return held


def _holder_pid(lease_id: str) -> int | None:
    """The pid that ends a lease's worker id (``<host>-<random>-<pid>:<job id>``), if it has one."""
    tail = lease_id.split(":", 1)[0].rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() and "-" in lease_id.split(":", 1)[0] else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def cores_wanted(rows: int, *, pool_total: int, rows_per_core: int) -> int:
    """Cores a job on ``rows`` rows asks for: one below ``rows_per_core`` rows (there OpenMP's
    start-up and barriers cost more than a second thread saves: a 200-row fit took 0.048 s on one
    thread, 0.076 s on two), else the whole pool (HistGradientBoosting's histograms split over
    rows and features, so a bigger job uses every core it is given)."""
    return 1 if rows < rows_per_core else pool_total


@contextmanager
def leased_cores(
    pool: CorePool,
    lease_id: str,
    want: int,
    *,
    should_cancel: Callable[[], bool],
    on_wait: Callable[[], None],
    reserved: bool = False,
) -> Iterator[int]:
    """Hold up to ``want`` of ``pool``'s cores for the block; yields how many.

    Waits (calling ``on_wait`` once) until ``want`` cores are free, or after
    ``FULL_WIDTH_WAIT_S`` until at least one is, checking ``should_cancel`` (which may raise) every
    ``WAIT_CANCEL_CHECK_S``. With ``reserved`` (a worker reserved for small work) it never waits:
    with no core free, the job runs on one thread outside the pool.
    """
    granted = pool.acquire(lease_id, want, at_least=1 if reserved else want)
    if granted == 0 and reserved:
        yield 1
        return
    waited = False
    started = time.monotonic()
    next_check = started + WAIT_CANCEL_CHECK_S
    while granted == 0:
        if not waited:
            waited = True
            on_wait()
        time.sleep(WAIT_POLL_S)
        if time.monotonic() >= next_check:
            next_check = time.monotonic() + WAIT_CANCEL_CHECK_S
            should_cancel()
        full_width = time.monotonic() - started < FULL_WIDTH_WAIT_S
        granted = pool.acquire(lease_id, want, at_least=want if full_width else 1)
    stop = threading.Event()
    renewer = threading.Thread(target=_renew_until, args=(pool, lease_id, stop), daemon=True, name="core-lease")
    renewer.start()
    try:
        yield granted
    finally:
        stop.set()
        try:
            pool.release(lease_id)
        except redis.RedisError:  # the lease expires on its own
            log.warning("could not release core lease %s; it expires in %.0f s", lease_id, LEASE_TTL_S)


def _renew_until(pool: CorePool, lease_id: str, stop: threading.Event) -> None:
    while not stop.wait(RENEW_EVERY_S):
        try:
            pool.renew(lease_id)
        except redis.RedisError:
            log.warning("could not renew core lease %s", lease_id, exc_info=True)
