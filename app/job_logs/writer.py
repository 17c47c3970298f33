"""One attempt's log of one job, as a worker writes it: lines kept in memory and written to the
store as a chunk every few seconds (``TABJOB_JOB_LOG_FLUSH_S``) and at the attempt's end, so they
outlive the worker's pod, and a killed worker loses at most the last few seconds.

The job's size cap (``TABJOB_JOB_LOG_MAX_BYTES``) counts every attempt and step: an attempt
starts from what the store already holds. Past the cap the lines are dropped, and one
``truncated`` line says so (and at the end how many were dropped), so a job printing in a loop
cannot fill the store.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from typing import Any

from app.core.errors import InfraError
from app.core.storage import Store, _infra
from app.job_logs.chunks import chunk_key, list_chunks

log = logging.getLogger("tabjob.job_logs")
# Bytes kept for the one line that says the log was cut (it is written past the cap).
MARKER_ROOM_BYTES = 1024


class AttemptLog:
    """The log lines of one attempt of one job, written to ``store`` in chunks.

    Parameters:
      tenant, job_id, attempt, step: whose lines these are (``step``: fit, predict, prepare, model...).
      max_bytes: the job's cap, every attempt together.
      first: nothing of the job's log can be in the store yet (its first attempt of its only
        step): the listing of earlier chunks is skipped, a store round trip per job.
    """

    def __init__(
        self, store: Store, *, tenant: str, job_id: str, attempt: int, step: str, max_bytes: int, first: bool = False
    ) -> None:
        self.store, self.tenant, self.job_id = store, tenant, job_id
        self.attempt, self.step, self.max_bytes = attempt, step, max_bytes
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pending: list[bytes] = []
        self._dropped_lines = self._dropped_bytes = 0
        self._truncated = False
        self.used_bytes, self.next_seq = (0, 0) if first else self._resume()
        # Bytes of the job's log so far: in the store, being written, or waiting to be.
        self._kept_bytes = self.used_bytes

    def _resume(self) -> tuple[int, int]:
        """Bytes the job's earlier attempts and steps left, and the next chunk's number."""
        try:
            chunks = list_chunks(self.store, self.tenant, self.job_id)
        except InfraError:  # the store is down: count from zero, numbered after any chunk written so far
            log.warning("could not list the logs of job %s; its cap counts from this attempt", self.job_id)
            return 0, int(time.time())
        return sum(c.size for c in chunks), (chunks[-1].seq + 1 if chunks else 0)

    def add(self, line: dict[str, Any]) -> None:
        """Keep ``line`` for the next chunk, unless the job's cap is reached."""
        data = (json.dumps({**line, "attempt": self.attempt}, default=str) + "\n").encode()
        with self._lock:
            if self._kept_bytes + len(data) > self.max_bytes - MARKER_ROOM_BYTES:
                if not self._truncated:
                    self._truncated = True
                    self._pending.append(self._marker(line.get("ts"), "the job's log reached its cap"))
                self._dropped_lines += 1
                self._dropped_bytes += len(data)
                return
            self._kept_bytes += len(data)
            self._pending.append(data)

    def _marker(self, ts: Any, why: str) -> bytes:
        line = {
            "ts": ts, "level": "warning", "logger": "tabjob.job_logs", "source": "worker", "step": self.step,
            "attempt": self.attempt, "truncated": True,
            "msg": f"Log truncated: {why} of {self.max_bytes:,} bytes (TABJOB_JOB_LOG_MAX_BYTES); "
            "later lines are dropped.",
        }  # fmt: skip
        return (json.dumps(line) + "\n").encode()

    def flush(self, *, last: bool = False) -> None:
        """Write the lines kept so far as the next chunk (``last``: the attempt's final one, written
        even when empty). On a store error the lines stay for the next try."""
        with self._flushing:  # one chunk at a time, in order; lines keep coming meanwhile
            with self._lock:
                if last and self._dropped_lines:
                    note = f"{self._dropped_lines:,} line(s), {self._dropped_bytes:,} bytes, were dropped"
                    self._pending.append(self._marker(_now(), note))
                    self._dropped_lines = 0
                taken, self._pending = self._pending, []
            if not taken and not last:
                return
            data = b"".join(taken)
            key = chunk_key(self.tenant, self.job_id, self.attempt, self.next_seq, last=last)
            try:
                with _infra("write a job's log"):
                    self.store.client.put_object(
                        self.store.bucket, key, io.BytesIO(data), len(data), content_type="application/x-ndjson"
                    )
            except Exception:
                with self._lock:  # kept for the next try, before any line that came meanwhile
                    self._pending[:0] = taken
                raise
            with self._lock:
                self.used_bytes += len(data)
            self.next_seq += 1


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
